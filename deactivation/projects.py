"""The project registry (MongoDB `projects`): which plugins and themes we accept events for.

A project is identified by its `hash` (the UUID the SDK sends), and carries its custom reasons,
the whitelist of `extra[...]` custom fields to keep, and its mail integrations (provider and list
id only; credentials live in the mail sender's own secret store, never here).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from deactivation.mongo import PROJECTS
from deactivation.reasons import RESERVED_REASON_IDS, reason_labels

_REASON_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELD_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PROVIDERS = ("mailchimp", "mailerlite", "sendinblue", "convertkit", "fluentcrm", "mailpoet", "webhook")


class ProjectError(ValueError):
    """A project definition is invalid, duplicated or missing."""


class MailIntegration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    list_id: str = Field(min_length=1, max_length=128)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in _PROVIDERS:
            raise ValueError(f"unknown mail provider {value!r}; known: {', '.join(_PROVIDERS)}")
        return value


class Project(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hash: str
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["plugin", "theme"] = "plugin"
    custom_reasons: dict[str, str] = Field(default_factory=dict)
    custom_fields: list[str] = Field(default_factory=list)
    mail_integrations: list[MailIntegration] = Field(default_factory=list)
    #: Whether the admin's e-mail and name are kept beyond the raw store: `keep`; only when the SDK
    #: says tracking was allowed (`only_if_tracking_allowed`); or never (`drop`).
    contact_policy: Literal["keep", "only_if_tracking_allowed", "drop"] = "keep"
    created_at: datetime | None = None

    @field_validator("hash")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return normalise_hash(value)

    @field_validator("custom_reasons")
    @classmethod
    def _reason_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for reason_id, label in value.items():
            if not _REASON_ID.match(reason_id):
                raise ValueError(f"custom reason id {reason_id!r} must be lowercase letters, digits, - or _")
            if reason_id in RESERVED_REASON_IDS:
                raise ValueError(f"custom reason id {reason_id!r} is a built-in reason")
            if not label.strip():
                raise ValueError(f"custom reason {reason_id!r} needs a label")
        return value

    @field_validator("custom_fields")
    @classmethod
    def _field_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if not _FIELD_KEY.match(key):
                raise ValueError(f"custom field key {key!r} must be 1-64 letters, digits, _ . or -")
        return sorted(set(value))

    @property
    def reasons(self) -> dict[str, str]:
        """Every valid reason id → label for this project."""
        return reason_labels(self.custom_reasons)


def normalise_hash(value: str) -> str:
    """The canonical (lowercase, hyphenated) form of a project hash; ValueError if not a UUID."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"project hash must be a UUID, got {value!r}") from exc


def ensure_project_indexes(db: Database) -> None:
    db[PROJECTS].create_index("hash", unique=True, name="hash_unique")


def add_project(db: Database, project: Project) -> Project:
    ensure_project_indexes(db)
    stored = project.model_copy(update={"created_at": project.created_at or datetime.now(UTC)})
    try:
        db[PROJECTS].insert_one(stored.model_dump(mode="json"))
    except DuplicateKeyError as exc:
        raise ProjectError(f"a project with hash {project.hash} already exists") from exc
    return stored


def upsert_project(db: Database, project: Project) -> Project:
    """Create or replace a project (idempotent; used by the demo and tests)."""
    ensure_project_indexes(db)
    document = project.model_dump(mode="json")
    document["created_at"] = document["created_at"] or datetime.now(UTC).isoformat()
    db[PROJECTS].replace_one({"hash": project.hash}, document, upsert=True)
    return Project.model_validate(document)


def list_projects(db: Database) -> list[Project]:
    return [Project.model_validate(_strip_id(doc)) for doc in db[PROJECTS].find().sort("name", 1)]


def get_project(db: Database, project_hash: str) -> Project:
    document = db[PROJECTS].find_one({"hash": normalise_hash(project_hash)})
    if document is None:
        raise ProjectError(f"no project with hash {project_hash}")
    return Project.model_validate(_strip_id(document))


def load_registry(db: Database) -> dict[str, Project]:
    """hash → project, loaded once per pipeline run (the Beam side input)."""
    return {project.hash: project for project in list_projects(db)}


def _strip_id(document: dict) -> dict:
    document.pop("_id", None)
    return document
