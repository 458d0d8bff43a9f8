"""What the store's failures mean to an operator, and which exit code each maps to.

The rule for every remote service (PostgreSQL, Slack, pings, the Pushgateway, object storage):
a network failure (refused, DNS, timeout, 5xx, 503 SlowDown, bytes damaged on the way) is
:class:`StoreUnavailable`, exit 69, worth retrying; an answer that refuses us (no such bucket,
access denied, an unknown key, a bad signature, the wrong region) is :class:`StoreRefused`,
exit 78, with a message that says which and how to fix it. Messages never quote credentials.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

from tcgjobs.errors import ConfigError, JobFailed, ServiceUnavailable, TcgjobsError
from tcgjobs.logging import redact

#: Error codes that mean "try again later": the store is overloaded, failing, or received
#: something other than what was sent.
TRANSIENT_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestThrottled", "BadDigest", "XAmzContentSHA256Mismatch",
    "IncompleteBody", "OperationAborted", "InvalidChecksum"})

_PERMISSIONS = ("s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, "
                "s3:ListBucketMultipartUploads and s3:AbortMultipartUpload")

#: Refusals: what happened and how to fix it. ``{bucket}``, ``{where}`` and ``{operation}`` are
#: filled in.
REFUSALS: dict[str, str] = {
    "NoSuchBucket": "bucket {bucket} does not exist at {where}: create it, or correct the bucket "
                    "in TCGJOBS_OFFSITE_URL (and TCGJOBS_OFFSITE_ENDPOINT_URL for a non-AWS store)",
    "AccessDenied": "the store denied {operation} on s3://{bucket}: grant the credentials "
                    + _PERMISSIONS + " on the bucket and prefix",
    "AllAccessDisabled": "all access to bucket {bucket} is disabled by its owner",
    "AccountProblem": "the store reports a problem with the account: see its console",
    "InvalidAccessKeyId": "the store does not know this access key: check AWS_ACCESS_KEY_ID "
                          "(or AWS_ACCESS_KEY_ID_FILE, AWS_PROFILE) and the endpoint",
    "SignatureDoesNotMatch": "the store refused the request signature: check "
                             "AWS_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY_FILE)",
    "ExpiredToken": "the session token has expired: renew AWS_SESSION_TOKEN or the role's "
                    "credentials",
    "InvalidToken": "the store refused the session token: check AWS_SESSION_TOKEN",
    "AuthorizationHeaderMalformed": "the store expects another region: set "
                                    "TCGJOBS_OFFSITE_REGION to the bucket's region",
    "PermanentRedirect": "bucket {bucket} is in another region (or needs another endpoint): set "
                         "TCGJOBS_OFFSITE_REGION to its region",
    "IllegalLocationConstraintException": "bucket {bucket} is in another region: set "
                                          "TCGJOBS_OFFSITE_REGION to its region",
    "RequestTimeTooSkewed": "the store refused this machine's clock: synchronise it (NTP)",
    "InvalidBucketName": "the store refuses the bucket name {bucket}: correct TCGJOBS_OFFSITE_URL",
    "InvalidStorageClass": "the store does not offer TCGJOBS_OFFSITE_STORAGE_CLASS: unset it or "
                           "pick one it offers",
    "KMS.NotFoundException": "the KMS key of TCGJOBS_OFFSITE_SSE_KMS_KEY_ID does not exist",
    "KMS.DisabledException": "the KMS key of TCGJOBS_OFFSITE_SSE_KMS_KEY_ID is disabled",
    "NotImplemented": "the store does not implement {operation} with these settings (try "
                      "TCGJOBS_OFFSITE_CHECKSUM=md5, or unset TCGJOBS_OFFSITE_SSE)",
}
#: HEAD answers carry no body, so only the status tells.
_HEAD_STATUS = {"403": "AccessDenied", "301": "PermanentRedirect", "400": "AuthorizationHeaderMalformed"}


class StoreUnavailable(ServiceUnavailable):
    """The store could not be reached or failed transiently (exit 69; the next run resumes)."""


class StoreRefused(ConfigError):
    """The store answered and refused us: a configuration problem (exit 78)."""


def error_code(exc: ClientError) -> str:
    """The S3 error code of ``exc`` (for a HEAD, derived from the HTTP status)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    return _HEAD_STATUS.get(code, code)


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def translate(exc: BaseException, *, operation: str, bucket: str, where: str) -> BaseException:
    """The tcgjobs error for a botocore failure of ``operation`` (others are returned as they are)."""
    if isinstance(exc, TcgjobsError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, operation=operation, bucket=bucket, where=where)
    if isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError)):
        return StoreUnavailable(f"cannot reach the off-site store at {where} ({operation}): "
                                f"{redact(str(exc))}; nothing incomplete was kept, the next run "
                                "resumes")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return StoreRefused(f"no usable credentials for the off-site store ({type(exc).__name__}): "
                            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE forms), "
                            "a shared credentials file with AWS_PROFILE, or the pod's IAM role (IRSA)")
    if isinstance(exc, BotoCoreError):
        return JobFailed(f"off-site {operation} failed: {redact(str(exc))}")
    return exc


def _client_error(exc: ClientError, *, operation: str, bucket: str, where: str) -> TcgjobsError:
    code = error_code(exc)
    status = http_status(exc)
    message = redact(str(exc.response.get("Error", {}).get("Message") or code or status))
    if code in TRANSIENT_CODES or status >= 500:
        return StoreUnavailable(f"the off-site store at {where} failed {operation}: {code or status} "
                                f"({message}); nothing incomplete was kept, the next run resumes")
    template = REFUSALS.get(code)
    if template is not None:
        text = template.format(bucket=bucket, where=where, operation=operation)
        return StoreRefused(f"off-site store refused {operation} ({code}): {text}")
    return JobFailed(f"off-site {operation} failed: {code or status}: {message}")
