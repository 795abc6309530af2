"""Which records belong to a site: by key for parsed envelopes, by whole-URL match in text."""

from __future__ import annotations

import base64
import re
from urllib.parse import urlencode

import orjson
import pytest

from privacy.matching import Subjects, url_pattern

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
SITE = "https://shop.example"


@pytest.fixture
def subjects() -> Subjects:
    found = Subjects(PROJECT, b"k" * 32)
    found.add_site(SITE + "/")
    return found


def envelope(**body) -> bytes:
    return orjson.dumps({"event_id": "x", "body": {"hash": PROJECT, **body}})


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (envelope(url=SITE), True),
        (envelope(url=f" {SITE}// "), True),
        (envelope(url=SITE, hash=PROJECT.upper()), True),
        (envelope(url=SITE, hash="0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"), False),
        (envelope(url=SITE + ".au"), False),
        (envelope(url=SITE + "/blog"), False),
        (envelope(url="HTTPS://SHOP.EXAMPLE"), False),  # the register keys URLs as sent, case included
        (envelope(url=["not", "text"]), False),
        (b'{"body": {"url": "' + SITE.encode() + b'", "adm', True),  # torn: matched by text
        (b'{"body": {"url": "' + SITE.encode() + b'.au", "adm', False),
        (b"[1, 2]", False),
    ],
)
def test_a_record_is_the_site_s_exactly_when_it_names_it(subjects, record, expected):
    assert subjects.record_matches(record) is expected


def test_an_email_request_matches_admin_and_legacy_addresses_in_any_case(subjects):
    subjects.email = "ann@example.org"
    assert subjects.record_matches(envelope(url="https://other.example", admin_email=" Ann@Example.ORG"))
    assert subjects.record_matches(envelope(url="https://other.example", user_email="ANN@example.org"))
    assert not subjects.record_matches(envelope(url="https://other.example", admin_email="joann@example.org"))
    assert not subjects.record_matches(envelope(url="https://o.example", admin_email="ann@example.org.uk"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (urlencode({"hash": PROJECT, "url": SITE, "wp[": "1"}), True),
        (urlencode({"hash": PROJECT, "url": SITE + "/", "wp[": "1"}), True),
        (urlencode({"url": SITE + ".au"}), False),
        (urlencode({"url": SITE + ":8080"}), False),
        ('{"url": "https:\\/\\/shop.example"', True),  # PHP's json_encode escapes slashes
        ("nothing here", False),
    ],
)
def test_a_rejected_request_is_matched_in_whatever_encoding_it_came(subjects, body, expected):
    record = orjson.dumps({"route": "deactivate", "code": "invalid_form", "body": body})
    assert subjects.rejected_matches(record) is expected
    undecodable = orjson.dumps({"body_base64": base64.b64encode(body.encode() + b"\xff").decode()})
    assert subjects.rejected_matches(undecodable) is expected


def test_the_byte_search_never_rules_out_a_file_that_holds_the_site(subjects):
    needles = subjects.needles()
    assert subjects.may_hold(envelope(url=f" {SITE}/ "), needles)
    assert not subjects.may_hold(envelope(url="https://other.example"), needles)
    subjects.email = "ann@example.org"
    assert subjects.may_hold(
        envelope(url="https://x.example", admin_email="ANN@EXAMPLE.ORG"), subjects.needles()
    )
    subjects.site_keys.add("a-key-whose-url-is-not-known")
    assert subjects.needles() == [] and subjects.may_hold(b"anything", [])


def test_the_url_pattern_means_the_same_in_python_and_re2_syntax():
    pattern = url_pattern({"https://a.example/x+y"})
    assert re.search(pattern, '"url":"https://a.example/x+y/"')
    assert not re.search(pattern, '"url":"https://a.example/x+yz"')
    assert "(?" not in pattern  # no look-arounds: RE2 (BigQuery, DuckDB) has none
