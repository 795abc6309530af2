"""The raw envelope: server-stamped ids and times, its one timestamp format and its one shape check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from deactivation.envelope import (
    ROUTES,
    SCHEMA_VERSION,
    envelope_problem,
    envelope_to_json,
    format_timestamp,
    make_envelope,
    parse_timestamp,
)

AT = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)


def test_the_server_stamps_a_uuid7_and_the_time():
    envelope = make_envelope(route="deactivate", body={"hash": "h"}, content_type="application/json")
    assert uuid.UUID(envelope["event_id"]).version == 7
    assert envelope["schema_version"] == SCHEMA_VERSION
    assert set(envelope) == {
        "schema_version",
        "event_id",
        "received_at",
        "route",
        "content_type",
        "user_agent",
        "remote_addr",
        "body",
    }
    assert abs(parse_timestamp(envelope["received_at"]) - datetime.now(UTC)) < timedelta(minutes=1)


def test_one_timestamp_format_in_utc():
    assert format_timestamp(AT) == "2026-11-28T01:02:03.456789Z"
    elsewhere = AT.astimezone(timezone(timedelta(hours=-5)))
    assert format_timestamp(elsewhere) == "2026-11-28T01:02:03.456789Z"
    assert parse_timestamp("2026-11-28T01:02:03.456789Z") == AT


def test_serialised_envelope_round_trips():
    envelope = make_envelope(route="track", body={"a": [1, {"b": "é"}]}, content_type="x", received_at=AT)
    assert orjson.loads(envelope_to_json(envelope)) == envelope
    with_datetime = {**envelope, "received_at": AT}
    assert orjson.loads(envelope_to_json(with_datetime))["received_at"] == envelope["received_at"]


def _valid(**changes) -> dict:
    envelope = make_envelope(route="deactivate", body={"hash": "h"}, content_type="x", received_at=AT)
    return {**envelope, **changes}


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ([], "not a JSON object"),
        (_valid(event_id="42"), "event_id"),
        (_valid(received_at="yesterday"), "received_at missing"),
        (_valid(received_at="2026-11-28T02:00:00.000000Z"), "outside its hour folder"),
        (_valid(route="track"), "is not deactivate"),
        (_valid(route="x" * 500), "is not deactivate"),
        (_valid(body="hash=h"), "body missing"),
    ],
)
def test_the_shape_check_says_what_is_wrong(record, says):
    problem = envelope_problem(record, "2026-11-28T01")
    assert problem is not None and says in problem
    assert len(problem) < 200, "a problem never echoes a long value"


def test_a_valid_envelope_of_its_route_and_hour_has_no_problem():
    assert envelope_problem(_valid(), "2026-11-28T01") is None
    assert envelope_problem(_valid(route="track"), "2026-11-28T01", route="track") is None
    assert set(ROUTES) == {"deactivate", "track", "tracking-skipped"}
