"""Clean and cast the site fields the SDK sends, which arrive as strings (form bodies) or as
strings, numbers and booleans mixed (JSON bodies).

Every caster returns None for an absent or empty value and raises FieldError, naming the field,
for a value it cannot cast; the pipeline turns that into an `invalid_field` dead letter. Nothing a
sender puts in a field may raise anything else: numbers are bounded to what the warehouse stores
(int64), texts that are looked up in a cache are bounded in length before they reach it.
"""

from __future__ import annotations

import re
import reprlib
from functools import lru_cache
from typing import Any

_TRUE = frozenset({"yes", "1", "true", "on"})
_FALSE = frozenset({"no", "0", "false", "off"})
# The spellings the SDK actually sends, looked up before any normalising (the hot path).
_BOOL_WORDS = {"Yes": True, "No": False, "1": True, "0": False, "yes": True, "no": False}

# PHP ini shorthand ("40M", "1G") and WordPress size_format() output ("64 MB", "1.5 GB", "512 KB").
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNIT_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}

# Major and minor of at most 9 digits each (a longer run of digits is no version part).
_MAJOR_MINOR = re.compile(r"^\s*v?(\d{1,9})(?!\d)(?:\.(\d{1,9})(?!\d))?")

#: PHP's way of saying "no memory limit"; there is no size to store, so it becomes NULL.
UNLIMITED = "-1"
#: The largest number a warehouse integer column (INT64) holds.
INT64_MAX = 2**63 - 1
#: Longest text read as a size ("1536 MB", "1.5 GB" and the like are a dozen characters).
MAX_SIZE_CHARS = 32
#: Longest text read as a version ("8.0.35-0ubuntu0.22.04.1" is 23 characters).
MAX_VERSION_CHARS = 64
#: Longest repr of a value shown in an error message.
SHOWN_CHARS = 80

# Bounded in depth, items and length, so showing any value costs little and cannot recurse deeply.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxlong = 3, SHOWN_CHARS, 40
_SHOWN.maxdict = _SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxset = 4


def shown(value: Any) -> str:
    """A short, safe repr of a sender's value for an error message (at most SHOWN_CHARS)."""
    if isinstance(value, str):
        text = repr(value[: SHOWN_CHARS + 1])
    else:
        try:
            text = _SHOWN.repr(value)
        except (ValueError, RecursionError, OverflowError):  # e.g. an int of too many digits
            text = f"<{type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


class FieldError(ValueError):
    """A site field whose value cannot be cast; `field` is its dotted name, e.g. wp.memory_limit."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        super().__init__(f"{field}: cannot read {shown(value)} as {expected}")


def _is_empty(value: Any) -> bool:
    return value is None or value == ""


def to_bool(field: str, value: Any) -> bool | None:
    """'Yes'/'No', '1'/'0', 'true'/'false' (any case), JSON booleans and 0/1 → bool."""
    if value.__class__ is str and value in _BOOL_WORDS:
        return _BOOL_WORDS[value]
    if _is_empty(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise FieldError(field, value, "yes/no")


def to_bytes(field: str, value: Any) -> int | None:
    """'64 MB', '40M', '1G', '1.5 GB', '512' → bytes (binary units, as PHP and WordPress use)."""
    if _is_empty(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX:
        return value
    if isinstance(value, str) and len(value) <= MAX_SIZE_CHARS:
        size = _parse_size(value)
        if size is not None:
            return size if size >= 0 else None
    raise FieldError(field, value, "a size in bytes")


@lru_cache(maxsize=1024)  # a few dozen distinct sizes cover almost every site
def _parse_size(text: str) -> int | None:
    """Bytes, -1 for PHP's "unlimited", None when the text is no size (or none INT64 holds)."""
    if text.strip() == UNLIMITED:
        return -1
    match = _SIZE.match(text)
    if not match:
        return None
    number, unit = match.groups()
    size = float(number) * 1024 ** _UNIT_POWERS[unit.lower()]
    if not size <= INT64_MAX:  # also false for inf
        return None
    return int(size)


def to_count(field: str, value: Any) -> int | None:
    """'3' or 3 → 3; counts are whole, never negative, and fit INT64."""
    if value.__class__ is str and value.isdigit() and value.isascii() and len(value) < 19:
        return int(value)  # fewer than 19 digits always fits INT64
    if _is_empty(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX:
        return value
    if isinstance(value, str) and value.isascii():
        digits = value.strip()
        if digits.isdigit() and len(digits) <= 19 and int(digits) <= INT64_MAX:
            return int(digits)
    raise FieldError(field, value, "a count")


def to_text(field: str, value: Any) -> str | None:
    """A scalar kept as text (versions may arrive as JSON numbers: 6.5 → '6.5')."""
    if value.__class__ is str:
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # an integer of more digits than Python converts to text
            raise FieldError(field, value, "text") from None
    raise FieldError(field, value, "text")


def to_version(field: str, value: Any) -> str | None:
    """A version kept as text (see to_text), at most MAX_VERSION_CHARS long."""
    text = to_text(field, value)
    if text is not None and len(text) > MAX_VERSION_CHARS:
        raise FieldError(field, value, "a version")
    return text


@lru_cache(maxsize=4096)  # versions repeat across sites
def major_minor(version: str | None) -> str | None:
    """'8.2.36' → '8.2', '6.5' → '6.5', '7' → '7.0'; None when the text is no version."""
    if not version or len(version) > MAX_VERSION_CHARS:
        return None
    match = _MAJOR_MINOR.match(version)
    if not match:
        return None
    major, minor = match.groups()
    return f"{int(major)}.{int(minor or 0)}"


def section(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested part of the body (server, wp, users, extra); absent or empty → {}."""
    value = body.get(name)
    if value.__class__ is dict:
        return value
    if _is_empty(value) or value == []:  # PHP drops empty arrays, JSON clients may send []
        return {}
    if not isinstance(value, dict):
        raise FieldError(name, value, "an object")
    return value
