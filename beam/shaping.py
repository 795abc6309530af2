"""Pure record logic of the pipeline: checks, row shaping and duplicate decisions, without Beam.

Each function takes one record (or one group of records) and returns data; the transforms
(transforms.py) only apply them, count and tag. A problem with a record is either a returned
reason (the check functions) or a FieldError naming the field (the shaping functions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from beam.elements import ProjectRules, ValidEvent, hour_timestamp
from deactivation.envelope import envelope_problem
from deactivation.erasure import ErasureRegister, normalise_site_url
from deactivation.projects import normalise_hash
from deactivation.reasons import THEME_SWITCH
from deactivation.site_fields import (
    FieldError,
    major_minor,
    section,
    shown,
    to_bool,
    to_bytes,
    to_count,
    to_text,
    to_version,
)

#: (raw_file, raw_line): where a record was read; sorting by it gives the order of the raw store.
Source = tuple[str, int]
#: Deepest nesting of a record the pipeline reads (an SDK body nests 3 deep, the collector refuses
#: more than INGEST_MAX_NESTING). Far deeper records, from files written some other way, could not
#: be written by orjson (254 levels) nor pickled between workers (~500): they are `unparseable`.
MAX_RECORD_NESTING = 128


# --- Checks ------------------------------------------------------------------------------------------
def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects/arrays nest more than `limit` levels in `value` (iterative: any depth)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def record_problem(text: bytes, raw_hour: str) -> tuple[Any, str | None]:
    """(envelope, None) for a line of a raw file that is a deactivation envelope of its hour, else
    (None, why not)."""
    try:
        envelope = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, "not valid JSON"
    # Counting brackets is a cheap upper bound of the depth, so only suspect records are walked.
    if text.count(b"{") + text.count(b"[") > MAX_RECORD_NESTING and nested_deeper_than(
        envelope, MAX_RECORD_NESTING
    ):
        return None, f"nested deeper than {MAX_RECORD_NESTING} levels"
    return envelope, envelope_problem(envelope, raw_hour)


def project_problem(body_hash: Any, registry: dict[str, ProjectRules]) -> tuple[str | None, str | None]:
    """(normalised hash or None, why it is not a registered project or None)."""
    if body_hash is None or body_hash == "":
        return None, "hash missing"
    if body_hash.__class__ is str and body_hash in registry:
        return body_hash, None
    try:
        normalised = normalise_hash(body_hash)
    except ValueError:
        return None, f"hash {shown(body_hash)} is not a UUID"
    if normalised not in registry:
        return normalised, f"project {normalised} is not registered"
    return normalised, None


def is_erased(body: dict[str, Any], project_hash: str, erasures: ErasureRegister) -> bool:
    """Whether the body's site (or its admin e-mail) of this project was erased on request."""
    url, email = body.get("url"), body.get("admin_email")
    return erasures.is_erased(
        project_hash,
        url if isinstance(url, str) else None,
        email if isinstance(email, str) else None,
    )


def reason_of(body: dict[str, Any], rules: ProjectRules) -> tuple[str | None, str | None]:
    """(reason id, None) for a valid reason, else (None, why not). A theme switch has no reason."""
    reason_id = body.get("reason_id")
    if reason_id is None or reason_id == "":
        if rules.kind == "theme":
            return THEME_SWITCH, None
        return None, "reason_id missing"
    if isinstance(reason_id, str) and reason_id in rules.reasons:
        return reason_id, None
    return None, f"reason_id {shown(reason_id)} is neither built-in nor registered for this project"


# --- Rows --------------------------------------------------------------------------------------------
def shape_event(raw_hour: str, envelope: dict, rules: ProjectRules, reason_id: str) -> ValidEvent:
    """The deactivation and site rows of one validated envelope; FieldError names a bad field."""
    body = envelope["body"]
    server, wp = section(body, "server"), section(body, "wp")
    tracking_skipped = to_bool("tracking_skipped", body.get("tracking_skipped"))
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
        _site_row(shared, body, server, wp, rules, tracking_skipped),
        _contact(body, rules, tracking_skipped),
    )


def _free_text(field: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return to_text(field, value)
    raise FieldError(field, value, "text")


def _site_url(body: dict[str, Any]) -> str:
    url = normalise_site_url(to_text("url", body.get("url")) or "")
    if not url:  # https://a.example and https://a.example/ are the same site; "/" is none
        raise FieldError("url", body.get("url"), "a site URL")
    return url


def _custom_fields(extra: dict[str, Any], whitelist: tuple[str, ...]) -> str:
    if not whitelist or not extra:
        return "{}"
    kept = {key: extra[key] for key in whitelist if key in extra}
    try:
        return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):  # nested deeper than orjson writes
        raise FieldError("extra", "<nested too deeply>", "custom fields") from None


def _contact(
    body: dict[str, Any], rules: ProjectRules, tracking_skipped: bool | None
) -> dict[str, str] | None:
    """The admin's e-mail and names, if the body has them and the project's contact policy keeps
    them: `keep`, `only_if_tracking_allowed` (not when the SDK says tracking was skipped), `drop`."""
    if rules.contact_policy == "drop":
        return None
    if rules.contact_policy == "only_if_tracking_allowed" and tracking_skipped:
        return None
    email = body.get("admin_email")
    if not isinstance(email, str) or "@" not in email:
        return None
    return {
        "email": email.strip(),
        "first_name": to_text("first_name", body.get("first_name")) or "",
        "last_name": to_text("last_name", body.get("last_name")) or "",
    }


def _environment(body: dict[str, Any], server: dict[str, Any], wp: dict[str, Any]) -> dict[str, Any]:
    """Versions, locale and server: the columns both tables share."""
    # Legacy SDKs (v1.1 and earlier) send the project version as `version`, no `project_version`.
    project_version = body.get("project_version", body.get("version"))
    wp_version = to_version("wp.version", wp.get("version"))
    php_version = to_version("server.php_version", server.get("php_version"))
    return {
        "project_version": to_version("project_version", project_version),
        "wp_version": wp_version,
        "wp_version_mm": major_minor(wp_version),
        "php_version": php_version,
        "php_version_mm": major_minor(php_version),
        "mysql_version": to_version("server.mysql_version", server.get("mysql_version")),
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
    tracking_skipped: bool | None,
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
        "theme_version": to_version("wp.theme_version", wp.get("theme_version")),
        "users_total": to_count("users.total", section(body, "users").get("total")),
        "active_plugins": to_count("active_plugins", body.get("active_plugins")),
        "inactive_plugins": to_count("inactive_plugins", body.get("inactive_plugins")),
        "tracking_skipped": tracking_skipped,
        "custom_fields": _custom_fields(section(body, "extra"), rules.custom_fields),
    }


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


# --- Duplicates --------------------------------------------------------------------------------------
class Mark(NamedTuple):
    """What the duplicate checks need of an event: a few short strings, so that shuffling them
    costs far less than shuffling the events."""

    source: Source
    event_id: str
    received_at: str
    answer: str  # digest of resend_key: equal for the same answer in the same hour


def resend_key(event: ValidEvent) -> tuple[str, str, str, str, str]:
    """What makes two events the same answer: hour, project, site, reason and free text.

    The hour is part of it so an hour's rows depend only on that hour's files: re-running any set
    of hours gives every hour the same rows (the warehouse replaces whole hours).
    """
    row = event.deactivation
    return (row["raw_hour"], row["project_hash"], row["site_url"], row["reason_id"], row["reason_info"] or "")


def mark_of(source: Source, event: ValidEvent) -> Mark:
    answer = hashlib.blake2b(
        "\x1f".join(resend_key(event)).encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()
    row = event.deactivation
    return Mark(source, row["event_id"], row["received_at"], answer)


def first_of_each_event_id(marks: Iterable[Mark]) -> tuple[list[Mark], list[tuple[Mark, Source]]]:
    """(kept, [(duplicate, source of the kept copy)]): per event_id, the copy read first (smallest
    raw_file, raw_line) is kept, whatever order the marks come in."""
    kept: dict[str, Mark] = {}
    duplicates: list[tuple[Mark, Source]] = []
    for mark in sorted(marks):
        first = kept.setdefault(mark.event_id, mark)
        if first is not mark:
            duplicates.append((mark, first.source))
    return list(kept.values()), duplicates


def _microseconds_in_hour(received_at: str) -> int:
    """YYYY-MM-DDTHH:MM:SS.ffffffZ → microseconds since the hour began (an answer's marks share
    their hour, see resend_key, so this orders and spaces them, without parsing a datetime)."""
    return (
        int(received_at[14:16]) * 60_000_000 + int(received_at[17:19]) * 1_000_000 + int(received_at[20:26])
    )


def first_of_each_resend(
    marks: Iterable[Mark], window_minutes: int
) -> tuple[list[Mark], list[tuple[Mark, Source]]]:
    """(kept, [(duplicate, source of the kept event)]): per answer, in time order, an event within
    `window_minutes` after the last kept one is a re-send of it; one later than that is kept. Ties
    in time are broken by event_id and source, so the result is the same in any order. A window
    of 0 minutes keeps every event."""
    if window_minutes <= 0:
        return sorted(marks), []
    window = window_minutes * 60_000_000
    last_kept: dict[str, tuple[int, Source]] = {}
    kept: list[Mark] = []
    duplicates: list[tuple[Mark, Source]] = []
    for mark in sorted(marks, key=lambda mark: (mark.received_at, mark.event_id, mark.source)):
        received_at = _microseconds_in_hour(mark.received_at)
        previous = last_kept.get(mark.answer)
        if previous is not None and received_at - previous[0] <= window:
            duplicates.append((mark, previous[1]))
            continue
        last_kept[mark.answer] = (received_at, mark.source)
        kept.append(mark)
    return sorted(kept), duplicates
