"""Compression streams for backups: gzip (as independent members compressed on several cores) and
zstd, plus hashing wrappers so a file is hashed while it is written or read, in bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any

import zstandard

#: Bytes per read, write and gzip member.
CHUNK = 1 << 20


class HashingWriter:
    """A write-only file wrapper that hashes and counts everything written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class HashingReader:
    """A read-only file wrapper that hashes and counts everything read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class ParallelGzipWriter:
    """Compresses 1 MiB blocks as independent gzip members on several cores (like ``pigz -i``).

    A multi-member gzip file is standard (RFC 1952; ``gunzip`` and every library read it); zlib
    releases the GIL, so threads use every core. At most ``workers + 1`` blocks are in flight, so
    memory stays bounded whatever the database's size.
    """

    BLOCK = CHUNK

    def __init__(self, raw: Any, level: int, workers: int) -> None:
        self.raw, self.level = raw, level
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tcgjobs-gzip")
        self.pending: deque[Future[bytes]] = deque()
        self.limit = workers + 1
        self.buffer = bytearray()

    def _submit(self, block: bytes) -> None:
        self.pending.append(self.pool.submit(gzip.compress, block, self.level, mtime=0))
        while len(self.pending) >= self.limit:
            self.raw.write(self.pending.popleft().result())

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= self.BLOCK:
            self._submit(bytes(self.buffer[: self.BLOCK]))
            del self.buffer[: self.BLOCK]
        return len(data)

    def close(self) -> None:
        try:
            if self.buffer or not self.pending:
                self._submit(bytes(self.buffer))
                self.buffer.clear()
            while self.pending:
                self.raw.write(self.pending.popleft().result())
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def compressor(raw: Any, compression: str, level: int | None = None) -> Iterator[Any]:
    """A writable stream compressing into ``raw``: gzip members without name or time, compressed
    on up to four cores, or zstd."""
    if compression == "gzip":
        gzip_out = ParallelGzipWriter(raw, level or 6, _workers())
        try:
            yield gzip_out
        except BaseException:
            gzip_out.pool.shutdown(wait=True, cancel_futures=True)
            raise
        gzip_out.close()
    elif compression == "zstd":
        # single-threaded on purpose: zstd's worker threads need ~50 MB of buffers, and one core
        # already compresses several times faster than gzip -6
        cctx = zstandard.ZstdCompressor(level=level or 3, write_checksum=True)
        with cctx.stream_writer(raw, closefd=False) as out:
            yield out
    else:
        yield raw


@contextmanager
def decompressor(raw: Any, compression: str) -> Iterator[Any]:
    """A readable stream decompressing ``raw``."""
    if compression == "gzip":
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream
    elif compression == "zstd":
        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                        closefd=False) as stream:
            yield stream
    else:
        yield raw


def copy_stream(source: Any, target: Any, check: Callable[[], None] | None = None) -> int:
    """Copy in bounded chunks; ``check`` (cancellation) runs between chunks. Returns bytes copied."""
    total = 0
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return total
        target.write(chunk)
        total += len(chunk)
        if check is not None:
            check()
