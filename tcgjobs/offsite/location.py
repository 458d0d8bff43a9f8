"""Where the off-site copies live: ``s3://bucket/optional/prefix``, and the object keys in it.

Plain Python (no boto3), so the settings table can validate TCGJOBS_OFFSITE_URL cheaply. A URL
with credentials in it is refused without quoting it: credentials come from the AWS chain, and a
URL is shown in ``config``, logs and errors, where a key must never appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tcgjobs.errors import UsageError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()=+,@-]+$")


@dataclass(frozen=True)
class Location:
    """A bucket and a key prefix (empty, or ending in ``/``)."""

    bucket: str
    prefix: str = ""

    def key(self, name: str) -> str:
        """The object key of ``name`` (a backup or a sidecar's file name) under the prefix."""
        return self.prefix + name

    def name_of(self, key: str) -> str | None:
        """The file name of ``key`` directly under the prefix, or None (elsewhere, or deeper)."""
        if not key.startswith(self.prefix):
            return None
        rest = key[len(self.prefix):]
        return rest if rest and "/" not in rest else None

    def url(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def __str__(self) -> str:
        return self.url()


def parse_offsite_url(raw: str) -> Location:
    """``s3://bucket[/prefix]`` as a Location. Raises ValueError saying what is wrong, never
    quoting the value (it might hold a key someone pasted into it)."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme != "s3":
        raise ValueError("expected s3://bucket/optional/prefix")
    if "@" in parts.netloc or parts.password or parts.username:
        raise ValueError("credentials are not accepted in the URL: give them as AWS_ACCESS_KEY_ID"
                         "(_FILE) and AWS_SECRET_ACCESS_KEY(_FILE), a shared credentials file or "
                         "the pod's IAM role, and write the URL as s3://bucket/prefix")
    if parts.query or parts.fragment:
        raise ValueError("a query or fragment (? or #) is not accepted; write s3://bucket/prefix")
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        raise ValueError("the bucket name must be 3-63 characters of lower-case letters, digits, "
                         "dots and hyphens, starting and ending with a letter or digit")
    pieces = [piece for piece in parts.path.split("/") if piece]
    if any(piece in {".", ".."} or not _PREFIX_PART.match(piece) for piece in pieces):
        raise ValueError("the prefix may hold letters, digits and !_.*'()=+,@- between slashes, "
                         "and no . or .. parts")
    return Location(parts.netloc, "".join(piece + "/" for piece in pieces))


def parse_optional_offsite_url(raw: str) -> Location | None:
    return parse_offsite_url(raw) if raw.strip() else None


def parse_endpoint_url(raw: str) -> str | None:
    """An http(s) endpoint of a non-AWS store, without credentials, path, query or fragment."""
    value = raw.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL such as https://minio.example:9000")
    if "@" in parts.netloc:
        raise ValueError("credentials are not accepted in the endpoint URL; use AWS_ACCESS_KEY_ID"
                         "(_FILE) and AWS_SECRET_ACCESS_KEY(_FILE)")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError("the endpoint URL takes no path, query or fragment; put the bucket and "
                         "prefix in TCGJOBS_OFFSITE_URL")
    return value.rstrip("/")


def split_remote(text: str, default: Location | None) -> tuple[Location, str]:
    """``(location, name)`` for NAME (in ``default``) or a full ``s3://bucket/prefix/NAME``.

    Raises UsageError when it is a bare name and no location is configured, or a URL that does
    not name an object.
    """
    if text.startswith("s3://"):
        try:
            whole = parse_offsite_url(text)
        except ValueError as exc:
            raise UsageError(f"not an s3:// object URL: {exc}") from None
        if not whole.prefix:
            raise UsageError("the s3:// URL names a bucket, not an object: add the backup's name")
        head, _, name = whole.prefix.rstrip("/").rpartition("/")
        return Location(whole.bucket, head + "/" if head else ""), name
    if default is None:
        raise UsageError("TCGJOBS_OFFSITE_URL is not set: set it, or give the full "
                         "s3://bucket/prefix/NAME of the copy")
    if "/" in text:
        raise UsageError(f"{text!r} is neither a backup name nor an s3:// URL")
    return default, text
