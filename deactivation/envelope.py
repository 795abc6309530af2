"""The raw envelope: what the collector stores for every accepted request.

One envelope is a JSON object
``{schema_version, event_id, received_at, route, content_type, user_agent, remote_addr, body}``.
``event_id`` is a UUIDv7 (time-ordered, unique) and ``received_at`` an ISO-8601 UTC timestamp with
microseconds and a trailing ``Z``; both are stamped by the server, never taken from the client.
Later stages (Beam, analytics) depend on exactly this shape: extend it with new optional
fields and a new ``schema_version``, never rename.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import orjson
import uuid_utils

SCHEMA_VERSION = 1

#: Routes the collector accepts, each stored under its own prefix of the raw store.
Route = Literal["deactivate", "track", "tracking-skipped"]
ROUTES: tuple[str, ...] = get_args(Route)

#: Prefix under which rejected requests are kept for diagnosis.
REJECTED_PREFIX = "rejected"

_EVENT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RECEIVED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
_SHOWN_CHARS = 80


def new_event_id() -> str:
    """A UUIDv7: sorts by creation time, unique across processes."""
    return str(uuid_utils.uuid7())


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(value: datetime) -> str:
    """2026-11-28T01:02:03.123456Z — the one timestamp format of raw envelopes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope_to_json(envelope: dict[str, Any]) -> bytes:
    """Serialise an envelope dict (the hot path: no pydantic, orjson only)."""
    received_at = envelope["received_at"]
    if isinstance(received_at, datetime):
        envelope = {**envelope, "received_at": format_timestamp(received_at)}
    return orjson.dumps(envelope)


def make_envelope(
    *,
    route: str,
    body: dict[str, Any],
    content_type: str,
    user_agent: str | None = None,
    remote_addr: str | None = None,
    received_at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Build a raw envelope dict with server-stamped id and time (fast path for the collector)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id or new_event_id(),
        "received_at": format_timestamp(received_at or utc_now()),
        "route": route,
        "content_type": content_type,
        "user_agent": user_agent,
        "remote_addr": remote_addr,
        "body": body,
    }


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def envelope_problem(envelope: Any, raw_hour: str, route: str = "deactivate") -> str | None:
    """Why a decoded record is not an envelope of `route` stored in hour folder `raw_hour`
    (YYYY-MM-DDTHH), or None: the one check of the envelope's shape, for every reader of the store."""
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
    if envelope.get("route") != route:
        shown = repr(envelope.get("route"))
        shown = shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 3] + "..."
        return f"route {shown} is not {route}"
    if not isinstance(envelope.get("body"), dict):
        return "body missing or not an object"
    return None
