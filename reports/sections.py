"""The report's sections besides the charts: headline totals against the previous period of the same
length, and the written answers of the period (masked).

Like a chart, each section is one BigQuery-dialect SQL file in `reports/sql/` (`report_<name>.sql`,
taking `@project_hash`, `@start_day`, `@end_day`) plus a function turning its rows into a small typed
value, so the report, the notebooks and a dashboard read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pandas as pd

from deactivation.redaction import mask_free_text
from deactivation.warehouse import Warehouse
from reports.registry import DEFAULT_SQL_DIR

HEADLINE_SQL = "report_headline.sql"
ANSWERS_SQL = "report_answers.sql"
#: The newest answers listed (the LIMIT in report_answers.sql); the page says how many there were.
MAX_ANSWERS = 500
#: Longer answers are cut here in the page (the SDK's own limit is higher than anyone reads).
MAX_ANSWER_CHARS = 2000


@dataclass(frozen=True)
class ReasonTotal:
    reason_id: str
    reason_label: str
    deactivations: int
    previous_deactivations: int


@dataclass(frozen=True)
class Headline:
    """Deactivations of one project in a period and in the period of the same length before it."""

    start_day: date
    end_day: date
    deactivations: int
    previous_deactivations: int
    #: Whether the project's data covers the previous period: all of it, only its end, or none of it.
    previous_coverage: Literal["full", "partial", "none"]
    #: Per reason, most given first.
    reasons: tuple[ReasonTotal, ...]
    #: The project's first and last hours with data (None without any in or before the period).
    first_hour: datetime | None = None
    last_hour: datetime | None = None

    @property
    def days(self) -> int:
        return (self.end_day - self.start_day).days + 1

    @property
    def previous_start_day(self) -> date:
        return self.start_day - timedelta(days=self.days)

    @property
    def previous_end_day(self) -> date:
        return self.start_day - timedelta(days=1)

    @property
    def change(self) -> int | None:
        """Deactivations minus the previous period's (None when no data covers the previous period)."""
        if self.previous_coverage == "none":
            return None
        return self.deactivations - self.previous_deactivations

    @property
    def change_ratio(self) -> float | None:
        """The change as a fraction of the previous period's deactivations (None from 0 or no data)."""
        if self.change is None or self.previous_deactivations == 0:
            return None
        return self.change / self.previous_deactivations

    @property
    def partial_days(self) -> dict[date, str]:
        """The period's days that hold part of a day's data (the project's first day of data starting
        after 00:00 UTC, its last ending before 24:00), and why: totals over them run low."""
        notes: dict[date, str] = {}
        if (
            self.first_hour
            and self.start_day <= self.first_hour.date() <= self.end_day
            and self.first_hour.hour
        ):
            notes[self.first_hour.date()] = f"data from {self.first_hour:%H}:00 UTC only"
        if (
            self.last_hour
            and self.start_day <= self.last_hour.date() <= self.end_day
            and self.last_hour.hour < 23
        ):
            until = f"until {self.last_hour.hour + 1:02d}:00 UTC only"
            day = self.last_hour.date()
            notes[day] = f"{notes[day].removesuffix(' only')} {until}" if day in notes else f"data {until}"
        return notes

    @property
    def top_reason(self) -> ReasonTotal | None:
        given = [r for r in self.reasons if r.deactivations]
        return given[0] if given else None


@dataclass(frozen=True)
class Answer:
    received_at: datetime
    reason_id: str
    reason_label: str
    project_version: str
    #: The answer with e-mail and IP addresses, URLs and phone numbers masked, cut at MAX_ANSWER_CHARS.
    text: str


@dataclass(frozen=True)
class Answers:
    """The newest written answers of a period (at most MAX_ANSWERS) and how many there were in all."""

    shown: tuple[Answer, ...]
    total: int


def section_sql(name: str) -> str:
    return (DEFAULT_SQL_DIR / name).read_text()


def headline(warehouse: Warehouse, project_hash: str, start_day: date, end_day: date) -> Headline:
    frame = warehouse.query(section_sql(HEADLINE_SQL), _params(project_hash, start_day, end_day))
    reasons = tuple(
        ReasonTotal(row.reason_id, row.reason_label, int(row.deactivations), int(row.previous_deactivations))
        for row in frame.itertuples()
    )
    first_hour, last_hour = _hour(frame, "first_hour"), _hour(frame, "last_hour")
    previous_start = start_day - timedelta(days=(end_day - start_day).days + 1)
    if first_hour is None or first_hour.date() >= start_day:
        coverage = "none"
    elif first_hour.date() < previous_start or (first_hour.date() == previous_start and first_hour.hour == 0):
        coverage = "full"
    else:  # the project's data starts inside the previous period (or after its first hour)
        coverage = "partial"
    return Headline(
        start_day=start_day,
        end_day=end_day,
        deactivations=sum(r.deactivations for r in reasons),
        previous_deactivations=sum(r.previous_deactivations for r in reasons),
        previous_coverage=coverage,
        reasons=reasons,
        first_hour=first_hour,
        last_hour=last_hour,
    )


def written_answers(warehouse: Warehouse, project_hash: str, start_day: date, end_day: date) -> Answers:
    """The period's written answers, newest first, masked with deactivation.redaction.mask_free_text."""
    frame = warehouse.query(section_sql(ANSWERS_SQL), _params(project_hash, start_day, end_day))
    shown = tuple(
        Answer(
            received_at=pd.Timestamp(row.received_at).to_pydatetime(),
            reason_id=row.reason_id,
            reason_label=row.reason_label,
            project_version=row.project_version,
            text=_cut(mask_free_text(row.reason_info)),
        )
        for row in frame.itertuples()
    )
    total = int(frame["total_answers"].iloc[0]) if len(frame) else 0
    return Answers(shown=shown, total=total)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ANSWER_CHARS else text[: MAX_ANSWER_CHARS - 1] + "…"


def _hour(frame: pd.DataFrame, column: str) -> datetime | None:
    if frame.empty or pd.isna(frame[column].iloc[0]):
        return None
    stamp = pd.Timestamp(frame[column].iloc[0])
    return (stamp.tz_convert(UTC) if stamp.tzinfo else stamp.tz_localize(UTC)).to_pydatetime()


def _params(project_hash: str, start_day: date, end_day: date) -> dict:
    return {"project_hash": project_hash, "start_day": start_day, "end_day": end_day}
