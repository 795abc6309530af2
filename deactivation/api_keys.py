"""Dashboard API keys (MongoDB `api_keys`): per project, hashed at rest, shown once, revocable.

A key reads `dk_<key id>_<secret>`. The key id is public (it names the key in `deact projects key
list` and `revoke`); the secret is stored only as an HMAC-SHA256 under a key derived from
SECRET_KEY, so a copy of the database opens nothing. Checking a key is one look-up by id and a
constant-time comparison of the hashes, on every request: a revoked key stops working at once.

A key covers one project, or every project (an operator key, `project_hash` None). Its scope says
what it may read: `read` (everything but personal data) or `personal` (also the admin's e-mail
and name).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING
from pymongo.database import Database

from deactivation.projects import get_project, normalise_hash
from deactivation.secret_keys import derived_key
from deactivation.settings import Settings

API_KEYS = "api_keys"
KEY_PREFIX = "dk_"
Scope = Literal["read", "personal"]
SCOPES: tuple[str, ...] = ("read", "personal")
_HASH_PURPOSE = "dashboard-api-key"
_KEY_ID_BYTES = 6  # 12 hex characters: unique enough to name a key, never the secret part
_SECRET_BYTES = 32
#: The exact shape of a key; anything else is refused before touching the database.
_KEY_PATTERN = re.compile(r"^dk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class ApiKeyError(ValueError):
    """A key request is invalid (unknown project or key id, bad scope)."""


class ApiKey(BaseModel):
    """A stored key, without its secret."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    name: str = Field(max_length=200)
    project_hash: str | None  # None: an operator key covering every project
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_operator(self) -> bool:
        return self.project_hash is None

    @property
    def sees_personal_data(self) -> bool:
        return self.scope == "personal"

    def covers(self, project_hash: str) -> bool:
        return self.project_hash is None or self.project_hash == project_hash


def ensure_key_indexes(db: Database) -> None:
    db[API_KEYS].create_index([("project_hash", ASCENDING), ("created_at", ASCENDING)], name="project_time")


def create_key(
    db: Database,
    settings: Settings,
    *,
    project_hash: str | None,
    scope: str = "read",
    name: str = "",
) -> tuple[ApiKey, str]:
    """A new key and its full text (the only time the secret exists outside the caller)."""
    if scope not in SCOPES:
        raise ApiKeyError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if project_hash is not None:
        try:
            project_hash = get_project(db, normalise_hash(project_hash)).hash
        except ValueError as exc:  # ProjectError is a ValueError too
            raise ApiKeyError(str(exc)) from exc
    ensure_key_indexes(db)
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    key = ApiKey(
        key_id=key_id,
        name=name.strip() or ("operator key" if project_hash is None else "dashboard key"),
        project_hash=project_hash,
        scope=scope,  # type: ignore[arg-type]
        created_at=datetime.now(UTC),
    )
    document = key.model_dump() | {"_id": key_id, "secret_hash": _secret_hash(settings, secret)}
    db[API_KEYS].insert_one(document)
    return key, f"{KEY_PREFIX}{key_id}_{secret}"


def list_keys(db: Database, project_hash: str | None = None) -> list[ApiKey]:
    """Keys (revoked ones too, marked), oldest first; of one project, or all when None."""
    query = {} if project_hash is None else {"project_hash": normalise_hash(project_hash)}
    return [_key_of(document) for document in db[API_KEYS].find(query).sort("created_at", ASCENDING)]


def revoke_key(db: Database, key_id: str) -> ApiKey:
    """Mark a key revoked (idempotent: the first revocation time is kept)."""
    db[API_KEYS].update_one({"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}})
    document = db[API_KEYS].find_one({"_id": key_id})
    if document is None:
        raise ApiKeyError(f"no key with id {key_id!r}")
    return _key_of(document)


def verify_key(db: Database, settings: Settings, presented: str) -> ApiKey | None:
    """The live key `presented` is, or None (malformed, unknown, wrong secret or revoked)."""
    match = _KEY_PATTERN.match(presented or "")
    if match is None:
        return None
    key_id, secret = match.groups()
    document = db[API_KEYS].find_one({"_id": key_id})
    if document is None or document.get("revoked_at") is not None:
        return None
    if not hmac.compare_digest(document.get("secret_hash", ""), _secret_hash(settings, secret)):
        return None
    return _key_of(document)


def live_key(db: Database, key_id: str) -> ApiKey | None:
    """The key with this id if it is not revoked (a browser session holds the id, not the secret)."""
    if not isinstance(key_id, str) or not re.fullmatch(r"[0-9a-f]{12}", key_id):
        return None
    document = db[API_KEYS].find_one({"_id": key_id, "revoked_at": None})
    return None if document is None else _key_of(document)


def _secret_hash(settings: Settings, secret: str) -> str:
    return hmac.new(derived_key(settings, _HASH_PURPOSE), secret.encode("ascii"), hashlib.sha256).hexdigest()


def _key_of(document: dict) -> ApiKey:
    return ApiKey.model_validate({k: v for k, v in document.items() if k not in {"_id", "secret_hash"}})
