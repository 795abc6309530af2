"""Query parameters of the list, the CSV export, the summary and the charts: parsed and bounded.

Every parameter is checked here once, for the API and the pages alike; anything wrong is a 400
that names the parameter. Days are UTC calendar days and ranges include both ends.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from dashboard_app.errors import bad_parameter
from deactivation.projects import Project

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: The longest period the summary and the charts answer for (a year and a day, with leap days).
MAX_PERIOD_DAYS = 732
DEFAULT_PERIOD_DAYS = 30
MAX_TEXT_FILTER = 100
_MAJOR_MINOR = re.compile(r"^\d{1,3}\.\d{1,3}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,3}$")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
#: The filters of the list and the CSV, in the order the form shows them.
FILTER_NAMES = ("from", "to", "reason", "version", "wp", "php", "locale", "q", "has_text")


@dataclass(frozen=True)
class ListFilters:
    start_day: date | None = None
    end_day: date | None = None
    reason: str | None = None
    version: str | None = None
    wp: str | None = None
    php: str | None = None
    locale: str | None = None
    q: str | None = None
    has_text: bool | None = None

    def query_args(self) -> dict[str, str]:
        """The filters as query parameters (for links: next page, CSV of the same filters)."""
        values = {
            "from": self.start_day.isoformat() if self.start_day else None,
            "to": self.end_day.isoformat() if self.end_day else None,
            "reason": self.reason,
            "version": self.version,
            "wp": self.wp,
            "php": self.php,
            "locale": self.locale,
            "q": self.q,
            "has_text": None if self.has_text is None else str(self.has_text).lower(),
        }
        return {name: value for name, value in values.items() if value is not None}

    def digest(self) -> str:
        """Short fingerprint binding a cursor to the filters it was made for."""
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:16]


def parse_day(args: Mapping[str, str], name: str) -> date | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise bad_parameter(name, f"must be a UTC day YYYY-MM-DD, got {text[:40]!r}") from None


def parse_filters(args: Mapping[str, str], project: Project) -> ListFilters:
    start_day, end_day = parse_day(args, "from"), parse_day(args, "to")
    if start_day and end_day and end_day < start_day:
        raise bad_parameter("to", "must not be before from")
    reason = _text(args, "reason")
    if reason is not None and reason not in project.reasons:
        raise bad_parameter("reason", f"unknown reason {reason[:64]!r} for this project")
    version = _matching(args, "version", _VERSION, "a plugin version such as 2.4.0")
    wp = _matching(args, "wp", _MAJOR_MINOR, "a WordPress major.minor such as 6.5")
    php = _matching(args, "php", _MAJOR_MINOR, "a PHP major.minor such as 8.2")
    locale = _matching(args, "locale", _LOCALE, "a locale such as en_US")
    q = _text(args, "q")
    has_text_text = _text(args, "has_text")
    has_text = None
    if has_text_text is not None:
        if has_text_text.lower() not in _BOOLEANS:
            raise bad_parameter("has_text", "must be true or false")
        has_text = _BOOLEANS[has_text_text.lower()]
    return ListFilters(start_day, end_day, reason, version, wp, php, locale, q, has_text)


def parse_limit(args: Mapping[str, str]) -> int:
    text = (args.get("limit") or "").strip()
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise bad_parameter("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def parse_period(args: Mapping[str, str], today: date | None = None) -> tuple[date, date]:
    """from/to of the summary and charts; by default the last 30 days up to today (UTC)."""
    today = today or datetime.now(UTC).date()
    end_day = parse_day(args, "to") or today
    start_day = parse_day(args, "from") or end_day - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if end_day < start_day:
        raise bad_parameter("to", "must not be before from")
    if (end_day - start_day).days + 1 > MAX_PERIOD_DAYS:
        raise bad_parameter("from", f"the period may span at most {MAX_PERIOD_DAYS} days")
    return start_day, end_day


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _text(args: Mapping[str, str], name: str) -> str | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    if len(text) > MAX_TEXT_FILTER:
        raise bad_parameter(name, f"must be at most {MAX_TEXT_FILTER} characters")
    if any(ord(c) < 32 for c in text):
        raise bad_parameter(name, "must not contain control characters")
    return text


def _matching(args: Mapping[str, str], name: str, pattern: re.Pattern[str], example: str) -> str | None:
    text = _text(args, name)
    if text is not None and not pattern.match(text):
        raise bad_parameter(name, f"must be {example}")
    return text
