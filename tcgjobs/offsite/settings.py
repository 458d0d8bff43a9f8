"""The off-site settings: where the copies go, how to reach the store, and the credentials.

Declared here as the fields of :class:`tcgjobs.config.Setting` and added to the one settings
table by :func:`tcgjobs.config.all_settings`, so defaults, validation, ``tcgjobs config``, the
README table and the deploy files come from this declaration like every other. A declaration
(this module and :mod:`tcgjobs.offsite.location` sit in the declarations layer): plain Python
that imports neither boto3 nor the config module that reads it.

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN are declared as
secrets, so each also accepts ``<VAR>_FILE`` and is redacted everywhere; when they are unset the
rest of the standard AWS chain applies (shared credentials file and AWS_PROFILE, web identity
/ IRSA, container and instance roles), which botocore resolves by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tcgjobs import parsers
from tcgjobs.offsite.location import parse_endpoint_url, parse_optional_offsite_url

_FIELDS = ("name", "env", "default", "help", "parser", "secret")

#: Each setting as (name, variables, default, help, parser[, secret]).
_DECLARED: tuple[tuple[Any, ...], ...] = (
    ("offsite_url", ("TCGJOBS_OFFSITE_URL",), None,
     "Off-site copies go to this s3://bucket/optional/prefix; unset: off-site is off and "
     "upload-backups counts as disabled. Credentials in the URL are refused.",
     parse_optional_offsite_url),
    ("offsite_endpoint_url", ("TCGJOBS_OFFSITE_ENDPOINT_URL",), None,
     "S3 API endpoint of a store other than AWS (MinIO, R2, B2, Ceph RGW, GCS).",
     parse_endpoint_url),
    ("offsite_region", ("TCGJOBS_OFFSITE_REGION",), None,
     "Region of the bucket. Default: AWS_REGION or the profile's, else us-east-1.",
     parsers.parse_str),
    ("offsite_addressing_style", ("TCGJOBS_OFFSITE_ADDRESSING_STYLE",), "auto",
     "auto, path (endpoint/bucket, most self-hosted stores) or virtual (bucket.endpoint).",
     parsers.choice("auto", "path", "virtual")),
    ("offsite_storage_class", ("TCGJOBS_OFFSITE_STORAGE_CLASS",), None,
     "Storage class of uploaded objects (e.g. STANDARD_IA). Default: the bucket's.",
     parsers.parse_str),
    ("offsite_sse", ("TCGJOBS_OFFSITE_SSE",), None,
     "Server-side encryption to ask for: AES256 or aws:kms. Default: the bucket's.",
     parsers.choice("AES256", "aws:kms", aliases={"aes256": "AES256"})),
    ("offsite_sse_kms_key_id", ("TCGJOBS_OFFSITE_SSE_KMS_KEY_ID",), None,
     "KMS key for TCGJOBS_OFFSITE_SSE=aws:kms. Default: the account's S3 key.",
     parsers.parse_str),
    ("offsite_checksum", ("TCGJOBS_OFFSITE_CHECKSUM",), "sha256",
     "Checksum sent with each upload: sha256 (x-amz-checksum-sha256) or md5 (Content-MD5, "
     "for stores without SHA-256 checksums).", parsers.choice("sha256", "md5")),
    ("offsite_connect_timeout", ("TCGJOBS_OFFSITE_CONNECT_TIMEOUT",), 10.0,
     "Seconds to wait for a connection to the store.", parsers.float_between(0.1, 300)),
    ("offsite_read_timeout", ("TCGJOBS_OFFSITE_READ_TIMEOUT",), 60.0,
     "Seconds to wait for the store's next bytes before a request counts as failed.",
     parsers.float_between(0.1, 3600)),
    ("offsite_max_attempts", ("TCGJOBS_OFFSITE_MAX_ATTEMPTS",), 3,
     "Attempts per request to the store (timeouts, 5xx and SlowDown are retried).",
     parsers.int_between(1, 10)),
    ("offsite_part_size_mb", ("TCGJOBS_OFFSITE_PART_SIZE_MB",), 16,
     "Part size (MiB) of multipart uploads; a larger backup is uploaded in parts.",
     parsers.int_between(5, 5120)),
    ("offsite_verify_sample", ("TCGJOBS_OFFSITE_VERIFY_SAMPLE",), 1,
     "Off-site copies re-proven in full (download, checksum, decompress, integrity_check, "
     "row counts) per upload-backups run, least recently proven first.",
     parsers.int_between(0)),
    ("health_offsite_age_warning_hours", ("TCGJOBS_HEALTH_OFFSITE_AGE_WARNING_HOURS",), 27.0,
     "Age (hours) of the newest verified off-site copy at which offsite-age warns.",
     parsers.float_between(0)),
    ("health_offsite_age_critical_hours", ("TCGJOBS_HEALTH_OFFSITE_AGE_CRITICAL_HOURS",),
     51.0, "Age (hours) of the newest verified off-site copy at which offsite-age is "
     "critical (also when there is none).", parsers.float_between(0)),
    ("aws_access_key_id", ("AWS_ACCESS_KEY_ID",), None,
     "Access key of the off-site store. Unset: the rest of the AWS chain (shared "
     "credentials file, web identity / IRSA, instance role).", parsers.parse_str,
     True),
    ("aws_secret_access_key", ("AWS_SECRET_ACCESS_KEY",), None,
     "Secret key of the off-site store.", parsers.parse_str, True),
    ("aws_session_token", ("AWS_SESSION_TOKEN",), None,
     "Session token of temporary off-site credentials.", parsers.parse_str, True),
)

#: The fields of each off-site :class:`tcgjobs.config.Setting`, for the settings table.
OFFSITE_SETTINGS: tuple[dict[str, Any], ...] = tuple(
    dict(zip(_FIELDS, fields, strict=False)) for fields in _DECLARED)


def offsite_problems(values: Mapping[str, Any]) -> list[str]:
    """Checks across the off-site settings (the loader reports them with all the others)."""
    problems = []
    if bool(values.get("aws_access_key_id")) != bool(values.get("aws_secret_access_key")):
        problems.append("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE forms) go "
                        "together: set both, or neither to use the rest of the AWS chain")
    if values.get("aws_session_token") and not values.get("aws_access_key_id"):
        problems.append("AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if values.get("offsite_sse_kms_key_id") and values.get("offsite_sse") != "aws:kms":
        problems.append("TCGJOBS_OFFSITE_SSE_KMS_KEY_ID needs TCGJOBS_OFFSITE_SSE=aws:kms")
    warning = values.get("health_offsite_age_warning_hours")
    critical = values.get("health_offsite_age_critical_hours")
    if warning is not None and critical is not None and warning > critical:
        problems.append("TCGJOBS_HEALTH_OFFSITE_AGE_WARNING_HOURS is above the critical threshold")
    return problems
