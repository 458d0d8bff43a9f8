"""Proofs of off-site copies: right after an upload (cheap), and in full (a download).

After an upload the object's HEAD must show the local size and an ETag equal to the MD5 computed
locally; when the ETag is no MD5 or differs, the object is downloaded and hashed instead. A full
proof is the local backup's verification run on a downloaded copy: checksum against the
``.sha256`` sidecar, decompression, ``integrity_check`` and the manifest's row counts. Either
writes ``<name>.verified.json`` beside the copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from tcgjobs.offsite.catalog import CORRUPT, PROOF_SUFFIX, VERIFIED, RemoteCopy, proof_record
from tcgjobs.offsite.failures import StoreUnavailable
from tcgjobs.offsite.fetch import fetched
from tcgjobs.offsite.store import Store
from tcgjobs.offsite.upload import LocalDigest, put_small

HEAD_METHOD = "upload: HEAD size and ETag equal to the local MD5"
DOWNLOAD_METHOD = "upload: re-downloaded, SHA-256 equal to the local file's"
FULL_METHOD = "full: downloaded, checksum, decompress, integrity_check, row counts"
FULL_CHECKS = ["sha256", "decompress", "integrity_check", "row_counts"]


class _Hasher:
    """A write-only file that hashes what is written (a download checked without a disk copy)."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return len(data)


def prove_upload(store: Store, key: str, digest: LocalDigest) -> tuple[str, str]:
    """``(method, etag)`` once the object at ``key`` is shown to hold the local bytes.

    Raises StoreUnavailable (exit 69) after deleting an object that holds other bytes: they were
    damaged on the way, and the next run sends them again.
    """
    head = store.head(key)
    if head is None:
        raise StoreUnavailable(f"{key} is missing right after its upload; the next run resends it")
    etag = str(head.get("ETag", "")).strip('"')
    size = int(head.get("ContentLength", -1))
    if size == digest.size and etag == digest.etag:
        return HEAD_METHOD, etag
    if size == digest.size:
        hasher = _Hasher()
        store.download(key, hasher)
        if hasher.sha256.digest() == digest.sha256:
            return DOWNLOAD_METHOD, etag
    logger.warning("{} does not hold the bytes sent (size {} of {}, ETag {}); deleting it", key,
                   size, digest.size, etag)
    store.delete(key)
    raise StoreUnavailable(f"{key} arrived damaged (size {size:,} of {digest.size:,}, ETag {etag}"
                           f" instead of {digest.etag}); it was deleted and the next run resends it")


def write_proof(store: Store, name: str, record: dict[str, Any], *, algorithm: str,
                extra: dict[str, Any]) -> None:
    """Store ``record`` as ``<name>.verified.json`` (the last object of a copy to be written)."""
    body = (json.dumps(record, indent=2) + "\n").encode()
    put_small(store, store.location.key(name + PROOF_SUFFIX), body, algorithm=algorithm,
              extra=extra, content_type="application/json")


def prove_in_full(store: Store, copy: RemoteCopy, scratch: Path,
                  check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Download ``copy`` into ``scratch`` and run the local verification on it. Returns the new
    proof record (status verified or corrupt; not yet stored). Raises Unverifiable, DiskFull
    or the store's failures when the check itself could not be done."""
    from tcgjobs.backups import verify

    expected = copy.sha256
    with fetched(store, copy, scratch, check) as path:
        result = verify.verify_file(path, scratch, expected_sha256=expected, check=check)
    status = VERIFIED if result.ok else CORRUPT
    if not result.ok:
        logger.warning("off-site copy {} is corrupt: {}", copy.name, result.reason)
    return proof_record(copy.name, status=status, size=copy.size_bytes, etag=copy.etag,
                        sha256=result.sha256, method=FULL_METHOD, run_id=None,
                        reason=result.reason, row_counts=result.row_counts or None) | {
        "checks": FULL_CHECKS}
