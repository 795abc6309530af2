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
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from deactivation.mongo import PROJECTS
from deactivation.reasons import RESERVED_REASON_IDS, reason_labels

_REASON_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELD_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PROVIDERS = ("mailchimp", "mailerlite", "sendinblue", "convertkit", "fluentcrm", "mailpoet", "webhook")
#: Providers the notification runner has a working adapter for (notifications/providers.py); new
#: or changed projects naming another one are refused, stored ones still load.
SUPPORTED_PROVIDERS = ("webhook", "mailchimp", "mailerlite", "sendinblue", "convertkit")
_UNSUPPORTED_WHY = {
    "fluentcrm": "FluentCRM has no hosted API: its REST API lives on each author's own WordPress site",
    "mailpoet": "MailPoet offers no HTTP API for adding subscribers (only a PHP API inside WordPress)",
}
_EMAIL = re.compile(
    r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$"
)
MAX_RECIPIENTS = 20
MAX_TEMPLATE_CHARS = 20_000
MAX_SUBJECT_CHARS = 300
MAX_URL_CHARS = 2000


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


def _email_list(value: list[str], what: str) -> list[str]:
    if len(value) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} {what} addresses")
    cleaned = []
    for address in value:
        address = address.strip()
        if len(address) > 254 or not _EMAIL.match(address):
            # The address itself stays out of the message: it may end up in logs.
            raise ValueError(f"{what}: not an e-mail address (item {len(cleaned) + 1})")
        cleaned.append(address)
    return list(dict.fromkeys(cleaned))


def check_http_url(value: str, what: str) -> str:
    """An http(s) URL with a host, at most MAX_URL_CHARS long; ValueError otherwise."""
    parsed = urlparse(value)
    if len(value) > MAX_URL_CHARS or parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL of at most {MAX_URL_CHARS} characters")
    return value


class AutoReply(BaseModel):
    """A reply to the site admin for one reason: Jinja2 templates, stored as text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_CHARS)
    body: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)


class NotificationSettings(BaseModel):
    """What the notification runner sends for a project (all off by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The team: one mail per deactivation (empty = off).
    forward_to: list[str] = Field(default_factory=list)
    #: reason id → reply mailed to the site admin (when the event carries an admin e-mail).
    auto_replies: dict[str, AutoReply] = Field(default_factory=dict)
    digest: Literal["off", "daily", "weekly"] = "off"
    digest_to: list[str] = Field(default_factory=list)
    #: IANA time zone the digest's days and weeks are counted in.
    timezone: str = "UTC"
    alerts: Literal["on", "off"] = "off"
    alerts_to: list[str] = Field(default_factory=list)
    #: Signed outbound webhook for deactivation.created and alert.spike (None = off).
    webhook_url: str | None = None

    @field_validator("forward_to")
    @classmethod
    def _forward_to(cls, value: list[str]) -> list[str]:
        return _email_list(value, "forward-to")

    @field_validator("digest_to")
    @classmethod
    def _digest_to(cls, value: list[str]) -> list[str]:
        return _email_list(value, "digest-to")

    @field_validator("alerts_to")
    @classmethod
    def _alerts_to(cls, value: list[str]) -> list[str]:
        return _email_list(value, "alerts-to")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value[:64]!r} (use an IANA name, e.g. Europe/Oslo)"
            ) from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return None if not value else check_http_url(value, "the webhook URL")

    @field_validator("auto_replies")
    @classmethod
    def _reply_ids(cls, value: dict[str, AutoReply]) -> dict[str, AutoReply]:
        for reason_id in value:
            if not _REASON_ID.match(reason_id) and reason_id not in RESERVED_REASON_IDS:
                raise ValueError(f"auto-reply reason id {reason_id[:64]!r} is not a reason id")
        return value

    @model_validator(mode="after")
    def _recipients_when_on(self) -> NotificationSettings:
        if self.digest != "off" and not self.digest_to:
            raise ValueError("a digest needs at least one --digest-to address")
        if self.alerts == "on" and not (self.alerts_to or self.webhook_url):
            raise ValueError("alerts need --alerts-to addresses or a --webhook URL")
        return self


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
    #: Forwards, auto-replies, digests and spike alerts (documents stored before it load as "all off").
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)

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

    @model_validator(mode="after")
    def _auto_reply_reasons_exist(self) -> Project:
        unknown = sorted(set(self.notifications.auto_replies) - set(self.reasons))
        if unknown:
            raise ValueError(f"auto-reply for reason ids this project does not have: {', '.join(unknown)}")
        return self

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


def check_supported_integrations(project: Project) -> None:
    """ProjectError unless every mail integration names a provider with a working adapter (and a
    webhook integration's list id is its URL): refused up front rather than accepted and never served."""
    for integration in project.mail_integrations:
        if integration.provider not in SUPPORTED_PROVIDERS:
            why = _UNSUPPORTED_WHY.get(integration.provider, "no adapter")
            raise ProjectError(
                f"mail provider {integration.provider!r} is not supported ({why}); "
                f"supported: {', '.join(SUPPORTED_PROVIDERS)}"
            )
        if integration.provider == "webhook":
            try:
                check_http_url(integration.list_id, "a webhook integration's list id (its URL)")
            except ValueError as exc:
                raise ProjectError(str(exc)) from exc


def set_notifications(db: Database, project_hash: str, notifications: NotificationSettings) -> Project:
    """Replace a project's notification settings (validated against the project as a whole)."""
    current = get_project(db, project_hash)
    try:
        updated = Project.model_validate({**current.model_dump(), "notifications": notifications})
    except ValueError as exc:
        raise ProjectError(str(exc)) from exc
    check_supported_integrations(updated)
    db[PROJECTS].update_one(
        {"hash": updated.hash}, {"$set": {"notifications": notifications.model_dump(mode="json")}}
    )
    return updated


def ensure_project_indexes(db: Database) -> None:
    db[PROJECTS].create_index("hash", unique=True, name="hash_unique")


def add_project(db: Database, project: Project) -> Project:
    check_supported_integrations(project)
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


def resolve_project(db: Database, name_or_hash: str) -> Project:
    """A registered project by its hash or its name (case-insensitive): the one way every command,
    notebook and page turns what a person typed into a project. ProjectError lists the known ones
    when nothing matches, and the hashes when several projects share the name."""
    return choose_project(list_projects(db), name_or_hash)


def choose_project(projects: list[Project], name_or_hash: str) -> Project:
    """`resolve_project` on a list already loaded (the workbench holds one)."""
    wanted = (name_or_hash or "").strip()
    if not wanted:
        raise ProjectError("give a project name or hash")
    try:
        wanted_hash: str | None = normalise_hash(wanted)
    except ValueError:
        wanted_hash = None
    if wanted_hash:
        matches = [p for p in projects if p.hash == wanted_hash]
    else:
        matches = [p for p in projects if p.name.casefold() == wanted.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        hashes = ", ".join(p.hash for p in matches)
        raise ProjectError(
            f"{len(matches)} projects are named {wanted!r}; give one of their hashes: {hashes}"
        )
    shown = ", ".join(f"{p.name} ({p.hash})" for p in projects[:20]) + (" …" if len(projects) > 20 else "")
    raise ProjectError(
        f"no project {wanted[:200]!r}; known: {shown}"
        if projects
        else f"no project {wanted[:200]!r}: none is registered yet (`deact projects add`)"
    )


def update_project(db: Database, project_hash: str, changes: dict) -> Project:
    """Change some fields of a registered project (its hash and creation time stay)."""
    current = get_project(db, project_hash)
    try:
        updated = Project.model_validate({**current.model_dump(), **changes, "hash": current.hash})
    except ValueError as exc:
        raise ProjectError(str(exc)) from exc
    check_supported_integrations(updated)
    db[PROJECTS].replace_one({"hash": current.hash}, updated.model_dump(mode="json"))
    return updated


def remove_project(db: Database, project_hash: str) -> Project:
    """Unregister a project (its history elsewhere is not touched); returns what was removed."""
    current = get_project(db, project_hash)
    db[PROJECTS].delete_one({"hash": current.hash})
    return current


def _strip_id(document: dict) -> dict:
    document.pop("_id", None)
    return document
