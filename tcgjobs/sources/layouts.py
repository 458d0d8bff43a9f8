"""Reading card data in either layout, detected from the files present.

* ``pokemon-tcg-data`` (the public upstream repository): ``sets/<lang>.json`` and
  ``cards/<lang>/<set id>.json``, each a bare JSON array. No market URLs.
* ``data-package`` (the platform's ``@pokemon/data``): ``sets.json`` and
  ``cards/<set id>.d/cards.json``, each ``{"data": [...]}``, cards with embedded ``set``,
  ``tcgplayer`` and ``cardmarket`` objects. A directory whose ``data/`` holds this layout (the
  package directory itself) is accepted too.

Sets are read at once (a few hundred small records); cards are read one set file at a time, so
at most one card file is in memory. Every set id is checked against the safe pattern before a
path is built from it. Every file read must resolve inside the source's real root (the root
itself may be a symlink, as git-sync's checkout is; it is resolved once, so a run reads one
checkout) and be a regular file no larger than the file limit; a record with a field above the
field limit is rejected (:class:`SourceLimits`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from tcgjobs.config import DEFAULT_MAX_FIELD_SIZE, DEFAULT_MAX_FILE_SIZE
from tcgjobs.errors import ConfigError, JobFailed
from tcgjobs.sources.ids import SET_ID_PATTERN, set_id_problem
from tcgjobs.sources.validate import (
    card_problems,
    lone_surrogate_fields,
    may_hold_lone_surrogates,
    oversized_fields,
    record_label,
    set_problems,
)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


class Layout(str, Enum):
    UPSTREAM = "pokemon-tcg-data"
    PACKAGE = "data-package"


class SourceFileError(JobFailed):
    """A source file cannot be used at all: unreadable, empty, invalid JSON or the wrong shape."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class SourceFileRefused(SourceFileError):
    """A source file that is never opened: it resolves outside the source's real root (a symlink
    leading out of the checkout) or is not a regular file."""


class SourceFileTooLarge(SourceFileError):
    """A source file above the file size limit (TCGJOBS_SOURCE_MAX_FILE_SIZE): nothing is read
    from it."""


@dataclass(frozen=True)
class SourceLimits:
    """Size limits of what is read: a whole file, and one field of one record (its compact JSON;
    a string's UTF-8 bytes). Both come from the settings of the same names."""

    file_bytes: int = DEFAULT_MAX_FILE_SIZE
    field_bytes: int = DEFAULT_MAX_FIELD_SIZE


@dataclass(frozen=True)
class Rejection:
    """One source record that was not used, and why."""

    file: Path
    record: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: record {self.record}: {self.problem}"


@dataclass
class SetsRead:
    """The valid set records (last one wins for a repeated id) and the rejected ones."""

    sets: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


@dataclass
class CardsRead:
    """One set's valid card records (last one wins for a repeated id) and the rejected ones."""

    set_id: str
    file: Path
    cards: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _bytes(n: int) -> str:
    return f"{n:,} bytes"


def read_contained(path: Path, root: Path, limit: int, real_dirs: dict[Path, Path] | None = None) -> bytes:
    """The bytes of ``path``, which must resolve inside ``root`` (a real path) and be a regular
    file of at most ``limit`` bytes. ``real_dirs`` caches the real path of the directories met
    (one source's card files share two). Raises SourceFileRefused, SourceFileTooLarge or
    SourceFileError, each naming the path."""
    try:
        real = _real_path(path, {} if real_dirs is None else real_dirs)
    except FileNotFoundError:
        raise SourceFileError(path, "file not found") from None
    if not real.is_relative_to(root):
        raise SourceFileRefused(path, f"resolves to {real}, outside the card data source {root} "
                                      "(a symlink leading out of it); refused, not opened")
    try:
        # Non-blocking: opening a FIFO would otherwise wait for a writer. No link is followed
        # any more: the path is resolved.
        descriptor = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb", buffering=0) as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise SourceFileRefused(path, "is not a regular file; refused")
            if status.st_size > limit:
                raise SourceFileTooLarge(path, _too_large(status.st_size, limit))
            data = file.read(status.st_size + 1) or b""
            if len(data) > status.st_size:  # it grew meanwhile: read on, never beyond the limit
                data += file.read(limit + 1 - len(data)) or b""
    except FileNotFoundError:
        raise SourceFileError(path, "file not found") from None
    except OSError as exc:
        raise SourceFileError(path, f"cannot read: {exc.strerror}") from exc
    if len(data) > limit:
        raise SourceFileTooLarge(path, _too_large(len(data), limit))
    return data


def _real_path(path: Path, real_dirs: dict[Path, Path]) -> Path:
    """``path.resolve()``, resolving each directory once (resolving costs a system call per
    component of the path, for every one of a run's card files). Raises FileNotFoundError."""
    if stat.S_ISLNK(os.lstat(path).st_mode):
        return path.resolve()
    directory = real_dirs.get(path.parent)
    if directory is None:
        directory = real_dirs[path.parent] = path.parent.resolve()
    return directory / path.name


def _too_large(size: int, limit: int) -> str:
    return (f"{_bytes(size)}, above the file size limit of {_bytes(limit)} "
            "(TCGJOBS_SOURCE_MAX_FILE_SIZE); nothing read from it")


def _js_number(text: str) -> int | float:
    """A JSON number with a fraction or exponent, as JavaScript holds it: an integral value (``1.0``,
    ``1e3``) is the same number as ``1``, so JSON.stringify writes ``1``; keeping it an int makes
    our JSON text match. (Non-integral values keep Python's float; the card data has none.)"""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def _load_json(path: Path, raw: bytes) -> Any:
    """Parse the bytes of ``path``. Raises SourceFileError naming the path."""
    if not raw.strip():
        raise SourceFileError(path, "empty file (expected JSON)")
    try:
        # Strictly: json.loads(bytes) would also take UTF-16 and UTF-32, and UTF-8-encoded
        # surrogates, which no column can store. A UTF-8 byte order mark is allowed.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFileError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text, parse_float=_js_number)
    except json.JSONDecodeError as exc:
        raise SourceFileError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                                    f"{exc.msg}") from None
    except RecursionError:  # the decoder recurses once per level
        raise SourceFileError(path, "JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise SourceFileError(path, f"unusable JSON: {exc}") from None


def _dedupe(records: list[tuple[int, dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Last record wins for a repeated id, at the position of the first. Returns the duplicates."""
    by_id: dict[str, dict[str, Any]] = {}
    duplicates = []
    for _, record in records:
        if record["id"] in by_id:
            duplicates.append(record["id"])
        by_id[record["id"]] = record
    return list(by_id.values()), duplicates


@dataclass(frozen=True)
class Source:
    """A card data directory in one of the two layouts."""

    root: Path  # the real root: resolved once, so a swapped git-sync link never mixes checkouts
    layout: Layout
    language: str
    is_sample: bool = False
    limits: SourceLimits = SourceLimits()
    configured: Path | None = None  # the configured path, when it is a link to ``root``
    _real_dirs: dict[Path, Path] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sets_file(self) -> Path:
        if self.layout is Layout.UPSTREAM:
            return self.root / "sets" / f"{self.language}.json"
        return self.root / "sets.json"

    @property
    def cards_dir(self) -> Path:
        if self.layout is Layout.UPSTREAM:
            return self.root / "cards" / self.language
        return self.root / "cards"

    def describe(self) -> str:
        what = "the bundled SAMPLE dataset" if self.is_sample else str(self.root)
        if self.configured is not None and not self.is_sample:
            what = f"{self.configured} -> {self.root}"
        language = f", language {self.language}" if self.layout is Layout.UPSTREAM else ""
        return f"{what} ({self.layout.value} layout{language})"

    def read_file(self, path: Path) -> bytes:
        """The bytes of one of the source's files, inside its real root and within the file
        size limit. Raises SourceFileError (SourceFileRefused, SourceFileTooLarge) naming it."""
        return read_contained(path, self.root, self.limits.file_bytes, self._real_dirs)

    def _records(self, path: Path, raw: bytes) -> list[Any]:
        document = _load_json(path, raw)
        if self.layout is Layout.PACKAGE:
            if not isinstance(document, dict) or not isinstance(document.get("data"), list):
                raise SourceFileError(path, 'expected an object with a "data" array')
            return document["data"]
        if not isinstance(document, list):
            raise SourceFileError(path, f"expected a JSON array, got {type(document).__name__}")
        return document

    def read_sets(self) -> SetsRead:
        """Every set record, validated. Raises SourceFileError when the file itself is unusable."""
        path = self.sets_file
        result = SetsRead()
        raw = self.read_file(path)
        valid, result.rejected = _split_valid(path, self._records(path, raw), set_problems,
                                              self._field_limit(raw), may_hold_lone_surrogates(raw))
        result.sets, result.duplicates = _dedupe(valid)
        return result

    def card_file(self, set_id: str) -> Path:
        """The card file of ``set_id``. Raises ValueError for an unsafe id (no path is built)."""
        problem = set_id_problem(set_id)
        if problem:
            raise ValueError(problem)
        if self.layout is Layout.UPSTREAM:
            return self.cards_dir / f"{set_id}.json"
        return self.cards_dir / f"{set_id}.d" / "cards.json"

    def card_file_set_ids(self) -> tuple[list[str], list[str]]:
        """``(set ids, unusable names)`` of the card files present, sorted."""
        suffix = ".json" if self.layout is Layout.UPSTREAM else ".d"
        ids, unusable = [], []
        for entry in sorted(self.cards_dir.iterdir()):
            if not entry.name.endswith(suffix) or entry.name.startswith("."):
                continue
            set_id = entry.name[: -len(suffix)]
            if set_id_problem(set_id) is None:
                ids.append(set_id)
            else:
                unusable.append(entry.name)
        return ids, unusable

    def read_cards(self, set_id: str, raw: bytes | None = None) -> CardsRead | None:
        """One set's cards, validated; None when the set has no card file. ``raw``: the file's
        bytes when the caller has read them already.

        Raises SourceFileError when the file is unusable, ValueError for an unsafe set id.
        """
        path = self.card_file(set_id)
        if raw is None:
            if not path.exists():
                return None
            raw = self.read_file(path)
        result = CardsRead(set_id, path)
        valid, result.rejected = _split_valid(path, self._records(path, raw), card_problems,
                                              self._field_limit(raw), may_hold_lone_surrogates(raw))
        result.cards, result.duplicates = _dedupe(valid)
        return result

    def _field_limit(self, raw: bytes) -> int | None:
        """The field limit to check records against; None when no field of a file this small
        can exceed it (every real file: no record is measured)."""
        return self.limits.field_bytes if len(raw) > self.limits.field_bytes else None


def _split_valid(path: Path, records: Iterable[Any], problems_of: Callable[[Any], list[str]],
                 field_limit: int | None = None, surrogates: bool = False,
                 ) -> tuple[list[tuple[int, Any]], list[Rejection]]:
    """``(position, record)`` of each valid record, and a Rejection naming each invalid one
    (``field_limit``: also each record with a larger field; ``surrogates``: also each record
    with a string that is not Unicode text)."""
    valid, rejected = [], []
    for position, record in enumerate(records):
        problems = problems_of(record)
        if field_limit is not None and isinstance(record, dict):
            problems += oversized_fields(record, field_limit)
        if surrogates and isinstance(record, dict):
            problems += lone_surrogate_fields(record)
        if problems:
            rejected.append(Rejection(path, record_label(record, position), "; ".join(problems)))
        else:
            valid.append((position, record))
    return valid, rejected


def detect(root: Path, language: str = "en", *, is_sample: bool = False,
           limits: SourceLimits = SourceLimits()) -> Source:
    """The source at ``root``, its layout detected. Raises ConfigError naming the path otherwise.

    The root is resolved here, once: every file is then read from that real path and must stay
    inside it."""
    if not SET_ID_PATTERN.fullmatch(language):
        raise ConfigError(f"unsafe data language {language!r}: letters, digits, '.', '_' and '-' "
                          "only (TCGJOBS_DATA_LANGUAGE)")
    if not root.exists():
        raise ConfigError(f"card data source {root} does not exist (TCGJOBS_DATA_SOURCE)")
    if not root.is_dir():
        raise ConfigError(f"card data source {root} is not a directory (TCGJOBS_DATA_SOURCE)")
    configured, root = root, root.resolve()
    found = _layout(root, language)
    if found is None:
        raise ConfigError(
            f"card data source {configured} is in neither known layout: expected sets/{language}.json "
            f"with cards/{language}/<set>.json (pokemon-tcg-data) or sets.json with "
            "cards/<set>.d/cards.json (the platform's data package) (TCGJOBS_DATA_SOURCE)")
    real, layout = found
    return Source(real, layout, language, is_sample, limits,
                  configured if configured != real else None)


def _layout(root: Path, language: str) -> tuple[Path, Layout] | None:
    """Where and in which layout the data under ``root`` is; None when in neither. Raises
    ConfigError for the upstream layout without that language."""
    if (root / "sets").is_dir() and (root / "cards").is_dir():
        if (root / "sets" / f"{language}.json").is_file() and (root / "cards" / language).is_dir():
            return root, Layout.UPSTREAM
        available = sorted(p.stem for p in (root / "sets").glob("*.json"))
        raise ConfigError(
            f"card data source {root} has the pokemon-tcg-data layout but no language "
            f"{language!r} (sets/{language}.json and cards/{language}/); available: "
            f"{', '.join(available) or 'none'} (TCGJOBS_DATA_LANGUAGE)")
    for candidate in (root, root / "data"):
        if (candidate / "sets.json").is_file() and (candidate / "cards").is_dir():
            return candidate.resolve(), Layout.PACKAGE
    return None


def open_source(data_source: Path | None, language: str = "en",
                limits: SourceLimits = SourceLimits()) -> Source:
    """The configured source, or the bundled sample when ``data_source`` is None."""
    if data_source is None:
        return detect(SAMPLE_DIR, "en", is_sample=True, limits=limits)
    return detect(data_source, language, limits=limits)
