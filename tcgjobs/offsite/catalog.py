"""What is off-site: the copies under the prefix, their sidecars and their proofs.

Each copy is four objects: the backup (``<name>``), its ``.sha256`` and ``.manifest.json`` (the
local sidecars, byte for byte) and ``<name>.verified.json``, the proof, written last. A copy
counts as *verified* only while its proof says so and names the object's current size and ETag:
an object without a proof (an upload that was killed before it was proven, or one made by
someone else) is *unproven*, one whose last full proof failed is *corrupt*. Because the proofs
live in the bucket, a fresh node after a disaster knows which copies are proven without any
local state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tcgjobs import __version__
from tcgjobs.backups.names import CHECKSUM_SUFFIX, MANIFEST_SUFFIX, parse_name
from tcgjobs.offsite.store import Store
from tcgjobs.times import from_untrusted

PROOF_SUFFIX = ".verified.json"
SIDECAR_SUFFIXES = (CHECKSUM_SUFFIX, MANIFEST_SUFFIX, PROOF_SUFFIX)
PROOF_FORMAT = 1
VERIFIED, CORRUPT, UNPROVEN = "verified", "corrupt", "unproven"


@dataclass
class RemoteCopy:
    """One backup off-site, as listed (plus its proof, read when it has one)."""

    name: str
    key: str
    created_at: datetime
    size_bytes: int
    etag: str
    last_modified: datetime | None
    sidecars: set[str] = field(default_factory=set)  # the suffixes present
    proof: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        proof = self.proof or {}
        if proof.get("status") == CORRUPT and proof.get("etag") == self.etag:
            return CORRUPT
        if proof.get("status") == VERIFIED and proof.get("etag") == self.etag \
                and proof.get("size_bytes") == self.size_bytes:
            return VERIFIED
        return UNPROVEN

    @property
    def sha256(self) -> str | None:
        return (self.proof or {}).get("sha256")

    @property
    def proven_at(self) -> datetime | None:
        return from_untrusted((self.proof or {}).get("verified_at")) if self.proof else None

    @property
    def reason(self) -> str | None:
        if self.status == CORRUPT:
            return (self.proof or {}).get("reason") or "the last full proof failed"
        if self.status == UNPROVEN:
            return "no proof matches this object (upload not finished, or not written by tcgjobs)"
        return None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "created_at": self.created_at.isoformat(),
                "size_bytes": self.size_bytes, "etag": self.etag, "status": self.status,
                "sha256": self.sha256, "reason": self.reason,
                "proven_at": self.proven_at.isoformat() if self.proven_at else None,
                "proof_method": (self.proof or {}).get("method"),
                "sidecars": sorted(self.sidecars)}


@dataclass
class Catalog:
    """Every copy under the prefix, newest first, and the sidecars whose backup is gone."""

    copies: list[RemoteCopy]
    orphans: list[str]  # keys

    def get(self, name: str) -> RemoteCopy | None:
        return next((copy for copy in self.copies if copy.name == name), None)

    @property
    def verified(self) -> list[RemoteCopy]:
        return [copy for copy in self.copies if copy.status == VERIFIED]

    def totals(self) -> dict[str, float]:
        """The numbers the health check and the metrics read back from the ledger."""
        newest = self.verified[0].created_at.timestamp() if self.verified else 0
        return {"offsite_copies": len(self.copies), "offsite_verified": len(self.verified),
                "offsite_bytes": sum(copy.size_bytes for copy in self.copies),
                "offsite_newest_verified_timestamp": newest}


def read_catalog(store: Store, *, with_proofs: bool = True) -> Catalog:
    """List the prefix (one paginated request) and read each copy's proof (one small GET each)."""
    copies: dict[str, RemoteCopy] = {}
    sidecars: dict[str, set[str]] = {}
    for item in store.listing():
        name = store.location.name_of(item["Key"])
        if name is None:
            continue
        suffix = next((s for s in SIDECAR_SUFFIXES if name.endswith(s)), None)
        if suffix is not None:
            sidecars.setdefault(name[: -len(suffix)], set()).add(suffix)
            continue
        parsed = parse_name(name)
        if parsed is None:
            continue
        created_at = parsed[0] or item["LastModified"]
        copies[name] = RemoteCopy(name, item["Key"], created_at.astimezone(UTC), int(item["Size"]),
                                  str(item["ETag"]).strip('"'), item.get("LastModified"))
    for name, found in sidecars.items():
        if name in copies:
            copies[name].sidecars = found
    if with_proofs:
        for copy in copies.values():
            if PROOF_SUFFIX in copy.sidecars:
                copy.proof = read_proof(store, copy.name)
    orphans = sorted(store.location.key(name + suffix) for name, found in sidecars.items()
                     if name not in copies for suffix in found)
    ordered = sorted(copies.values(), key=lambda c: (c.created_at, c.name), reverse=True)
    return Catalog(ordered, orphans)


def read_proof(store: Store, name: str) -> dict[str, Any] | None:
    """The proof beside ``name``, or None when it is missing or unreadable."""
    data = store.get_bytes(store.location.key(name + PROOF_SUFFIX))
    try:
        proof = json.loads(data) if data else None
    except ValueError:
        return None
    return proof if isinstance(proof, dict) else None


def proof_record(name: str, *, status: str, size: int, etag: str, sha256: str | None,
                 method: str, run_id: str | None, reason: str | None = None,
                 row_counts: dict[str, int] | None = None) -> dict[str, Any]:
    """The content of ``<name>.verified.json``: what was proven, how, when and by which run."""
    return {"format": PROOF_FORMAT, "name": name, "status": status,
            "verified_at": datetime.now(UTC).isoformat(), "method": method,
            "size_bytes": size, "etag": etag, "sha256": sha256, "row_counts": row_counts,
            "reason": reason, "run_id": run_id, "tcgjobs_version": __version__}
