"""The erasure register: keyed hashes of what was erased on request, which the pipeline consults.

MongoDB collection `erasures` holds one document per erased site (`kind: "site"`, `_id` = keyed hash
of project hash + normalised site URL) or admin e-mail (`kind: "email"`, `_id` = keyed hash of the
project hash + lower-cased address), never the clear values. A re-run, a backfill or a late file
then cannot bring an erased site back: the pipeline turns its events into `erased` dead letters
without content. `deact erase` (privacy/) writes the register through `register_erasure`, and
records what each erasure removed in `erasure_audit` (counts only, never the erased values).

A site erased because of its admin e-mail is registered under its own site key too, marked with the
e-mail's key (`via`): a resumed erasure of that e-mail finds those sites again even once the
e-mail is gone from every store.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import UpdateOne
from pymongo.database import Database

from deactivation.redaction import keyed_hash
from deactivation.secret_keys import derived_key
from deactivation.settings import Settings

ERASURES = "erasures"
#: One document per erasure run: when, which project, counts per store, who ran it.
ERASURE_AUDIT = "erasure_audit"
#: Write-ahead journal of an erasure in progress: which raw records it removed (paths and line numbers,
#: no content), so a resumed run's warehouse step still knows them. Removed once the warehouse is done.
ERASURE_JOURNAL = "erasure_journal"
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


# --- Write side ----------------------------------------------------------------------------------------
def register_erasure(
    db: Database,
    settings: Settings,
    project_hash: str,
    *,
    site_urls: Iterable[str] = (),
    email: str | None = None,
) -> list[str]:
    """Add the keyed hashes of these sites (and of the e-mail) to the register; idempotent.

    Returns the keys written. Sites listed together with an e-mail are marked as erased through it.
    """
    key = erasure_key(settings)
    now = datetime.now(UTC)
    via = email_key(key, project_hash, email) if email else None
    operations, keys = [], []
    for url in sorted({normalise_site_url(u) for u in site_urls}):
        site = site_key(key, project_hash, url)
        update: dict[str, Any] = {"$setOnInsert": {"kind": "site", "project_hash": project_hash, "at": now}}
        if via:
            update["$addToSet"] = {"via": via}
        operations.append(UpdateOne({"_id": site}, update, upsert=True))
        keys.append(site)
    if via:
        operations.append(
            UpdateOne(
                {"_id": via},
                {"$setOnInsert": {"kind": "email", "project_hash": project_hash, "at": now}},
                upsert=True,
            )
        )
        keys.append(via)
    if operations:
        db[ERASURES].bulk_write(operations, ordered=True)
    return keys


def sites_erased_via(db: Database, settings: Settings, project_hash: str, email: str) -> set[str]:
    """Site keys registered because of this e-mail (what a resumed e-mail erasure still covers)."""
    via = email_key(erasure_key(settings), project_hash, email)
    return {d["_id"] for d in db[ERASURES].find({"kind": "site", "via": via}, {"_id": 1})}


def is_registered(db: Database, settings: Settings, project_hash: str, site_url: str) -> bool:
    key = site_key(erasure_key(settings), project_hash, site_url)
    return db[ERASURES].count_documents({"_id": key}, limit=1) > 0


def record_erasure_audit(
    db: Database,
    *,
    project_hash: str,
    subject: Literal["site", "email"],
    subject_key: str,
    counts: Mapping[str, Any],
    started_at: datetime,
) -> str:
    """One audit entry: when, which project, what kind of subject (its keyed hash, so runs of the
    same request can be told apart), counts per store, and the OS user who ran it."""
    entry_id = str(uuid.uuid4())
    db[ERASURE_AUDIT].insert_one(
        {
            "_id": entry_id,
            "started_at": started_at,
            "finished_at": datetime.now(UTC),
            "project_hash": project_hash,
            "subject": subject,
            "subject_key": subject_key,
            "counts": dict(counts),
            "operator": operator_name(),
        }
    )
    return entry_id


def operator_name() -> str:
    """Who ran the erasure: the OS user (never the person whose data it was)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        return "unknown"
