"""JSON as PostgreSQL's JSONB stores and prints it, computed in Python.

JSONB text has ``", "`` and ``": "`` separators, object keys ordered shorter-first then bytewise
(a repeated key keeps its last value), non-ASCII unescaped and numbers as ``numeric`` prints them
(``1.50``, ``100`` for ``1e2``). :func:`decode` parses SQLite's JSON text into values whose objects
are in that key order, :func:`pg_jsonb_text` prints them as PostgreSQL would, and
:func:`json_encoder` gives the C encoder with those separators. What JSONB cannot store
(``NaN``, ``Infinity``, ``\\u0000``, invalid JSON) raises :class:`Unmappable`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any


class Unmappable(ValueError):
    """A value that cannot be mapped exactly; its row is skipped with this reason."""


def _pg_key(pair: tuple[str, Any]) -> tuple[int, str]:
    key = pair[0]
    # JSONB orders keys by UTF-8 byte length, then bytewise; code point order is UTF-8 byte order.
    return (len(key), key) if key.isascii() else (len(key.encode("utf-8", "surrogatepass")), key)


def reject(name: str) -> Any:
    """Refuse ``name`` (a constant such as ``NaN``, or a value no JSON encoder should meet)."""
    raise Unmappable(f"contains {name}, which is not valid JSON for PostgreSQL")


_FLOATS_SEEN = [False]


#: PostgreSQL's numeric holds up to 131,072 digits before the decimal point, 16,383 after.
_MAX_ADJUSTED, _MIN_EXPONENT = 131_071, -16_383


def _parse_float(text: str) -> Decimal:
    _FLOATS_SEEN[0] = True
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and (exponent < _MIN_EXPONENT or (
            not value.is_zero() and value.adjusted() > _MAX_ADJUSTED)):
        shown = text if len(text) <= 24 else text[:24] + "…"
        raise Unmappable(f"contains the number {shown}, outside PostgreSQL's numeric range")
    return value


encode_text = json.encoder.encode_basestring  # a JSON string, non-ASCII unescaped (as JSONB)


def json_encoder(default: Callable[[Any], Any] | None = None,
                 separator: str = ", ") -> Callable[[Any], str]:
    """``json.JSONEncoder(separators=(separator, ": "), ensure_ascii=False, default=default)
    .encode`` (JSONB's separators by default, non-ASCII unescaped), calling the C encoder
    directly: the same text without two Python calls per value (this runs for every distinct
    JSON value of a run)."""
    encoder = json.JSONEncoder(separators=(separator, ": "), ensure_ascii=False, default=default)
    make = getattr(json.encoder, "c_make_encoder", None)  # CPython's C encoder, not public API
    if make is None:  # an interpreter without the C accelerator
        return encoder.encode
    chunks = make(None, encoder.default, encode_text, None, ": ", separator, False, False, True)

    def encode(value: Any) -> str:
        return encode_text(value) if type(value) is str else "".join(chunks(value, 0))

    return encode


#: JSONB text of values without floats (floats are Decimals, which this encoder refuses).
_ENCODE_FAST = json_encoder()


def _numeric_text(value: Decimal) -> str:
    """PostgreSQL's ``numeric`` output of a JSON number with a fraction or an exponent."""
    if value.is_zero():
        value = abs(value)
    return format(value, "f")


def pg_jsonb_text(value: Any) -> str:
    """``value::jsonb::text`` as PostgreSQL prints it (objects must come from :func:`decode`)."""
    if isinstance(value, Decimal):
        return _numeric_text(value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=_pg_key)
        return "{" + ", ".join(f"{encode_text(k)}: {pg_jsonb_text(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(pg_jsonb_text(v) for v in value) + "]"
    return _ENCODE_FAST(value)


class Raw(str):
    """Already-encoded JSONB text, to be inserted verbatim (pgrows.canonical does)."""


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_constant=reject)


def _decode_plain(text: str) -> Any:
    """``_DECODER.decode(text)``; a text without surrounding whitespace (what SQLite holds) goes
    straight to the C scanner, anything else (and every error) through ``decode``."""
    try:
        value, end = _DECODER.scan_once(text, 0)  # type: ignore[attr-defined]  # the C scanner
    except StopIteration:
        return _DECODER.decode(text)
    return value if end == len(text) else _DECODER.decode(text)


_NESTED = (dict, list)
_KEY_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}  # keys in source order → JSONB order


def _jsonb_order(value: dict[str, Any] | list[Any]) -> Any:
    """``value`` with every object's keys in JSONB order (reordering the C decoder's output is
    faster than an ``object_pairs_hook`` called for every object)."""
    if isinstance(value, list):
        return [_jsonb_order(item) if type(item) in _NESTED else item for item in value]
    keys = tuple(value)  # a duplicate key holds its last value already, as in JSONB
    order = _KEY_ORDERS.get(keys)
    if order is None:
        order = tuple(sorted(keys, key=lambda key: _pg_key((key, None))))
        if len(_KEY_ORDERS) < 10_000:
            _KEY_ORDERS[keys] = order
    out = {}
    for key in order:
        item = value[key]
        out[key] = _jsonb_order(item) if type(item) in _NESTED else item
    return out


def decode(text: str) -> Any:
    """Parse SQLite JSON text (objects key-ordered as JSONB orders them). Raises Unmappable."""
    try:
        parsed = _decode_plain(text)
        if "\\u0000" in text and _holds_nul(parsed):  # not "\\\\u0000", an escaped backslash
            raise Unmappable("contains \\u0000, which PostgreSQL JSONB cannot store")
        return _jsonb_order(parsed) if type(parsed) in _NESTED else parsed
    except Unmappable:
        raise
    except RecursionError:  # Python's decoder recurses once per level
        raise Unmappable("holds a JSON value nested too deeply to map") from None
    except ValueError as exc:
        raise Unmappable(f"is not valid JSON ({exc})") from None


def without_nul(text: str) -> Any:
    """:func:`decode`, with every NUL character removed from the strings and keys instead of
    refused (what replication writes in place of such a value). Raises Unmappable otherwise."""
    try:
        parsed = _strip_nul(_decode_plain(text))
        return _jsonb_order(parsed) if type(parsed) in _NESTED else parsed
    except Unmappable:
        raise
    except RecursionError:
        raise Unmappable("holds a JSON value nested too deeply to map") from None
    except ValueError as exc:
        raise Unmappable(f"is not valid JSON ({exc})") from None


def _strip_nul(value: Any) -> Any:
    if type(value) is str:
        return value.replace("\x00", "")
    if type(value) is list:
        return [_strip_nul(item) for item in value]
    if type(value) is dict:
        return {key.replace("\x00", ""): _strip_nul(item) for key, item in value.items()}
    return value


def _holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value has a NUL character in a string or an object key."""
    if type(value) is str:
        return "\x00" in value
    if type(value) is list:
        return any(_holds_nul(item) for item in value)
    if type(value) is dict:
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    return False


def jsonb_value(text: str) -> Any:
    """The value of SQLite JSON ``text`` as JSONB holds it, ready for a JSON encoder: parsed, or,
    when it holds a number with a fraction or an exponent (a Decimal, which the C encoder
    refuses), its JSONB text printed once here as :class:`Raw`. Raises Unmappable."""
    _FLOATS_SEEN[0] = False
    parsed = decode(text)
    return Raw(pg_jsonb_text(parsed)) if _FLOATS_SEEN[0] else parsed
