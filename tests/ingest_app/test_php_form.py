"""The PHP bracket form decoder: PHP's own rules for what the SDK sends, errors for the rest."""

from __future__ import annotations

import pytest

from deactivation.sdk_client import encode_form
from ingest_app.php_form import MAX_DEPTH, MAX_FIELDS, FormDecodeError, decode_php_form


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
