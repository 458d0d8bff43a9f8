"""Copying the verified local backups that are not off-site yet, each with its sidecars.

A local backup is copied only while its status is verified and its bytes still hash to the
recorded checksum (checked in the same pass that computes the upload's digests): a corrupt or
unverified backup is never sent. The objects of one copy are written in a fixed order, backup,
``.sha256``, ``.manifest.json``, and the proof last, so a run stopped anywhere leaves either a
copy that counts (it has its proof) or one that does not, which the next run finishes: an object
that already holds the local bytes (same size and MD5 ETag) is proven instead of sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loguru import logger

from tcgjobs.backups.catalog import Backup
from tcgjobs.backups.names import CHECKSUM_SUFFIX, MANIFEST_SUFFIX, parse_name, sidecars
from tcgjobs.config import Settings
from tcgjobs.offsite.catalog import PROOF_SUFFIX, VERIFIED, Catalog, RemoteCopy, proof_record
from tcgjobs.offsite.prove import HEAD_METHOD, prove_upload, write_proof
from tcgjobs.offsite.store import Store
from tcgjobs.offsite.upload import digest_file, put_small, upload_file

MIB = 1024 * 1024


def extra_args(settings: Settings) -> dict[str, Any]:
    """Storage class and server-side encryption for every PUT, as configured (passed through)."""
    extra: dict[str, Any] = {}
    if settings.offsite_storage_class:
        extra["StorageClass"] = settings.offsite_storage_class
    if settings.offsite_sse:
        extra["ServerSideEncryption"] = settings.offsite_sse
    if settings.offsite_sse_kms_key_id:
        extra["SSEKMSKeyId"] = settings.offsite_sse_kms_key_id
    return extra


class LocalChanged(Exception):
    """A local backup's bytes no longer hash to its recorded checksum: it is not sent."""


@dataclass
class Uploads:
    """What the copy step did, by backup name."""

    uploaded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why (unverified, corrupt)
    corrupt_local: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # what a dry run would copy
    bytes_uploaded: int = 0


def is_offsite(copy: RemoteCopy | None, local: Backup) -> bool:
    """The copy of ``local`` is done: proven, the same bytes, sidecars beside it."""
    return (copy is not None and copy.status == VERIFIED and copy.sha256 == local.checksum
            and copy.size_bytes == local.size_bytes
            and {CHECKSUM_SUFFIX, MANIFEST_SUFFIX} <= copy.sidecars)


def copy_backups(store: Store, catalog: Catalog, backups: list[Backup], settings: Settings, *,
                 run_id: str, dry_run: bool, check: Callable[[], None]) -> Uploads:
    """Copy every verified backup in ``backups`` (newest first) that is not off-site yet,
    updating ``catalog`` as copies are proven. Raises the store's failures."""
    result = Uploads()
    for local in backups:
        check()
        copy = catalog.get(local.name)
        if local.status != "verified":
            result.skipped[local.name] = f"local backup is {local.status}: never uploaded"
            continue
        if is_offsite(copy, local):
            result.present.append(local.name)
            continue
        if dry_run:
            result.pending.append(local.name)
            logger.info("would upload {} ({:,} bytes)", local.name, local.size_bytes)
            continue
        try:
            outcome = copy_one(store, local, copy, settings, run_id=run_id, check=check)
        except LocalChanged as exc:
            logger.warning("not uploading {}: {}", local.name, exc)
            result.corrupt_local[local.name] = str(exc)
            continue
        done, resumed = outcome
        _replace(catalog, done)
        if resumed:
            result.resumed.append(local.name)
        else:
            result.uploaded.append(local.name)
            result.bytes_uploaded += local.size_bytes
    return result


def copy_one(store: Store, local: Backup, existing: RemoteCopy | None, settings: Settings, *,
             run_id: str, check: Callable[[], None]) -> tuple[RemoteCopy, bool]:
    """Send (or finish) the copy of one local backup. Returns it as now listed, and whether a
    stopped run had already sent the backup whole (then only its sidecars and proof were)."""
    digest = digest_file(local.path, settings.offsite_part_size_mb * MIB, check)
    if digest.sha256_hex != local.checksum:
        raise LocalChanged(f"its bytes hash to {digest.sha256_hex[:12]}…, not the recorded "
                           f"{(local.checksum or '')[:12]}…; rotate-backups or `backup verify` "
                           "will record it as corrupt")
    key = store.location.key(local.name)
    algorithm, extra = settings.offsite_checksum, extra_args(settings)
    resumed = existing is not None and existing.size_bytes == digest.size \
        and existing.etag == digest.etag
    if resumed:
        assert existing is not None
        method, etag = HEAD_METHOD, existing.etag  # a stopped run had sent it whole
        logger.info("{} is already off-site whole; proving it instead of sending it again",
                    local.name)
    else:
        logger.info("uploading {} ({:,} bytes{})", local.name, digest.size,
                    f", {len(digest.parts)} parts" if digest.multipart else "")
        upload_file(store, key, local.path, digest, algorithm=algorithm, extra=extra, check=check)
        method, etag = prove_upload(store, key, digest)
    checksum, manifest = sidecars(local.path)
    checksum_body = checksum.read_bytes() if checksum.exists() else \
        f"{digest.sha256_hex}  {local.name}\n".encode()  # the same line sha256sum -c reads
    for path, body, kind in ((checksum, checksum_body, "text/plain"),
                             (manifest, manifest.read_bytes(), "application/json")):
        put_small(store, store.location.key(path.name), body, algorithm=algorithm, extra=extra,
                  content_type=kind)
    counts = (local.manifest or {}).get("row_counts")
    record = proof_record(local.name, status=VERIFIED, size=digest.size, etag=etag,
                          sha256=digest.sha256_hex, method=method, run_id=run_id,
                          row_counts=counts if isinstance(counts, dict) else None)
    write_proof(store, local.name, record, algorithm=algorithm, extra=extra)
    logger.info("{} is off-site and proven ({})", local.name, method)
    return RemoteCopy(local.name, key, local.created_at, digest.size, etag, None,
                      {CHECKSUM_SUFFIX, MANIFEST_SUFFIX, PROOF_SUFFIX}, record), resumed


def _replace(catalog: Catalog, copy: RemoteCopy) -> None:
    catalog.copies = [c for c in catalog.copies if c.name != copy.name] + [copy]
    catalog.copies.sort(key=lambda c: (c.created_at, c.name), reverse=True)


def abort_stale_uploads(store: Store, before: datetime, check: Callable[[], None]) -> list[str]:
    """Abort the incomplete multipart uploads of backup names under the prefix that started
    before ``before`` (this run's start: the job's lock says no other run of ours is alive)."""
    aborted = []
    for upload in store.incomplete_uploads():
        check()
        name = store.location.name_of(upload["Key"])
        if name is None or parse_name(name) is None or upload["Initiated"] >= before:
            continue
        store.abort_upload(upload["Key"], upload["UploadId"])
        logger.info("aborted a stale incomplete upload of {} (started {:%Y-%m-%d %H:%M} UTC)",
                    name, upload["Initiated"])
        aborted.append(name)
    return aborted
