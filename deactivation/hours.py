"""Hours: the unit the raw store is laid out in and every stage processes.

One home for the hour's text format (``YYYY-MM-DDTHH``, UTC; how operators type an hour on the CLI
and in the Prefect UI), for parsing it with a message that says what is wrong, and for the windows
built from hours: the N hours ending at one, the trailing complete hours the hourly run processes,
and an inclusive range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

#: The hour's text form everywhere: CLI options, flow parameters, artifacts, `raw_hour` labels.
HOUR_FORMAT = "%Y-%m-%dT%H"

#: How many complete hours the hourly pipeline run processes by default: the last one and the one
#: before, so an hour is processed again once its late files are in.
DEFAULT_WINDOW_HOURS = 2


class HourError(ValueError):
    """An hour or a range of hours that cannot be used; the message says why."""


def hour_floor(value: datetime) -> datetime:
    """The start of the UTC hour `value` lies in."""
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def format_hour(hour: datetime) -> str:
    """2026-11-28T01 for any time within that UTC hour."""
    return hour.astimezone(UTC).strftime(HOUR_FORMAT)


def parse_hour(text: str, *, name: str = "hour") -> datetime:
    """YYYY-MM-DDTHH (UTC) as an aware datetime; HourError says what is wrong with anything else."""
    if not isinstance(text, str) or len(text) != 13 or text[10:11] != "T":
        raise HourError(f"{name} must look like YYYY-MM-DDTHH (UTC), e.g. 2026-11-28T05; got {text!r}")
    try:
        return datetime.strptime(text, HOUR_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        year, month, day, hour = int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13])
    except ValueError:
        raise HourError(
            f"{name} must look like YYYY-MM-DDTHH (UTC), e.g. 2026-11-28T05; got {text!r}"
        ) from None
    if not 1 <= month <= 12:
        raise HourError(f"{name} {text}: there is no month {month}")
    if not 0 <= hour <= 23:
        raise HourError(f"{name} {text}: the hour must be 00-23, got {hour}")
    try:
        datetime(year, month, day)
    except ValueError:
        raise HourError(f"{name} {text}: {year}-{month:02d} has no day {day}") from None
    raise HourError(f"{name} must look like YYYY-MM-DDTHH (UTC), e.g. 2026-11-28T05; got {text!r}")


def hours_ending_at(last_hour: datetime, count: int) -> list[datetime]:
    """The `count` hours ending with `last_hour`, oldest first."""
    if count < 1:
        raise HourError("the number of hours must be at least 1")
    last = hour_floor(last_hour)
    return [last - timedelta(hours=offset) for offset in range(count - 1, -1, -1)]


def trailing_hours(now: datetime | None = None, count: int = DEFAULT_WINDOW_HOURS) -> list[datetime]:
    """The last `count` complete hours before `now` (default: the hourly run's window), oldest first."""
    current_hour = hour_floor(now or datetime.now(UTC))
    return hours_ending_at(current_hour - timedelta(hours=1), count)


def hour_range(first: datetime, last: datetime, *, max_hours: int | None = None) -> list[datetime]:
    """Every hour from `first` to `last`, both included; HourError if reversed or too long."""
    first, last = hour_floor(first), hour_floor(last)
    if last < first:
        raise HourError(f"the end hour {format_hour(last)} is before the start hour {format_hour(first)}")
    count = int((last - first) / timedelta(hours=1)) + 1
    if max_hours is not None and count > max_hours:
        raise HourError(
            f"at most {max_hours} hours at a time; {format_hour(first)}..{format_hour(last)} is {count}"
        )
    return hours_ending_at(last, count)


def describe_hours(hours: Sequence[datetime]) -> str:
    """'2026-11-28T01' for one hour, '2026-11-27T00..2026-11-28T23 (48 hours)' for a window."""
    if len(hours) == 1:
        return format_hour(hours[0])
    return f"{format_hour(hours[0])}..{format_hour(hours[-1])} ({len(hours)} hours)"
