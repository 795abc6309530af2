"""The SDK client encodes exactly what WordPress sends for the SDK's PHP array."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deactivation.sdk_client import encode_form, site_user_agent

CAPTURES = sorted((Path(__file__).parents[1] / "fixtures" / "sdk_captures").glob("*.json"))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_encode_form_reproduces_every_capture_byte_for_byte(path):
    capture = json.loads(path.read_text())
    assert encode_form(capture["body"]) == capture["body_encoded"]


def test_encode_form_follows_http_build_query():
    body = {"a": True, "b": False, "c": None, "d": [], "e": {}, "f": "", "g": ["x", {"h": 1}], "i": "~ +"}
    assert encode_form(body) == "a=1&b=0&f=&g%5B0%5D=x&g%5B1%5D%5Bh%5D=1&i=%7E+%2B"


def test_user_agent_is_the_sdk_site_fingerprint(sdk_captures):
    for capture in sdk_captures.values():
        assert site_user_agent(capture["body"]["url"]) == capture["headers"]["User-Agent"]
