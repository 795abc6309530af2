"""The pipeline's logic as composite transforms: no I/O here, only data in and data out.

A group of raw files of one hour is the unit of work (the collector writes many small files).
ParseEnvelopes turns a group into batches of envelopes (a few thousand records per element, so
Beam's per-element cost and the staging writes are paid per batch, not per event or file); every
later step maps a batch to a smaller batch and sends each record it rejects, with a typed reason,
to the tagged output ``dead_letters``. A record leaves the main path at its first problem, so every
record read ends up as exactly one valid event or exactly one dead letter.

    RawFileGroup ─ParseEnvelopes─▶ ValidateProjects ─▶ ValidateReasons ─▶ CleanSiteFields ─▶ ValidEvent
                         │                 │                   │                  │            batches
                    unparseable     unknown_project      invalid_reason     invalid_field
"""

from __future__ import annotations

import gc
import hashlib
import pickle
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from deactivation.dead_letters import DeadLetterType
from deactivation.projects import Project, normalise_hash
from deactivation.raw_store import split_records
from deactivation.reasons import THEME_SWITCH
from deactivation.redaction import redacted_envelope, redacted_text
from deactivation.site_fields import FieldError, major_minor, section, to_bool, to_bytes, to_count, to_text

DEAD_LETTERS = "dead_letters"
METRICS_NAMESPACE = "deactivation"

UNPARSEABLE = DeadLetterType.UNPARSEABLE.value
UNKNOWN_PROJECT = DeadLetterType.UNKNOWN_PROJECT.value
INVALID_REASON = DeadLetterType.INVALID_REASON.value
INVALID_FIELD = DeadLetterType.INVALID_FIELD.value

DEFAULT_RECORDS_PER_BATCH = 2000
#: Gen-0 threshold of the cyclic garbage collector on workers (CPython's default is 700).
GC_GEN0_THRESHOLD = 100_000

_EVENT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RECEIVED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
_ERROR_ID_NAMESPACE = uuid.UUID("6f1d8c1e-3b0a-4c4e-9a57-5d2f0f3d9b11")
_DETAIL_VALUE_CHARS = 80


# --- Elements ---------------------------------------------------------------------------------------
class RawFileContent(NamedTuple):
    """One raw file as read at the pipeline's edge."""

    raw_hour: str  # the hour folder, YYYY-MM-DDTHH
    raw_file: str  # path relative to RAW_STORE_URL
    data: bytes


class RawFileGroup(NamedTuple):
    """Raw files of one hour read as one element."""

    raw_hour: str
    files: list[RawFileContent]


class Batch(NamedTuple):
    """Records of one hour that travel together; each item starts with its source (raw_file,
    raw_line). batch_id is deterministic (first file of the group + position), so a retried bundle
    rewrites the same staging file instead of adding one."""

    batch_id: str
    raw_hour: str
    items: list


class BulkCoder(beam.coders.Coder):
    """Pickles like Beam's fallback coder, but estimates an element's size without pickling it.

    Beam samples element sizes for its metrics by encoding elements; for multi-megabyte groups and
    batches that cost about a third of the pipeline's CPU (measured), for a number nobody reads.
    """

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Any) -> int:
        return 1024 * len(value[-1])  # a rough kilobyte per record or file


beam.coders.registry.register_coder(RawFileGroup, BulkCoder)
beam.coders.registry.register_coder(Batch, BulkCoder)


class DeadLetter(NamedTuple):
    error_type: str
    detail: str
    raw_hour: str
    raw_file: str
    raw_line: int
    raw_envelope: str
    event_id: str | None = None
    project_hash: str | None = None
    received_at: str | None = None

    @property
    def error_id(self) -> str:
        """The same bad record gives the same id on every run (one dead letter per file line)."""
        return str(uuid.uuid5(_ERROR_ID_NAMESPACE, f"{self.raw_file}#{self.raw_line}"))

    def to_row(self) -> dict[str, Any]:
        return {
            "error_id": self.error_id,
            "raw_hour": hour_timestamp(self.raw_hour),
            "error_type": self.error_type,
            "detail": self.detail,
            "raw_file": self.raw_file,
            "raw_line": self.raw_line,
            "event_id": self.event_id,
            "project_hash": self.project_hash,
            "received_at": self.received_at,
            "raw_envelope": self.raw_envelope,
        }


class ValidEvent(NamedTuple):
    """A record that passed every check: its warehouse rows and the admin contact (MongoDB only)."""

    deactivation: dict[str, Any]
    site: dict[str, Any]
    contact: dict[str, str] | None


@dataclass(frozen=True)
class ProjectRules:
    """What the pipeline needs of a registered project (the side input, built once per run)."""

    hash: str
    kind: str
    reasons: dict[str, str]  # every valid reason id → label
    custom_fields: tuple[str, ...]
    mail_lists: tuple[tuple[str, str], ...]  # (provider, list_id)

    @classmethod
    def from_project(cls, project: Project) -> ProjectRules:
        reasons = dict(project.reasons)
        if project.kind != "theme":
            reasons.pop(THEME_SWITCH)  # only a theme switch may carry no reason
        return cls(
            hash=project.hash,
            kind=project.kind,
            reasons=reasons,
            custom_fields=tuple(project.custom_fields),
            mail_lists=tuple((m.provider, m.list_id) for m in project.mail_integrations),
        )


def registry_rules(registry: dict[str, Project]) -> dict[str, ProjectRules]:
    return {project_hash: ProjectRules.from_project(p) for project_hash, p in registry.items()}


def hour_timestamp(raw_hour: str) -> str:
    """YYYY-MM-DDTHH → the envelope timestamp format, so every timestamp column casts alike."""
    return f"{raw_hour}:00:00.000000Z"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _DETAIL_VALUE_CHARS else text[: _DETAIL_VALUE_CHARS - 3] + "..."


def _batch_ids(first_raw_file: str) -> Iterator[str]:
    file_key = hashlib.sha1(first_raw_file.encode()).hexdigest()[:20]
    number = 0
    while True:
        yield f"{file_key}-{number:05d}"
        number += 1


def _dead_letter(
    error_type: str,
    detail: str,
    batch: Batch,
    source: tuple[str, int],
    envelope: dict,
    project_hash: str | None = None,
) -> DeadLetter:
    raw_file, raw_line = source
    return DeadLetter(
        error_type=error_type,
        detail=detail,
        raw_hour=batch.raw_hour,
        raw_file=raw_file,
        raw_line=raw_line,
        raw_envelope=orjson.dumps(redacted_envelope(envelope)).decode(),
        event_id=envelope["event_id"],
        project_hash=project_hash,
        received_at=envelope["received_at"],
    )


# --- Step 2: parse envelopes -------------------------------------------------------------------------
def envelope_problem(envelope: Any, raw_hour: str) -> str | None:
    """Why a decoded record is not a deactivation envelope of its hour folder, or None."""
    if not isinstance(envelope, dict):
        return "not a JSON object"
    event_id = envelope.get("event_id")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        return "event_id missing or not a UUID"
    received_at = envelope.get("received_at")
    if not isinstance(received_at, str) or not _RECEIVED_AT.match(received_at):
        return "received_at missing or not YYYY-MM-DDTHH:MM:SS.ffffffZ"
    if received_at[:13] != raw_hour:
        return f"received_at {received_at} lies outside its hour folder {raw_hour}"
    if envelope.get("route") != "deactivate":
        return f"route {_shown(envelope.get('route'))} is not deactivate"
    if not isinstance(envelope.get("body"), dict):
        return "body missing or not an object"
    return None


class _ParseFileGroup(beam.DoFn):
    def __init__(self, records_per_batch: int) -> None:
        self.records_per_batch = records_per_batch
        self.records = Metrics.counter(METRICS_NAMESPACE, "records_read")
        self.rejected = Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{UNPARSEABLE}")

    def setup(self) -> None:
        # A batch allocates hundreds of thousands of small dicts that stay alive until the bundle
        # ends, and the default threshold re-scans them thousands of times per file: ~40% of the
        # CPU, measured. They form no reference cycles, so the collector may run far less often.
        generation0, *older = gc.get_threshold()
        gc.set_threshold(max(generation0, GC_GEN0_THRESHOLD), *older)

    def process(self, group):
        batch_ids = _batch_ids(group.files[0].raw_file)
        raw_hour = group.raw_hour
        items: list[tuple[tuple[str, int], dict]] = []
        read = 0
        for content in group.files:
            for raw_line, text in split_records(content.raw_file, content.data):
                read += 1
                try:
                    envelope = orjson.loads(text)
                    problem = envelope_problem(envelope, raw_hour)
                except orjson.JSONDecodeError:
                    problem = "not valid JSON"
                if problem:
                    self.rejected.inc()
                    dead = self._unparseable(content, raw_line, text, problem)
                    yield pvalue.TaggedOutput(DEAD_LETTERS, dead)
                    continue
                items.append(((content.raw_file, raw_line), envelope))
                if len(items) == self.records_per_batch:
                    yield Batch(next(batch_ids), raw_hour, items)
                    items = []
        if items:
            yield Batch(next(batch_ids), raw_hour, items)
        self.records.inc(read)

    @staticmethod
    def _unparseable(content: RawFileContent, raw_line: int, text: bytes, problem: str) -> DeadLetter:
        return DeadLetter(
            error_type=UNPARSEABLE,
            detail=problem,
            raw_hour=content.raw_hour,
            raw_file=content.raw_file,
            raw_line=raw_line,
            raw_envelope=redacted_text(text),
        )


class ParseEnvelopes(beam.PTransform):
    """RawFileGroup → Batch of (source, envelope dict); bad records → `unparseable`."""

    def __init__(self, records_per_batch: int = DEFAULT_RECORDS_PER_BATCH) -> None:
        super().__init__()
        self.records_per_batch = records_per_batch

    def expand(self, files):
        parse = beam.ParDo(_ParseFileGroup(self.records_per_batch)).with_output_types(Batch)
        return files | parse.with_outputs(DEAD_LETTERS, main="batches")


# --- Step 3: validate the project --------------------------------------------------------------------
def project_problem(body_hash: Any, registry: dict[str, ProjectRules]) -> tuple[str | None, str | None]:
    """(normalised hash or None, why it is not a registered project or None)."""
    if body_hash is None or body_hash == "":
        return None, "hash missing"
    if body_hash.__class__ is str and body_hash in registry:
        return body_hash, None
    try:
        normalised = normalise_hash(body_hash)
    except ValueError:
        return None, f"hash {_shown(body_hash)} is not a UUID"
    if normalised not in registry:
        return normalised, f"project {normalised} is not registered"
    return normalised, None


class _ValidateProjects(beam.DoFn):
    def __init__(self) -> None:
        self.rejected = Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{UNKNOWN_PROJECT}")

    def process(self, batch, registry):
        kept = []
        for source, envelope in batch.items:
            project_hash, problem = project_problem(envelope["body"].get("hash"), registry)
            if problem:
                self.rejected.inc()
                dead = _dead_letter(UNKNOWN_PROJECT, problem, batch, source, envelope, project_hash)
                yield pvalue.TaggedOutput(DEAD_LETTERS, dead)
                continue
            kept.append((source, envelope, registry[project_hash]))
        if kept:
            yield batch._replace(items=kept)


class ValidateProjects(beam.PTransform):
    """Batch of (source, envelope) → Batch of (source, envelope, ProjectRules); → `unknown_project`."""

    def __init__(self, registry: pvalue.AsSingleton) -> None:
        super().__init__()
        self.registry = registry

    def expand(self, batches):
        validate = beam.ParDo(_ValidateProjects(), self.registry).with_output_types(Batch)
        return batches | validate.with_outputs(DEAD_LETTERS, main="batches")


# --- Step 4: validate the reason ---------------------------------------------------------------------
def reason_of(body: dict[str, Any], rules: ProjectRules) -> tuple[str | None, str | None]:
    """(reason id, None) for a valid reason, else (None, why not). A theme switch has no reason."""
    reason_id = body.get("reason_id")
    if reason_id is None or reason_id == "":
        if rules.kind == "theme":
            return THEME_SWITCH, None
        return None, "reason_id missing"
    if isinstance(reason_id, str) and reason_id in rules.reasons:
        return reason_id, None
    return None, f"reason_id {_shown(reason_id)} is neither built-in nor registered for this project"


class _ValidateReasons(beam.DoFn):
    def __init__(self) -> None:
        self.rejected = Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{INVALID_REASON}")

    def process(self, batch):
        kept = []
        for source, envelope, rules in batch.items:
            reason_id, problem = reason_of(envelope["body"], rules)
            if problem:
                self.rejected.inc()
                dead = _dead_letter(INVALID_REASON, problem, batch, source, envelope, rules.hash)
                yield pvalue.TaggedOutput(DEAD_LETTERS, dead)
                continue
            kept.append((source, envelope, rules, reason_id))
        if kept:
            yield batch._replace(items=kept)


class ValidateReasons(beam.PTransform):
    """Batch of (source, envelope, rules) → Batch of (…, reason_id); → `invalid_reason`."""

    def expand(self, batches):
        validate = beam.ParDo(_ValidateReasons()).with_output_types(Batch)
        return batches | validate.with_outputs(DEAD_LETTERS, main="batches")


# --- Step 5: clean and cast the site fields, shape the rows ------------------------------------------
def _free_text(field: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise FieldError(field, value, "text")


def _site_url(body: dict[str, Any]) -> str:
    url = to_text("url", body.get("url"))
    if not url:
        raise FieldError("url", body.get("url"), "a site URL")
    return url.rstrip("/")  # https://a.example and https://a.example/ are the same site


def _custom_fields(extra: dict[str, Any], whitelist: tuple[str, ...]) -> str:
    if not whitelist or not extra:
        return "{}"
    kept = {key: extra[key] for key in whitelist if key in extra}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode()


def _contact(body: dict[str, Any]) -> dict[str, str] | None:
    email = body.get("admin_email")
    if not isinstance(email, str) or "@" not in email:
        return None
    return {
        "email": email.strip(),
        "first_name": to_text("first_name", body.get("first_name")) or "",
        "last_name": to_text("last_name", body.get("last_name")) or "",
    }


def shape_event(raw_hour: str, envelope: dict, rules: ProjectRules, reason_id: str) -> ValidEvent:
    """The deactivation and site rows of one validated envelope; FieldError names a bad field."""
    body = envelope["body"]
    server, wp = section(body, "server"), section(body, "wp")
    shared = {
        "event_id": envelope["event_id"],
        "raw_hour": hour_timestamp(raw_hour),
        "received_at": envelope["received_at"],
        "project_hash": rules.hash,
        "site_url": _site_url(body),
        "sdk_client": to_text("client", body.get("client")),
        "is_local": to_bool("is_local", body.get("is_local")),
        **_environment(body, server, wp),
    }
    return ValidEvent(
        _deactivation_row(shared, body, rules, reason_id),
        _site_row(shared, body, server, wp, rules),
        _contact(body),
    )


def _environment(body: dict[str, Any], server: dict[str, Any], wp: dict[str, Any]) -> dict[str, Any]:
    """Versions, locale and server: the columns both tables share."""
    # Legacy SDKs (v1.1 and earlier) send the project version as `version`, no `project_version`.
    project_version = body.get("project_version", body.get("version"))
    wp_version = to_text("wp.version", wp.get("version"))
    php_version = to_text("server.php_version", server.get("php_version"))
    return {
        "project_version": to_text("project_version", project_version),
        "wp_version": wp_version,
        "wp_version_mm": major_minor(wp_version),
        "php_version": php_version,
        "php_version_mm": major_minor(php_version),
        "mysql_version": to_text("server.mysql_version", server.get("mysql_version")),
        "locale": to_text("wp.locale", wp.get("locale")),
        "server_software": to_text("server.software", server.get("software")),
    }


def _deactivation_row(
    shared: dict[str, Any], body: dict[str, Any], rules: ProjectRules, reason_id: str
) -> dict[str, Any]:
    return {
        **shared,
        "project_kind": rules.kind,
        "reason_id": reason_id,
        "reason_label": rules.reasons[reason_id],
        "reason_info": _free_text("reason_info", body.get("reason_info")),
        "sdk_generation": "v2" if "project_version" in body else "legacy",
    }


def _site_row(
    shared: dict[str, Any],
    body: dict[str, Any],
    server: dict[str, Any],
    wp: dict[str, Any],
    rules: ProjectRules,
) -> dict[str, Any]:
    return {
        **shared,
        "site_name": to_text("site", body.get("site")),
        "php_max_upload_size_bytes": to_bytes(
            "server.php_max_upload_size", server.get("php_max_upload_size")
        ),
        "php_default_timezone": to_text("server.php_default_timezone", server.get("php_default_timezone")),
        "php_soap": to_bool("server.php_soap", server.get("php_soap")),
        "php_fsockopen": to_bool("server.php_fsockopen", server.get("php_fsockopen")),
        "php_curl": to_bool("server.php_curl", server.get("php_curl")),
        "wp_memory_limit_bytes": to_bytes("wp.memory_limit", wp.get("memory_limit")),
        "wp_debug_mode": to_bool("wp.debug_mode", wp.get("debug_mode")),
        "wp_multisite": to_bool("wp.multisite", wp.get("multisite")),
        "theme_slug": to_text("wp.theme_slug", wp.get("theme_slug") or body.get("theme")),
        "theme_name": to_text("wp.theme_name", wp.get("theme_name")),
        "theme_version": to_text("wp.theme_version", wp.get("theme_version")),
        "users_total": to_count("users.total", section(body, "users").get("total")),
        "active_plugins": to_count("active_plugins", body.get("active_plugins")),
        "inactive_plugins": to_count("inactive_plugins", body.get("inactive_plugins")),
        "tracking_skipped": to_bool("tracking_skipped", body.get("tracking_skipped")),
        "custom_fields": _custom_fields(section(body, "extra"), rules.custom_fields),
    }


class _CleanSiteFields(beam.DoFn):
    def __init__(self) -> None:
        self.rejected = Metrics.counter(METRICS_NAMESPACE, f"dead_letters_{INVALID_FIELD}")
        self.valid = Metrics.counter(METRICS_NAMESPACE, "valid_events")

    def process(self, batch):
        kept = []
        for source, envelope, rules, reason_id in batch.items:
            try:
                kept.append(shape_event(batch.raw_hour, envelope, rules, reason_id))
            except FieldError as error:
                self.rejected.inc()
                dead = _dead_letter(INVALID_FIELD, str(error), batch, source, envelope, rules.hash)
                yield pvalue.TaggedOutput(DEAD_LETTERS, dead)
        self.valid.inc(len(kept))
        if kept:
            yield batch._replace(items=kept)


class CleanSiteFields(beam.PTransform):
    """Batch of (source, envelope, rules, reason_id) → Batch of ValidEvent; → `invalid_field`."""

    def expand(self, batches):
        clean = beam.ParDo(_CleanSiteFields()).with_output_types(Batch)
        return batches | clean.with_outputs(DEAD_LETTERS, main="batches")


# --- Mail-sync requests ------------------------------------------------------------------------------
def mail_requests(event: ValidEvent, rules: ProjectRules) -> list[dict[str, Any]]:
    """One outbox request per mail list of the project, for events that carry a contact."""
    if event.contact is None:
        return []
    row = event.deactivation
    return [
        {
            "_id": f"{row['event_id']}:{provider}:{list_id}",
            "event_id": row["event_id"],
            "project_hash": row["project_hash"],
            "site_url": row["site_url"],
            "provider": provider,
            "list_id": list_id,
            "contact": event.contact,
            "received_at": row["received_at"],
            "status": "pending",
        }
        for provider, list_id in rules.mail_lists
    ]


class _RequestMailSync(beam.DoFn):
    def __init__(self) -> None:
        self.requested = Metrics.counter(METRICS_NAMESPACE, "mail_requests")

    def process(self, batch, registry):
        requests = []
        for event in batch.items:
            requests.extend(mail_requests(event, registry[event.deactivation["project_hash"]]))
        self.requested.inc(len(requests))
        if requests:
            yield batch._replace(items=requests)


class RequestMailSync(beam.PTransform):
    """Batch of ValidEvent → Batch of mail-outbox requests (projects with a mail integration)."""

    def __init__(self, registry: pvalue.AsSingleton) -> None:
        super().__init__()
        self.registry = registry

    def expand(self, batches):
        return batches | beam.ParDo(_RequestMailSync(), self.registry).with_output_types(Batch)


# --- The whole path ----------------------------------------------------------------------------------
class ProcessDeactivations(beam.PTransform):
    """RawFileGroups → {'events': Batches of ValidEvent,
    'mail_requests': Batches of outbox requests, 'dead_letters': DeadLetter}."""

    def __init__(self, registry: pvalue.AsSingleton, records_per_batch: int = DEFAULT_RECORDS_PER_BATCH):
        super().__init__()
        self.registry = registry
        self.records_per_batch = records_per_batch

    def expand(self, files):
        parsed = files | "ParseEnvelopes" >> ParseEnvelopes(self.records_per_batch)
        projects = parsed.batches | "ValidateProjects" >> ValidateProjects(self.registry)
        reasons = projects.batches | "ValidateReasons" >> ValidateReasons()
        events = reasons.batches | "CleanSiteFields" >> CleanSiteFields()
        dead_letters = (
            parsed.dead_letters,
            projects.dead_letters,
            reasons.dead_letters,
            events.dead_letters,
        ) | "AllDeadLetters" >> beam.Flatten()
        return {
            "events": events.batches,
            "mail_requests": events.batches | "RequestMailSync" >> RequestMailSync(self.registry),
            DEAD_LETTERS: dead_letters,
        }
