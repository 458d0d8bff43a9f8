"""The S3 client: built from the settings, every call cancellable and its failures translated.

Each request runs on a short-lived daemon thread while the calling thread waits for it and asks
the run's ``check`` (its cancel scope) whether to stop. A store that stops answering therefore
never holds a run past its deadline or a SIGTERM (botocore's socket timeouts alone would, once per retry), and a request
left hanging dies with the process instead of delaying its exit. Cleanup after a cancel (aborting
a multipart upload) gets a short grace of its own.

botocore's default checksums (CRC32 on every request, since 1.36) are turned off: several
S3-compatible stores refuse them. tcgjobs sends its own (:mod:`tcgjobs.offsite.upload`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tcgjobs import __version__
from tcgjobs.config import Settings
from tcgjobs.logging import REDACTOR
from tcgjobs.offsite.failures import StoreUnavailable, error_code, translate
from tcgjobs.offsite.location import Location

T = TypeVar("T")
CHUNK = 1024 * 1024
CLEANUP_GRACE_S = 10.0


def _client(settings: Settings) -> Any:
    """A boto3 S3 client from the off-site settings; explicit keys when set, else the AWS chain."""
    session = boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id or None,
        aws_secret_access_key=settings.aws_secret_access_key or None,
        aws_session_token=settings.aws_session_token or None,
        region_name=settings.offsite_region or None)
    credentials = session.get_credentials()  # may ask the instance metadata service
    if credentials is not None:  # whatever secret the chain found joins the log redactor
        frozen = credentials.get_frozen_credentials()
        REDACTOR.add([frozen.secret_key or "", frozen.token or ""])
    config = Config(
        region_name=settings.offsite_region or session.region_name or "us-east-1",
        connect_timeout=settings.offsite_connect_timeout,
        read_timeout=settings.offsite_read_timeout,
        retries={"max_attempts": settings.offsite_max_attempts, "mode": "standard"},
        s3={"addressing_style": settings.offsite_addressing_style},
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra=f"tcgjobs/{__version__}",
    )
    return session.client("s3", endpoint_url=settings.offsite_endpoint_url or None, config=config)


class Store:
    """One bucket and prefix, through one client. ``cancel`` (a run's ``check_cancelled``: raises
    once the run is cancelled) interrupts every wait."""

    def __init__(self, client: Any, location: Location, where: str,
                 cancel: Callable[[], None] | None = None) -> None:
        self.client = client
        self.location = location
        self.where = where
        self.cancel = cancel

    @classmethod
    def open(cls, settings: Settings, location: Location | None = None,
             cancel: Callable[[], None] | None = None) -> Store:
        """The store of ``location`` (default: TCGJOBS_OFFSITE_URL)."""
        location = location or settings.offsite_url
        assert location is not None, "callers check that off-site is configured"
        return cls(_client(settings), location, settings.offsite_endpoint_url or "AWS S3", cancel)

    # --- calls -------------------------------------------------------------------------------

    def run(self, operation: str, work: Callable[[], T], *, grace: float | None = None) -> T:
        """``work()`` on its own thread, translated; raises Cancelled when the run is cancelled
        first (with ``grace``: ignores the scope and gives up after that many seconds)."""
        if self.cancel is None and grace is None:
            return self._translated(operation, work)
        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = self._translated(operation, work)
            except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=target, name=f"tcgjobs-s3-{operation}", daemon=True).start()
        limit = None if grace is None else time.monotonic() + grace
        while not done.wait(0.05):
            if limit is None:
                self.check_cancelled()
            elif time.monotonic() > limit:
                raise StoreUnavailable(f"{operation} did not finish within {grace:g}s")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _translated(self, operation: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except Exception as exc:
            raise translate(exc, operation=operation, bucket=self.location.bucket,
                            where=self.where) from exc

    def call(self, method: str, *, grace: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """One client method (``put_object``...) with the bucket filled in."""
        function = getattr(self.client, method)
        return self.run(method, lambda: function(Bucket=self.location.bucket, **kwargs), grace=grace)

    def check_cancelled(self) -> None:
        if self.cancel is not None:
            self.cancel()

    # --- objects -----------------------------------------------------------------------------

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when there is no such object."""
        try:
            return self.call("head_object", Key=key)
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def listing(self) -> list[dict[str, Any]]:
        """Every object directly under the prefix: Key, Size, ETag, LastModified."""
        def work() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix,
                                           Delimiter="/"):
                self.check_cancelled()
                found.extend(page.get("Contents", []))
            return found

        return self.run("list_objects_v2", work)

    def get_bytes(self, key: str, limit: int = 1 << 20) -> bytes | None:
        """A small object's content (a sidecar or a proof), or None when it does not exist."""
        def work() -> bytes | None:
            try:
                response = self.client.get_object(Bucket=self.location.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in {"NoSuchKey", "404"}:
                    return None
                raise
            with response["Body"] as body:
                return body.read(limit)

        return self.run("get_object", work)

    def download(self, key: str, out: Any, check: Callable[[], None] | None = None) -> int:
        """Stream ``key`` into the open binary file ``out`` in bounded chunks; returns the bytes
        written. ``check`` runs between chunks (disk space, cancellation)."""
        def work() -> int:
            response = self.client.get_object(Bucket=self.location.bucket, Key=key)
            written = 0
            with response["Body"] as body:
                while chunk := body.read(CHUNK):
                    self.check_cancelled()
                    if check is not None:
                        check()
                    out.write(chunk)
                    written += len(chunk)
            return written

        return self.run("get_object", work)

    def delete(self, key: str) -> None:
        self.call("delete_object", Key=key)

    def incomplete_uploads(self) -> Iterator[dict[str, Any]]:
        """Multipart uploads under the prefix that were started and never completed or aborted."""
        def work() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix):
                found.extend(page.get("Uploads", []))
            return found

        yield from self.run("list_multipart_uploads", work)

    def abort_upload(self, key: str, upload_id: str, *, grace: float | None = None) -> None:
        self.call("abort_multipart_upload", Key=key, UploadId=upload_id, grace=grace)


def download_to(store: Store, key: str, path: Path, check: Callable[[], None] | None = None) -> int:
    """Stream ``key`` into the new file ``path`` (mode 0600); returns its size."""
    from tcgjobs.backups.tempfiles import open_private

    with open_private(path) as out:
        size = store.download(key, out, check)
        out.flush()
    return size
