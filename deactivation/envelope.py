"""The raw envelope: what the collector stores for every accepted request.

One envelope is a JSON object
``{schema_version, event_id, received_at, route, content_type, user_agent, remote_addr, body}``.
``event_id`` is a UUIDv7 (time-ordered, unique) and ``received_at`` an ISO-8601 UTC timestamp with
microseconds and a trailing ``Z``; both are stamped by the server, never taken from the client.
Later stages (Beam, analytics) depend on exactly this shape: extend it with new optional
fields and a new ``schema_version``, never rename.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, get_args

import orjson
import uuid_utils
from pydantic import BaseModel, ConfigDict, field_validator

SCHEMA_VERSION = 1

#: Routes the collector accepts, each stored under its own prefix of the raw store.
Route = Literal["deactivate", "track", "tracking-skipped"]
ROUTES: tuple[str, ...] = get_args(Route)

#: Prefix under which rejected requests are kept for diagnosis.
REJECTED_PREFIX = "rejected"


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    event_id: str
    received_at: datetime
    route: Route
    content_type: str
    user_agent: str | None = None
    remote_addr: str | None = None
    body: dict[str, Any]

    @field_validator("received_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("received_at must carry a timezone")
        return value.astimezone(UTC)

    def to_json_bytes(self) -> bytes:
        return envelope_to_json(self.model_dump())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls.model_validate(orjson.loads(raw))


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
