"""Safe identifiers: a set id becomes part of a file path, so it is checked before any path is built.

A set id must start with a letter or digit and hold only letters, digits, ``.``, ``_`` and ``-``
(at most 64 characters): ``../x``, ``a/b``, ``.hidden`` and the empty string are refused. Card ids
never reach a path, but they are still refused when they contain whitespace, control characters
or path separators (real ids include ``ex10-?`` and ``ex10-!``).
"""

from __future__ import annotations

import re

SET_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CARD_ID_PATTERN = re.compile(r"[^\x00-\x20\x7f/\\]{1,80}")


def set_id_problem(value: object) -> str | None:
    """Why ``value`` is not a safe set id, or None when it is one."""
    if not isinstance(value, str):
        return f"set id must be a string, got {type(value).__name__}"
    if not SET_ID_PATTERN.fullmatch(value):
        return (f"unsafe set id {value!r} (letters, digits, '.', '_' and '-' only, "
                "starting with a letter or digit)")
    return None


def card_id_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable card id, or None when it is one."""
    if not isinstance(value, str):
        return f"card id must be a string, got {type(value).__name__}"
    if not CARD_ID_PATTERN.fullmatch(value):
        return f"unsafe card id {value!r} (no spaces, control characters or path separators)"
    return None


def is_safe_set_id(value: object) -> bool:
    return set_id_problem(value) is None
