"""Personal data out of everything stored beyond the raw store: one home for what counts and how.

The raw store keeps every envelope as sent (it is the source of truth re-runs read, covered by
erasure and retention). Everything else that keeps request content for diagnosis (dead letters in
the warehouse, rejected requests under `rejected/`) goes through here first, and so do free-text
answers shown to analysts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

#: Body fields of the SDK's request that identify a person.
PERSONAL_BODY_FIELDS = frozenset({"admin_email", "user_email", "first_name", "last_name", "ip_address"})
#: Envelope fields (outside the body) that identify a person.
PERSONAL_ENVELOPE_FIELDS = frozenset({"remote_addr"})
#: What a redacted value is replaced by.
REDACTED = "<redacted>"

# Every pattern takes time linear in its input (a hostile body may be 256 KiB of one character):
# a match may start only where a run begins (the look-behinds), and every repeat is bounded by
# what an address can be (RFC 5321: 64 characters before the @; a phone number, at most 20 digits
# and separators).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_URL = re.compile(r"\b(?:https?://|www\.)\S{1,2048}", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\d+])\+?\d[\d ()-]{7,20}\d")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
# Two or more hex groups around a '::', or the full eight groups: what an IPv6 address looks like.
_IPV6 = re.compile(
    r"(?<![0-9A-Fa-f:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
    r"|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}))(?![0-9A-Fa-f:])"
)
_PERSONAL_NAMES = "|".join(sorted(PERSONAL_BODY_FIELDS | PERSONAL_ENVELOPE_FIELDS))
# A personal field's value in text that no longer parses: JSON ("first_name": "Ann ...) up to the
# closing quote or the end of the text, at any depth; and form encoding, top level (first_name=Ann)
# or nested (users[first_name]=Ann), up to the next '&'.
_JSON_PERSONAL_VALUE = re.compile(rf'("(?:{_PERSONAL_NAMES})"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)')
_FORM_PERSONAL_VALUE = re.compile(rf"((?:^|&)(?:[^&=\[]*\[)?(?:{_PERSONAL_NAMES})\]?=)[^&]*")


def redacted_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope with every personal field present replaced by REDACTED (body and outside)."""
    outer = {k: REDACTED if k in PERSONAL_ENVELOPE_FIELDS and v else v for k, v in envelope.items()}
    body = envelope.get("body")
    if isinstance(body, dict):
        outer["body"] = redacted_body(body)
    return outer


def redacted_body(body: dict[str, Any]) -> dict[str, Any]:
    """An SDK body with its personal fields replaced by REDACTED (free text masked too)."""
    return {
        key: REDACTED if key in PERSONAL_BODY_FIELDS and value not in (None, "") else value
        for key, value in body.items()
    }


def redacted_value(value: Any) -> Any:
    """A decoded body at any nesting (the caller bounds its depth) with personal fields replaced at
    every level and contact details masked in every other string, keys included."""
    if isinstance(value, dict):
        return {
            mask_free_text(str(key)): REDACTED
            if key in PERSONAL_BODY_FIELDS and item not in (None, "")
            else redacted_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redacted_value(item) for item in value]
    if isinstance(value, str):
        return mask_free_text(value)
    return value


def redacted_text(text: bytes | str) -> str:
    """Text that no longer parses (a torn line, an undecodable body): personal field values,
    e-mail and IP addresses masked, so what is kept still shows the shape of what went wrong."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = _JSON_PERSONAL_VALUE.sub(rf'\1"{REDACTED}"', text)
    text = _FORM_PERSONAL_VALUE.sub(rf"\1{REDACTED}", text)
    return mask_free_text(text)


def mask_free_text(text: str | None) -> str:
    """Free text with e-mail and IP addresses, URLs and phone numbers masked ([email], [ip], [url],
    [phone]): how an answer is shown to analysts and plugin authors, the answer itself kept."""
    if not text:
        return ""
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[url]", text)
    text = _IPV6.sub("[ip]", text)
    text = _IPV4.sub("[ip]", text)
    return _PHONE.sub("[phone]", text)


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of `value`: stable for one key, and not reversible by guessing without the key."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
