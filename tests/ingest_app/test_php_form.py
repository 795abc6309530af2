"""The PHP bracket form decoder: PHP's own rules for what the SDK sends, errors for the rest."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deactivation.sdk_client import encode_form
from ingest_app.php_form import (
    CACHED_NAME_CHARS,
    MAX_DEPTH,
    MAX_FIELDS,
    FormDecodeError,
    _parse_short_bracket_name,
    decode_php_form,
    percent_decode,
)


def test_nested_brackets_become_nested_objects():
    body = b"hash=h&server%5Bphp_version%5D=8.2.36&plugins%5Bwoo%5D%5Bversion%5D=8.9.1&site=Example+Shop"
    assert decode_php_form(body) == {
        "hash": "h",
        "server": {"php_version": "8.2.36"},
        "plugins": {"woo": {"version": "8.9.1"}},
        "site": "Example Shop",
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a[]=x&a[]=y", {"a": ["x", "y"]}),
        ("a[0]=x&a[1]=y", {"a": ["x", "y"]}),
        ("a[1]=x&a[0]=y", {"a": {"1": "x", "0": "y"}}),  # json_encode keeps out-of-order keys as an object
        ("a[5]=x", {"a": {"5": "x"}}),
        ("a[5]=x&a[]=y", {"a": {"5": "x", "6": "y"}}),
        ("a=1&a=2", {"a": "2"}),
        ("a=1&a[b]=2", {"a": {"b": "2"}}),
        ("a[b]=2&a=1", {"a": "1"}),
        ("a[b][]=1&a[b][]=2&a[c]=3", {"a": {"b": ["1", "2"], "c": "3"}}),
        ("a%5bb%5d=1", {"a": {"b": "1"}}),
        ("extra%5Bmy+key%5D=v", {"extra": {"my key": "v"}}),
        ("reason_info=&ip_address=", {"reason_info": "", "ip_address": ""}),
        ("a=%zz", {"a": "%zz"}),  # not an escape: kept as sent, like PHP
        ("a=1&&b=2&", {"a": "1", "b": "2"}),
        ("q=x%3Dy%26z", {"q": "x=y&z"}),
        ("t=%E6%97%A5%E6%9C%AC", {"t": "日本"}),
    ],
)
def test_php_semantics(body, expected):
    assert decode_php_form(body.encode()) == expected


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("hash", "invalid_form"),
        ("=x", "invalid_form"),
        ("a[b=1", "invalid_form"),
        ("a]b=1", "invalid_form"),
        ("a[]b=1", "invalid_form"),
        ("[a]=1", "invalid_form"),
        ("a[b]]=1", "invalid_form"),
        ("a[[b]=1", "invalid_form"),
        ("a=%FF", "invalid_utf8"),
        ("a%C3=1", "invalid_utf8"),
    ],
)
def test_bodies_no_sdk_sends_are_errors(body, code):
    with pytest.raises(FormDecodeError) as error:
        decode_php_form(body.encode())
    assert error.value.code == code


def test_raw_bytes_must_be_utf8():
    with pytest.raises(FormDecodeError) as error:
        decode_php_form(b"site=caf\xe9")
    assert error.value.code == "invalid_utf8"


def test_limits_on_fields_and_depth():
    assert len(decode_php_form("&".join(f"f{i}=1" for i in range(MAX_FIELDS)).encode())) == MAX_FIELDS
    with pytest.raises(FormDecodeError, match="fields"):
        decode_php_form("&".join(f"f{i}=1" for i in range(MAX_FIELDS + 1)).encode())
    with pytest.raises(FormDecodeError, match="deeper"):
        decode_php_form(("a" + "[x]" * (MAX_DEPTH + 1) + "=1").encode())


def test_decoding_inverts_the_sdk_encoding_with_values_as_strings():
    body = {
        "hash": "h",
        "flags": {"on": True, "off": False, "none": None},
        "list": ["a", "b"],
        "empty": {},
        "n": 3,
        "text": "x & y = z ~ ü",
    }
    assert decode_php_form(encode_form(body).encode()) == {
        "hash": "h",
        "flags": {"on": "1", "off": "0"},
        "list": ["a", "b"],
        "n": "3",
        "text": "x & y = z ~ ü",
    }


# --- The one-pass decoding is exactly the reference decoding, whatever the bytes --------------
# Bytes drawn mostly from what trips quoted-printable up: escape characters, hex digits next to
# non-hex ones, line breaks (soft line breaks in quoted-printable), the field separator, '+'.
_TRICKY_BYTES = st.lists(
    st.one_of(
        st.sampled_from([b"%", b"=", b"\n", b"\r", b"\x00", b"+", b"&", b"[", b"]"]),
        st.sampled_from([b"0", b"9", b"a", b"F", b"f", b"G", b"z", b"3D", b"5B", b"C3", b"A9", b"ZZ"]),
        st.binary(max_size=3),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=2000, deadline=None)
@given(_TRICKY_BYTES)
def test_percent_decode_equals_unquote_to_bytes(data):
    assert percent_decode(data) == unquote_to_bytes(data)


def _reference_decode(body: bytes) -> dict:
    """Field by field with the standard library, then the same PHP nesting rules."""
    fields = {}
    for pair in body.split(b"&"):
        if pair:
            name, _, value = pair.replace(b"+", b" ").partition(b"=")
            fields[unquote_to_bytes(name).decode()] = unquote_to_bytes(value).decode()
    return fields


_SCALARS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(["%", "%41", "a=b", "x&y", "1+1", "\x00", "line\r\nbreak", "=3D"])


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), _SCALARS, min_size=1, max_size=8))
def test_flat_bodies_decode_like_the_standard_library(fields):
    body = encode_form(fields).encode()
    assert decode_php_form(body) == _reference_decode(body) == fields


@settings(max_examples=1000, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True),
        st.dictionaries(st.from_regex(r"[a-z_ .-]{1,8}", fullmatch=True), _SCALARS, min_size=1, max_size=4)
        | _SCALARS,
        min_size=1,
        max_size=5,
    )
)
def test_nested_sdk_payloads_round_trip(payload):
    assert decode_php_form(encode_form(payload).encode()) == payload


def test_the_name_cache_is_bounded_in_bytes():
    """Only short names are cached: a client choosing thousands of huge names grows nothing."""
    _parse_short_bracket_name.cache_clear()
    for number in range(300):
        decode_php_form(b"n" * 10_000 + str(number).encode() + b"[x]=1")
    assert _parse_short_bracket_name.cache_info().currsize == 0
    decode_php_form(b"server%5Bphp_version%5D=8.2&server%5Bmysql%5D=8.0")
    assert _parse_short_bracket_name.cache_info().currsize == 2
    assert _parse_short_bracket_name.cache_info().maxsize * 3 * CACHED_NAME_CHARS < 2**21  # < 2 MiB of text


@pytest.mark.parametrize("index", ["²", "٣", "1" * 5000, "9" * 19, "-1", "05x"])
def test_only_plain_int64_indexes_count_for_the_next_index(index):
    body = encode_form({f"a[{index}]": "x"}).encode() + b"&a[]=y&a[3]=z&a[]=w"
    assert decode_php_form(body) == {"a": {index: "x", "0": "y", "3": "z", "4": "w"}}


def test_nesting_past_the_given_depth_is_form_too_deep():
    assert decode_php_form(b"a" + b"[x]" * 40 + b"=1", max_depth=40)
    with pytest.raises(FormDecodeError) as error:
        decode_php_form(b"a" + b"[x]" * 41 + b"=1", max_depth=40)
    assert error.value.code == "form_too_deep" and error.value.details == {"field": 1, "limit": 40}
