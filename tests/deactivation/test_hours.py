"""Hours: the one text format, parse errors that say what is wrong, and the windows built from hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from deactivation.hours import (
    DEFAULT_WINDOW_HOURS,
    HourError,
    describe_hours,
    format_hour,
    hour_floor,
    hour_range,
    hours_ending_at,
    parse_hour,
    trailing_hours,
)


def test_format_and_parse_round_trip_in_utc():
    local = datetime(2026, 11, 28, 3, 59, 59, tzinfo=timezone(timedelta(hours=2)))
    assert format_hour(local) == "2026-11-28T01"
    assert parse_hour("2026-11-28T01") == datetime(2026, 11, 28, 1, tzinfo=UTC)
    assert hour_floor(local) == datetime(2026, 11, 28, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-13-29T10", "there is no month 13"),
        ("2026-02-30T10", "2026-02 has no day 30"),
        ("2026-11-28T24", "the hour must be 00-23"),
        ("2026-11-28 10", "must look like YYYY-MM-DDTHH"),
        ("yesterday", "must look like YYYY-MM-DDTHH"),
        ("2026-11-28T1", "must look like YYYY-MM-DDTHH"),
    ],
)
def test_a_bad_hour_says_what_is_wrong(text, says):
    with pytest.raises(HourError, match=says):
        parse_hour(text)


def test_the_error_names_the_parameter():
    with pytest.raises(HourError, match=r"^end_hour "):
        parse_hour("2026-13-01T00", name="end_hour")


def test_windows():
    last = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert hours_ending_at(last, 3) == [datetime(2026, 11, 28, h, tzinfo=UTC) for h in (0, 1, 2)]
    with pytest.raises(HourError):
        hours_ending_at(last, 0)
    now = datetime(2026, 11, 28, 3, 5, 12, tzinfo=UTC)
    assert trailing_hours(now) == hours_ending_at(datetime(2026, 11, 28, 2, tzinfo=UTC), DEFAULT_WINDOW_HOURS)


def test_range_is_inclusive_ordered_and_bounded():
    first, last = parse_hour("2026-11-27T22"), parse_hour("2026-11-28T01")
    assert [format_hour(h) for h in hour_range(first, last)] == [
        "2026-11-27T22",
        "2026-11-27T23",
        "2026-11-28T00",
        "2026-11-28T01",
    ]
    with pytest.raises(HourError, match="before the start hour"):
        hour_range(last, first)
    with pytest.raises(HourError, match="at most 3 hours"):
        hour_range(first, last, max_hours=3)


def test_describe_hours():
    hours = hour_range(parse_hour("2026-11-27T00"), parse_hour("2026-11-28T23"))
    assert describe_hours(hours) == "2026-11-27T00..2026-11-28T23 (48 hours)"
    assert describe_hours(hours[:1]) == "2026-11-27T00"
