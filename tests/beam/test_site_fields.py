"""Cleaning and casting of the site fields the SDK sends."""

from __future__ import annotations

import pytest

from deactivation.site_fields import FieldError, major_minor, section, to_bool, to_bytes, to_count, to_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Yes", True),
        ("No", False),
        ("yes", True),
        (" NO ", False),
        ("1", True),
        ("0", False),
        ("true", True),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("", None),
        (None, None),
    ],
)
def test_to_bool_reads_the_sdk_spellings(value, expected):
    assert to_bool("server.php_curl", value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("64 MB", 64 * 1024**2),
        ("40M", 40 * 1024**2),
        ("1G", 1024**3),
        ("1.5 GB", 1536 * 1024**2),
        ("512 KB", 512 * 1024),
        ("256k", 256 * 1024),
        ("100 B", 100),
        ("512", 512),
        (1024, 1024),
        ("-1", None),
        ("", None),
        (None, None),
    ],
)
def test_to_bytes_reads_php_and_wordpress_sizes(value, expected):
    assert to_bytes("wp.memory_limit", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3), (3, 3), ("0", 0), (" 12 ", 12), ("", None), (None, None)]
)
def test_to_count(value, expected):
    assert to_count("users.total", value) == expected


@pytest.mark.parametrize(
    ("caster", "value", "message"),
    [
        (to_bool, "maybe", "server.php_soap: cannot read 'maybe' as yes/no"),
        (to_bool, 2, "server.php_soap: cannot read 2 as yes/no"),
        (to_bytes, "lots", "server.php_soap: cannot read 'lots' as a size in bytes"),
        (to_bytes, "-5M", "server.php_soap: cannot read '-5M' as a size in bytes"),
        (to_count, "-3", "server.php_soap: cannot read '-3' as a count"),
        (to_count, "²", "server.php_soap: cannot read '²' as a count"),
        (to_count, True, "server.php_soap: cannot read True as a count"),
        (to_text, {"a": 1}, "server.php_soap: cannot read {'a': 1} as text"),
    ],
)
def test_uncastable_values_raise_a_field_error_naming_the_field(caster, value, message):
    with pytest.raises(FieldError) as raised:
        caster("server.php_soap", value)
    assert str(raised.value) == message
    assert raised.value.field == "server.php_soap"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("8.2.36", "8.2"),
        ("6.5", "6.5"),
        ("7", "7.0"),
        ("8.0.35-0ubuntu0.22.04.1", "8.0"),
        ("10.6.16-MariaDB", "10.6"),
        ("v2.1", "2.1"),
        ("beta", None),
        (None, None),
        ("", None),
    ],
)
def test_major_minor(version, expected):
    assert major_minor(version) == expected


def test_to_text_keeps_numbers_as_text():
    assert to_text("wp.version", 6.5) == "6.5"
    assert to_text("wp.version", " 6.5.3 ") == "6.5.3"


def test_section_accepts_absent_and_empty_and_rejects_scalars():
    assert section({}, "extra") == {}
    assert section({"extra": []}, "extra") == {}
    assert section({"server": {"php_version": "8.2"}}, "server") == {"php_version": "8.2"}
    with pytest.raises(FieldError, match="server: cannot read 'nginx' as an object"):
        section({"server": "nginx"}, "server")
