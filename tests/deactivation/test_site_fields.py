"""Cleaning and casting of the site fields the SDK sends."""

from __future__ import annotations

import pytest

from deactivation.site_fields import (
    INT64_MAX,
    MAX_VERSION_CHARS,
    SHOWN_CHARS,
    FieldError,
    major_minor,
    section,
    shown,
    to_bool,
    to_bytes,
    to_count,
    to_text,
    to_version,
)


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


# --- Whatever a sender puts in a field, a caster returns or raises FieldError, nothing else ----------
def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("caster", "value", "expected"),
    [
        (to_count, "9223372036854775808", "a count"),
        (to_count, 2**63, "a count"),
        (to_count, 18446744073709551615, "a count"),  # the largest integer orjson reads
        (to_count, "9" * 5000, "a count"),  # beyond Python's int-from-text limit
        (to_count, " " + "9" * 30 + " ", "a count"),
        (to_count, "١٢", "a count"),  # Arabic-Indic digits: isdigit() but not a count
        (to_count, 1.5, "a count"),
        (to_bytes, "9" * 400 + " GB", "a size in bytes"),  # float overflow
        (to_bytes, "1" + "0" * 30 + "P", "a size in bytes"),
        (to_bytes, "9999999999 PB", "a size in bytes"),  # beyond INT64
        (to_bytes, 2**63, "a size in bytes"),
        (to_bytes, 1e300, "a size in bytes"),
        (to_text, 10**5000, "text"),
        (to_text, _nested(5000), "text"),
        (to_version, "1." + "9" * 5000, "a version"),
        (to_version, "x" * 65, "a version"),
        (to_bool, 10**5000, "yes/no"),
        (to_bool, _nested(5000), "yes/no"),
    ],
    ids=lambda part: getattr(part, "__name__", None) or type(part).__name__,
)
def test_hostile_values_raise_only_a_field_error(caster, value, expected):
    with pytest.raises(FieldError) as raised:
        caster("users.total", value)
    message = str(raised.value)
    assert message.startswith("users.total: cannot read ")
    assert message.endswith(f" as {expected}")
    assert len(message) <= len("users.total: cannot read ") + SHOWN_CHARS + len(f" as {expected}")


def test_counts_and_sizes_up_to_int64_are_kept():
    assert to_count("users.total", str(INT64_MAX)) == INT64_MAX
    assert to_count("users.total", INT64_MAX) == INT64_MAX
    assert to_bytes("wp.memory_limit", INT64_MAX) == INT64_MAX
    assert to_bytes("wp.memory_limit", "8191 PB") == 8191 * 1024**5


def test_versions_are_text_of_bounded_length():
    assert to_version("wp.version", 6.5) == "6.5"
    assert to_version("server.mysql_version", "8.0.35-0ubuntu0.22.04.1") == "8.0.35-0ubuntu0.22.04.1"
    assert to_version("wp.version", "x" * MAX_VERSION_CHARS) == "x" * MAX_VERSION_CHARS
    assert to_version("wp.version", None) is None


@pytest.mark.parametrize("version", ["1" * 5000 + ".2", "1." + "2" * 5000, "1234567890.1", "x" * 10_000])
def test_major_minor_of_no_plausible_version_is_none(version):
    assert major_minor(version) is None


def test_shown_values_are_short_whatever_their_size_or_depth():
    assert shown("lots") == "'lots'"
    assert shown({"html": "<b>"}) == "{'html': '<b>'}"
    assert shown("a" * 10_000) == "'" + "a" * (SHOWN_CHARS - 4) + "..."
    assert shown(10**5000) == "<int>"
    assert shown(_nested(5000)) == "[[[[...]]]]"
    assert len(shown({str(i): "x" * 100 for i in range(1000)})) <= SHOWN_CHARS
