"""The erasure register: keyed hashes of what was erased on request, which the pipeline consults.

MongoDB collection `erasures` holds one document per erased site (`kind: "site"`, `_id` = keyed hash
of project hash + normalised site URL) or admin e-mail (`kind: "email"`, `_id` = keyed hash of the
project hash + lower-cased address), never the clear values. A re-run, a backfill or a late file
then cannot bring an erased site back: the pipeline turns its events into `erased` dead letters
without content. `deact erase` (privacy/) writes the register; this module only reads and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymongo.database import Database

from deactivation.redaction import keyed_hash
from deactivation.secret_keys import derived_key
from deactivation.settings import Settings

ERASURES = "erasures"
KEY_PURPOSE = "erasure"


def normalise_site_url(url: str) -> str:
    """A site URL as history keys it: surrounding space and trailing slashes removed."""
    return url.strip().rstrip("/")


def site_key(key: bytes, project_hash: str, site_url: str) -> str:
    return keyed_hash(f"site|{project_hash}|{normalise_site_url(site_url)}", key)


def email_key(key: bytes, project_hash: str, email: str) -> str:
    return keyed_hash(f"email|{project_hash}|{email.strip().lower()}", key)


@dataclass(frozen=True)
class ErasureRegister:
    """What the pipeline needs to recognise erased sites (a Beam side input: small and picklable)."""

    key: bytes = b""
    site_keys: frozenset[str] = field(default_factory=frozenset)
    email_keys: frozenset[str] = field(default_factory=frozenset)

    def is_erased(self, project_hash: str, site_url: str | None, admin_email: str | None) -> bool:
        if not (self.site_keys or self.email_keys):
            return False
        if site_url and site_key(self.key, project_hash, site_url) in self.site_keys:
            return True
        return bool(
            isinstance(admin_email, str)
            and admin_email
            and email_key(self.key, project_hash, admin_email) in self.email_keys
        )


def erasure_key(settings: Settings) -> bytes:
    return derived_key(settings, KEY_PURPOSE)


def load_erasure_register(db: Database, settings: Settings) -> ErasureRegister:
    """Every erased site and e-mail, as keyed hashes (loaded once per pipeline run)."""
    sites, emails = set(), set()
    for document in db[ERASURES].find({}, {"_id": 1, "kind": 1}):
        (sites if document.get("kind") == "site" else emails).add(document["_id"])
    return ErasureRegister(erasure_key(settings), frozenset(sites), frozenset(emails))
