"""Which records belong to the sites an erasure or an export is about, in every store.

A request names a project and a site URL, or a project and an admin e-mail (then it covers every
site of the project that e-mail was sent from). `Subjects` holds the sites as keyed hashes (what
the erasure register keeps) and, while a run has them, as clear URLs (what the stores hold):

* raw envelopes and MongoDB documents are matched by key: `site_key(body.url)` in the set, or the
  admin e-mail (`admin_email`, legacy `user_email`) equal, ignoring case;
* text that no longer parses (a torn raw line, a rejected request, an unparseable dead letter) is
  matched by the clear URL or e-mail appearing in it as a whole (https://a.example does not match
  https://a.example.org or https://a.example/shop), decoded from form or JSON escaping first.

Scanning years of raw files parses only the files that mention a URL or the e-mail at all (`needles`,
a byte search), so the cost is one read per file, not one JSON parse per record.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

import orjson

from deactivation.erasure import email_key, normalise_site_url, site_key
from deactivation.projects import normalise_hash

#: Body fields that carry the admin's e-mail (`user_email`: SDK v1.1 and earlier).
EMAIL_FIELDS = ("admin_email", "user_email")
#: Longest site URL or e-mail a request may name (longer ones are no real site or address).
MAX_URL_CHARS = 2000
MAX_EMAIL_CHARS = 254

# What may follow a site URL inside a longer text without being more of the same URL (a path, a port,
# a longer host). RE2-compatible (no look-arounds): the same patterns run in BigQuery and DuckDB.
_URL_AFTER = r"/*([^\w.~%/:-]|$)"
_URL_BEFORE = r"(^|[^\w.-])"
_EMAIL_BEFORE = r"(^|[^\w.+%-])"
_EMAIL_AFTER = r"([^\w.-]|$)"


class RequestError(ValueError):
    """An erasure or export request that cannot be carried out as given (the message says why)."""


def check_project(project_hash: str) -> str:
    try:
        return normalise_hash(project_hash)
    except ValueError:
        raise RequestError("--project must be a project hash (a UUID)") from None


def check_site_url(url: str) -> str:
    normalised = normalise_site_url(url or "")
    if not normalised or len(normalised) > MAX_URL_CHARS or any(c in normalised for c in "\r\n\t "):
        raise RequestError(f"--site must be a site URL of at most {MAX_URL_CHARS} characters, without spaces")
    return normalised


def check_email(email: str) -> str:
    cleaned = (email or "").strip().lower()
    local, at, domain = cleaned.partition("@")
    if not (at and local and domain) or len(cleaned) > MAX_EMAIL_CHARS or any(c.isspace() for c in cleaned):
        raise RequestError(f"--email must be an e-mail address of at most {MAX_EMAIL_CHARS} characters")
    return cleaned


def url_pattern(urls: Iterable[str]) -> str:
    """An RE2/Python pattern finding any of these URLs as a whole inside a text."""
    alternatives = "|".join(re.escape(url) for url in sorted(urls))
    return f"{_URL_BEFORE}({alternatives}){_URL_AFTER}" if alternatives else r"[^\s\S]"


def email_pattern(email: str) -> str:
    return f"(?i){_EMAIL_BEFORE}{re.escape(email)}{_EMAIL_AFTER}"


@dataclass
class Subjects:
    """The sites (and e-mail) one request covers, within one project."""

    project_hash: str
    key: bytes
    site_keys: set[str] = field(default_factory=set)
    site_urls: set[str] = field(default_factory=set)
    email: str | None = None

    def add_site(self, url: str) -> None:
        url = normalise_site_url(url)
        self.site_urls.add(url)
        self.site_keys.add(site_key(self.key, self.project_hash, url))

    @property
    def email_key(self) -> str | None:
        return email_key(self.key, self.project_hash, self.email) if self.email else None

    # --- raw envelopes -------------------------------------------------------------------------------
    @property
    def unresolved(self) -> bool:
        """Some sites are known by key only (a resumed e-mail erasure whose URLs left every store)."""
        return len(self.site_keys) > len(self.site_urls)

    def needles(self) -> list[bytes]:
        """Byte strings at least one of which a raw file holding a subject's record contains: the clear
        URLs and the e-mail as orjson writes them (a JSON string's inside), the e-mail lower-cased
        (compared with the lower-cased file). Empty when only keys are known: then every file is read."""
        if self.unresolved:
            return []
        found = [orjson.dumps(url)[1:-1] for url in self.site_urls]
        if self.email:
            found.append(orjson.dumps(self.email)[1:-1])
        return found

    def may_hold(self, data: bytes, needles: list[bytes]) -> bool:
        if not needles or (self.email and not self.email.isascii()):
            return True  # no byte search can rule a file out
        lowered = data.lower() if self.email else data
        return any(needle in data or needle in lowered for needle in needles)

    def envelope_matches(self, envelope: Any) -> bool:
        """A parsed raw record of this project whose site is a subject, or that carries the e-mail."""
        if not isinstance(envelope, dict):
            return False
        body = envelope.get("body")
        if not isinstance(body, dict) or not self._of_project(body.get("hash")):
            return False
        url = body.get("url")
        if isinstance(url, str) and site_key(self.key, self.project_hash, url) in self.site_keys:
            return True
        return self.carries_email(body)

    def carries_email(self, body: dict[str, Any]) -> bool:
        if not self.email:
            return False
        return any(
            isinstance(body.get(name), str) and body[name].strip().lower() == self.email
            for name in EMAIL_FIELDS
        )

    def record_matches(self, text: bytes) -> bool:
        """One raw record (a line): parsed and matched by key, or, when it does not parse, by text."""
        try:
            envelope = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self.text_mentions(text.decode("utf-8", errors="replace"))
        if isinstance(envelope, dict) and isinstance(envelope.get("body"), dict):
            return self.envelope_matches(envelope)
        return self.text_mentions(text.decode("utf-8", errors="replace"))

    def site_of(self, envelope: Any) -> str | None:
        """The normalised site URL of a parsed envelope of this project, or None."""
        if not isinstance(envelope, dict):
            return None
        body = envelope.get("body")
        if not isinstance(body, dict) or not self._of_project(body.get("hash")):
            return None
        url = body.get("url")
        return normalise_site_url(url) if isinstance(url, str) and normalise_site_url(url) else None

    def _of_project(self, body_hash: Any) -> bool:
        if body_hash == self.project_hash:
            return True
        if not isinstance(body_hash, str):
            return False
        try:
            return normalise_hash(body_hash) == self.project_hash
        except ValueError:
            return False

    # --- text -----------------------------------------------------------------------------------------
    def text_mentions(self, text: str) -> bool:
        """Whether a text (form-encoded, JSON or plain) names a subject URL or the e-mail."""
        variants = {text, text.replace("\\/", "/")}
        if "%" in text or "+" in text:
            variants.add(unquote_plus(text))
        url_regex, email_regex = _text_patterns(frozenset(self.site_urls), self.email)
        return any(
            (url_regex is not None and url_regex.search(variant))
            or (email_regex is not None and email_regex.search(variant))
            for variant in variants
        )

    def rejected_matches(self, data: bytes) -> bool:
        """A rejected request kept under rejected/ (its body as text, or base64) naming a subject."""
        try:
            record = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.text_mentions(data.decode("utf-8", errors="replace"))
        if not isinstance(record, dict):
            return self.text_mentions(data.decode("utf-8", errors="replace"))
        texts = [data.decode("utf-8", errors="replace")]
        if isinstance(record.get("body"), str):
            texts.append(record["body"])
        if isinstance(record.get("body_base64"), str):
            with contextlib.suppress(binascii.Error, ValueError):
                texts.append(base64.b64decode(record["body_base64"]).decode("utf-8", errors="replace"))
        return any(self.text_mentions(text) for text in texts)


@lru_cache(maxsize=8)
def _text_patterns(
    site_urls: frozenset[str], email: str | None
) -> tuple[re.Pattern | None, re.Pattern | None]:
    url_regex = re.compile(url_pattern(site_urls)) if site_urls else None
    email_regex = re.compile(email_pattern(email)) if email else None
    return url_regex, email_regex
