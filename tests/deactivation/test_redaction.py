"""Redaction: personal fields, e-mail and IP addresses out of what is kept for diagnosis."""

from __future__ import annotations

import orjson

from deactivation.redaction import (
    REDACTED,
    keyed_hash,
    mask_free_text,
    redacted_body,
    redacted_envelope,
    redacted_text,
    redacted_value,
)

PERSONAL = ("jane@shop.example", "Jane", "Doe", "203.0.113.7", "2001:db8::7")


def _envelope() -> dict:
    return {
        "event_id": "e",
        "remote_addr": "203.0.113.7",
        "user_agent": "WordPress/6.5",
        "body": {
            "hash": "h",
            "admin_email": "jane@shop.example",
            "first_name": "Jane",
            "last_name": "Doe",
            "ip_address": "2001:db8::7",
            "reason_id": "other",
            "user_email": "",
        },
    }


def test_envelope_keeps_its_shape_without_personal_values():
    envelope = _envelope()
    kept = redacted_envelope(envelope)
    text = orjson.dumps(kept).decode()
    assert not [value for value in PERSONAL if value in text]
    assert kept["body"]["reason_id"] == "other" and kept["user_agent"] == "WordPress/6.5"
    assert kept["body"]["admin_email"] == kept["remote_addr"] == REDACTED
    assert kept["body"]["user_email"] == "", "an empty field stays empty: nothing was sent"
    assert envelope["body"]["first_name"] == "Jane", "the input is not changed"


def test_body_and_envelope_without_body():
    assert redacted_body({"first_name": None, "x": 1}) == {"first_name": None, "x": 1}
    assert redacted_envelope({"remote_addr": "1.2.3.4"}) == {"remote_addr": REDACTED}


def test_nested_values_lose_personal_fields_at_every_level():
    body = {"admin_email": "jane@shop.example", "users": {"first_name": "Jane", "notes": ["203.0.113.7"]}}
    kept = redacted_value(body)
    assert kept == {"admin_email": REDACTED, "users": {"first_name": REDACTED, "notes": ["[ip]"]}}
    form = "hash=h&users%5Bx%5D=1&users[first_name]=Jane&wp[last_name]=Doe&reason_id=other"
    assert redacted_text(form) == (
        f"hash=h&users%5Bx%5D=1&users[first_name]={REDACTED}&wp[last_name]={REDACTED}&reason_id=other"
    )


def test_runs_no_address_can_be_are_not_taken_for_one():
    # Patterns bounded by what an address can be: a 64-letter local part at most, 20-digit phones.
    assert mask_free_text("a" * 65 + "@shop.example") == "a" * 65 + "@shop.example"
    assert mask_free_text("1" * 5000) == "[phone]" + "1" * (5000 - 22)


def test_torn_json_and_form_text_lose_personal_values():
    torn = orjson.dumps(_envelope())[:-20]  # cut inside the body, as a torn line is
    form = b"hash=h&first_name=Jane&last_name=Doe&admin_email=jane%40shop.example&note=from+203.0.113.7"
    for text in (torn, form):
        kept = redacted_text(text)
        assert not [value for value in PERSONAL if value in kept], kept
    assert "hash=h" in redacted_text(form)


def test_free_text_masks_contact_details_but_keeps_the_answer():
    text = "Broke on 2.4.0 at 10:30, mail jane@shop.example or +49 170 1234567, see https://x.example/a"
    assert mask_free_text(text) == "Broke on 2.4.0 at 10:30, mail [email] or [phone], see [url]"
    assert mask_free_text("server 203.0.113.7 and fe80::1 down") == "server [ip] and [ip] down"
    assert mask_free_text(None) == ""


def test_keyed_hash_depends_on_the_key():
    address = "jane@shop.example"
    assert keyed_hash(address, b"k1") == keyed_hash(address, b"k1") != keyed_hash(address, b"k2")
    assert "jane" not in keyed_hash(address, b"k1") and len(keyed_hash(address, b"k1")) == 64
