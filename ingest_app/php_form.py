"""Decode `application/x-www-form-urlencoded` bodies with PHP bracket nesting into nested dicts.

WordPress sends the SDK's PHP array through `http_build_query`, so `server[php_version]=8.2.36`
and `plugins[woocommerce][version]=8.9.1` must become nested objects, exactly as PHP's own
request parser would build them:

* a later assignment to the same key wins (`a=1&a[b]=2` gives `{"a": {"b": "2"}}`);
* `a[]=x` appends with the next integer key;
* an array whose keys are exactly 0..n-1 in order becomes a JSON list (what `json_encode` does);
* every value stays the string that was sent (booleans arrive as "1"/"0").

Unlike PHP, which silently mangles or drops odd input, a body an SDK could not have produced
(a pair without `=`, an empty name, unbalanced brackets, invalid UTF-8, too many fields or too
deep nesting) raises `FormDecodeError`, so the collector can reject it with a reason. Names are
kept as sent (PHP would turn `.` and spaces in top-level names into `_`).

Why not a library: `qs-codec` follows JavaScript `qs` rules (duplicate keys become lists,
`a[5]` is compacted, invalid UTF-8 is replaced silently) and took ~330 µs per SDK body, and
`querystring-parser` is unmaintained. This runs for every request the collector takes, and
under load each microsecond here costs about two (the request threads contend for the GIL), so
the decoder works on the whole body at once: all names and values are percent-decoded in one
C-level pass (see `percent_decode`) and short bracket names are parsed once per distinct name.
It takes ~24 µs on a real SDK body, against ~55 µs field by field with `urllib.parse.unquote`.
"""

from __future__ import annotations

import binascii
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_to_bytes

#: PHP's default `max_input_vars` and a nesting depth no SDK body comes near (the collector
#: passes its INGEST_MAX_NESTING setting instead).
MAX_FIELDS = 1000
MAX_DEPTH = 16
#: Names up to this length are parsed once and cached (the SDK's longest is ~40 characters);
#: longer ones, which only a hostile client sends, are parsed every time. This bounds the cache
#: in bytes: 4,096 entries of at most ~3 x 128 characters, whatever clients send.
CACHED_NAME_CHARS = 128
#: PHP turns a decimal key into an integer key only if it fits in an int64 (18 digits always do).
_MAX_INDEX_DIGITS = 18

#: Joins the names and values of a body for the one decoding pass; a field that decodes to
#: contain it (`%00`) sends the body down the field-by-field path.
_SEPARATOR = b"\x00"


class FormDecodeError(ValueError):
    """The body is not a PHP-style form; `code` is `invalid_form`, `invalid_utf8` or `form_too_deep`."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


def decode_php_form(body: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Decode a form body into nested dicts/lists of strings (see the module docstring); a name
    with more than `max_depth` bracket segments is refused (`form_too_deep`)."""
    pairs = body.split(b"&")
    if len(pairs) > MAX_FIELDS:
        raise FormDecodeError("invalid_form", f"more than {MAX_FIELDS} fields", fields=len(pairs))
    names: list[bytes] = []
    values: list[bytes] = []
    for pair in pairs:
        name, separator, value = pair.partition(b"=")
        if name and separator:
            names.append(name)
            values.append(value)
        elif pair:
            _raise_malformed_pair(pairs)
    fields = _decode_fields(body, pairs, names + values)
    count = len(names)
    result: dict[str, Any] = {}
    nested = False
    for index in range(count):
        name = fields[index]
        if "[" in name or "]" in name:
            _assign_nested(result, name, fields[count + index], pairs, index, max_depth)
            nested = True
        else:
            result[name] = fields[count + index]
    return _php_lists(result) if nested else result


def percent_decode(data: bytes) -> bytes:
    """`urllib.parse.unquote_to_bytes`, about ten times faster on escape-heavy form bodies.

    An SDK body holds ~90 escapes (every bracket of every nested name is `%5B`/`%5D`), and
    `unquote_to_bytes` loops over them in Python. `binascii.a2b_qp` decodes quoted-printable
    in C, and quoted-printable's `=XX` is `%XX` with another escape character: so literal `=`
    become `=3D`, `%` become `=`, and one C call decodes the lot. Quoted-printable differs only
    where a `%` does not start a valid escape (`%zz`, a trailing `%`, `%` before a line break),
    and each of those leaves the output longer than `len(data) - 2 * data.count(b"%")`; bodies
    with line breaks or any such `%` take `unquote_to_bytes` instead, so the result is always
    exactly the reference decoding.
    """
    escapes = data.count(b"%")
    if not escapes:
        return data
    if b"\n" not in data and b"\r" not in data:
        decoded = binascii.a2b_qp(data.replace(b"=", b"=3D").replace(b"%", b"="))
        if len(decoded) == len(data) - 2 * escapes:
            return decoded
    return unquote_to_bytes(data)


def _decode_fields(body: bytes, pairs: list[bytes], parts: list[bytes]) -> list[str]:
    """The decoded text of each of `parts`, from one decoding pass when the body allows it."""
    joined = _SEPARATOR.join(parts).replace(b"+", b" ")  # a literal '+' arrives as %2B
    try:
        fields = percent_decode(joined).decode("utf-8").split(_SEPARATOR.decode())
    except UnicodeDecodeError:
        fields = []
    if len(fields) == len(parts):
        return fields
    return _decode_fields_one_by_one(body, pairs)


def _decode_fields_one_by_one(body: bytes, pairs: list[bytes]) -> list[str]:
    """The slow path: names then values, decoded one at a time, naming the field that fails."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormDecodeError("invalid_utf8", "the body is not valid UTF-8", position=exc.start) from None
    names: list[str] = []
    values: list[str] = []
    for position, pair in enumerate(pairs, start=1):
        if pair:
            name, _, value = pair.replace(b"+", b" ").partition(b"=")
            names.append(_decode_field(name, position))
            values.append(_decode_field(value, position))
    return names + values


def _decode_field(part: bytes, position: int) -> str:
    try:
        return unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError:
        raise FormDecodeError(
            "invalid_utf8", "a percent-encoded field is not valid UTF-8", field=position
        ) from None


def _raise_malformed_pair(pairs: list[bytes]) -> None:
    for position, pair in enumerate(pairs, start=1):
        name, separator, _ = pair.partition(b"=")
        if pair and not separator:
            raise FormDecodeError("invalid_form", "a field has no '='", field=position)
        if pair and not name:
            raise FormDecodeError("invalid_form", "a field has an empty name", field=position)


def _parse_bracket_name_uncached(name: str) -> tuple[str, tuple[str, ...]] | str:
    """'a[b][]' -> ('a', ('b', '')), or the reason the name is malformed."""
    base, _, rest = name.partition("[")
    inner = rest[:-1]
    segments = inner.split("][")
    # Every '][' separator holds one bracket of each kind; any other bracket is unbalanced.
    if (
        not base
        or "]" in base
        or not rest.endswith("]")
        or inner.count("[") + inner.count("]") != 2 * (len(segments) - 1)
    ):
        return "a field name has unbalanced brackets"
    return base, tuple(segments)


#: Short names are cached: an SDK body repeats the same few dozen names (`server[php_version]`,
#: ...) in every request, so each is parsed once per process. Long ones are not, so that the
#: cache's size in bytes never depends on what clients send.
_parse_short_bracket_name = lru_cache(maxsize=4096)(_parse_bracket_name_uncached)


def _assign_nested(
    result: dict[str, Any], name: str, value: str, pairs: list[bytes], index: int, max_depth: int
) -> None:
    """result['a']['b'][next index] = value for the name 'a[b][]'."""
    parsed = (
        _parse_short_bracket_name(name)
        if len(name) <= CACHED_NAME_CHARS
        else _parse_bracket_name_uncached(name)
    )
    if isinstance(parsed, str):
        raise FormDecodeError("invalid_form", parsed, field=_position_of_field(pairs, index))
    base, segments = parsed
    if len(segments) > max_depth:
        raise FormDecodeError(
            "form_too_deep",
            f"a field nests deeper than {max_depth}",
            field=_position_of_field(pairs, index),
            limit=max_depth,
        )
    container, key = result, base
    for segment in segments:
        child = container.get(key)
        if type(child) is not dict:
            child = container[key] = {}
        container = child
        key = segment or _next_index(container)
    container[key] = value


def _position_of_field(pairs: list[bytes], index: int) -> int:
    """The 1-based position in the body of the index-th non-empty field (empty pairs count)."""
    non_empty = [position for position, pair in enumerate(pairs, start=1) if pair]
    return non_empty[index]


def _next_index(container: dict[str, Any]) -> str:
    """PHP's next integer key: one past the largest key that is an integer. Only ASCII decimal
    keys of at most 18 digits count (`str.isdigit` also accepts '²' or '٣', and `int` refuses
    more than 4,300 digits): any other key stays a string key, as in PHP."""
    indexes = [int(k) for k in container if len(k) <= _MAX_INDEX_DIGITS and k.isascii() and k.isdigit()]
    return str(max(indexes) + 1 if indexes else 0)


def _php_lists(container: dict[str, Any]) -> dict[str, Any]:
    """Turn, in place, every nested dict keyed exactly 0..n-1 into a list (PHP's json_encode)."""
    for key, child in container.items():
        if type(child) is dict:
            _php_lists(child)
            if "0" in child and all(k == str(i) for i, k in enumerate(child)):
                container[key] = list(child.values())
    return container
