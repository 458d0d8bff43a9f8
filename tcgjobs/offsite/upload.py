"""Uploading one file so that its object is whole or absent, then proving what arrived.

A file up to one part size is sent in one PUT; a larger one as a multipart upload, aborted on any
failure (a cancel included), so an object under a backup's name only ever appears complete. Each
request carries a checksum of its bytes (x-amz-checksum-sha256, or Content-MD5 for stores without
SHA-256) so a store that checks them refuses damaged bytes. Because some stores (and moto) do not
check them, what arrived is proven on the client side too: the HEAD size and an ETag equal to the
MD5 computed here (a multipart ETag is the MD5 of the parts' MD5s, with ``-N``), or, when the
ETag is not an MD5 (SSE-KMS, some stores) or does not match, a re-download hashed with SHA-256.
A copy that fails the proof is deleted and the run fails with 69: the next run sends it again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from tcgjobs.offsite.failures import StoreUnavailable
from tcgjobs.offsite.store import CHUNK, CLEANUP_GRACE_S, Store

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-[0-9]+)?$")


@dataclass(frozen=True)
class LocalDigest:
    """What a file's object must look like: size, SHA-256 and MD5, and per part when multipart."""

    size: int
    sha256: bytes
    md5: bytes
    part_size: int
    parts: tuple[tuple[int, int, bytes, bytes], ...]  # (offset, length, md5, sha256) per part

    @property
    def multipart(self) -> bool:
        return len(self.parts) > 1

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()

    @property
    def etag(self) -> str:
        """The ETag an S3 store gives this file's object when uploaded as planned."""
        if not self.multipart:
            return self.md5.hex()
        combined = hashlib.md5(b"".join(part[2] for part in self.parts), usedforsecurity=False)
        return f"{combined.hexdigest()}-{len(self.parts)}"


def digest_file(path: Path, part_size: int, check: Callable[[], None] | None = None) -> LocalDigest:
    """One pass over ``path``: SHA-256 and MD5 of the whole and, past one part, of each part."""
    whole_sha, whole_md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    parts: list[tuple[int, int, bytes, bytes]] = []
    size = path.stat().st_size
    split = size > part_size
    with open(path, "rb") as handle:
        offset = 0
        while offset < size or not parts:
            part_sha, part_md5, length = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
            while length < part_size and (chunk := handle.read(min(CHUNK, part_size - length))):
                if check is not None:
                    check()
                whole_sha.update(chunk)
                whole_md5.update(chunk)
                if split:
                    part_sha.update(chunk)
                    part_md5.update(chunk)
                length += len(chunk)
            parts.append((offset, length, part_md5.digest(), part_sha.digest()))
            offset += length
            if length == 0:
                break
    if not split:
        parts = [(0, offset, whole_md5.digest(), whole_sha.digest())]
    return LocalDigest(offset, whole_sha.digest(), whole_md5.digest(), part_size, tuple(parts))


class FileSlice(io.RawIOBase):
    """A read-only, seekable window of a file, for one request body (bounded memory). ``check``
    runs before each read, so a cancelled run stops sending mid-request."""

    def __init__(self, path: Path, offset: int, length: int,
                 check: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 (closed with the slice)
        self._offset, self._length, self._position = offset, length, 0
        self._check = check
        self._file.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._check is not None:
            self._check()
        remaining = self._length - self._position
        size = remaining if size is None or size < 0 else min(size, remaining)
        data = self._file.read(size) if size > 0 else b""
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + position))
        self._file.seek(self._offset + self._position)
        return self._position

    def tell(self) -> int:
        return self._position

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        self._file.close()
        super().close()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def checksum_args(algorithm: str, md5: bytes, sha256: bytes) -> dict[str, Any]:
    """The request's checksum header: SHA-256 where the store supports it, else Content-MD5."""
    return {"ChecksumSHA256": _b64(sha256)} if algorithm == "sha256" else {"ContentMD5": _b64(md5)}


def upload_file(store: Store, key: str, path: Path, digest: LocalDigest, *, algorithm: str,
                extra: dict[str, Any], check: Callable[[], None] | None = None) -> None:
    """Send ``path`` to ``key``: one PUT, or a multipart upload aborted on any failure."""
    if not digest.multipart:
        with FileSlice(path, 0, digest.size, check) as body:
            store.call("put_object", Key=key, Body=body, ContentLength=digest.size, **extra,
                       **checksum_args(algorithm, digest.md5, digest.sha256))
        return
    algorithm_args: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"} if algorithm == "sha256" else {}
    created = store.call("create_multipart_upload", Key=key, **extra, **algorithm_args)
    upload_id = created["UploadId"]
    try:
        parts = [_upload_part(store, key, upload_id, number, path, part, algorithm, check)
                 for number, part in enumerate(digest.parts, start=1)]
        store.call("complete_multipart_upload", Key=key, UploadId=upload_id,
                   MultipartUpload={"Parts": parts})
    except BaseException:
        try:
            store.abort_upload(key, upload_id, grace=CLEANUP_GRACE_S)
            logger.info("aborted the incomplete multipart upload of {}", key)
        except Exception as exc:  # noqa: BLE001 (whatever stops the abort, the next run's cleanup does it)
            logger.warning("could not abort the multipart upload of {} ({}); the next run will",
                           key, exc)
        raise


def _upload_part(store: Store, key: str, upload_id: str, number: int, path: Path,
                 part: tuple[int, int, bytes, bytes], algorithm: str,
                 check: Callable[[], None] | None) -> dict[str, Any]:
    """Send one part; a part whose ETag is an MD5 other than the one sent arrived damaged."""
    offset, length, md5, sha256 = part
    store.check_cancelled()
    with FileSlice(path, offset, length, check) as body:
        response = store.call("upload_part", Key=key, UploadId=upload_id, PartNumber=number,
                              Body=body, ContentLength=length,
                              **checksum_args(algorithm, md5, sha256))
    etag = response["ETag"].strip('"')
    if _MD5_ETAG.match(etag) and "-" not in etag and etag != md5.hex() and \
            response.get("ServerSideEncryption") != "aws:kms":
        raise StoreUnavailable(f"part {number} of {key} arrived damaged (the store's MD5 {etag} "
                               f"is not the {md5.hex()} sent); the upload was aborted")
    entry = {"PartNumber": number, "ETag": response["ETag"]}
    if algorithm == "sha256":
        entry["ChecksumSHA256"] = _b64(sha256)
    return entry


def put_small(store: Store, key: str, data: bytes, *, algorithm: str, extra: dict[str, Any],
              content_type: str) -> None:
    """PUT a sidecar or proof (one request), proven by the answer's ETag when it is an MD5."""
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    response = store.call("put_object", Key=key, Body=data, ContentType=content_type, **extra,
                          **checksum_args(algorithm, md5, hashlib.sha256(data).digest()))
    etag = str(response.get("ETag", "")).strip('"')
    if _MD5_ETAG.match(etag) and etag != md5.hex() and response.get("ServerSideEncryption") != "aws:kms":
        raise StoreUnavailable(f"{key} arrived damaged (the store's MD5 {etag} is not the "
                               f"{md5.hex()} sent)")
