"""Daily and weekly digests: the period's numbers, straight from the warehouse.

A period is a calendar day, or an ISO week (Monday to Sunday), in the project's time zone. A
digest is due once the warehouse has loaded the period's last UTC hour; its numbers are computed
then and stored with the notification, so a retry mails the same numbers. Only the most recent
complete period is considered: turning digests on does not mail the past.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.database import Database

from deactivation.hours import hour_floor
from deactivation.mongo import NOTIFICATIONS
from deactivation.projects import Project
from deactivation.redaction import mask_free_text
from deactivation.warehouse import Warehouse
from notifications.outbox import Kind, enqueue

TOP_REASONS = 5
TOP_VERSION_MOVERS = 5
NOTABLE_ANSWERS = 5
MAX_ANSWER_CHARS = 300

_PERIOD_FILTER = "project_hash = @project AND received_at >= @start AND received_at < @end"
_COUNT_SQL = f"SELECT COUNT(*) AS deactivations FROM deactivations WHERE {_PERIOD_FILTER}"
_REASONS_SQL = f"""
SELECT reason_id, MAX(reason_label) AS reason_label, COUNT(*) AS deactivations
FROM deactivations WHERE {_PERIOD_FILTER}
GROUP BY reason_id ORDER BY deactivations DESC, reason_id LIMIT {TOP_REASONS}
"""
_VERSIONS_SQL = """
SELECT COALESCE(project_version, 'unknown') AS project_version,
       COUNTIF(received_at >= @start) AS deactivations,
       COUNTIF(received_at < @start) AS previous
FROM deactivations
WHERE project_hash = @project AND received_at >= @previous_start AND received_at < @end
GROUP BY 1
"""
_ANSWERS_SQL = f"""
SELECT reason_info, MAX(reason_label) AS reason_label, COUNT(*) AS times
FROM deactivations WHERE {_PERIOD_FILTER} AND reason_info IS NOT NULL AND TRIM(reason_info) != ''
GROUP BY reason_info ORDER BY times DESC, LENGTH(reason_info) DESC, reason_info LIMIT {NOTABLE_ANSWERS}
"""


@dataclass(frozen=True)
class Period:
    kind: str  # daily | weekly
    start: datetime  # local, aware
    end: datetime

    @property
    def previous_start(self) -> datetime:
        return self.start - (self.end - self.start)

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return f"{self.start:%A %d %B %Y}"
        last_day = self.end - timedelta(days=1)
        return f"week {self.start:%G-W%V} ({self.start:%d %b} – {last_day:%d %b %Y})"


def last_complete_period(kind: str, timezone: str, now: datetime) -> Period:
    """The latest whole day or ISO week (in `timezone`) that has ended by `now`."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    if kind == "daily":
        end_day, length = today, 1
    elif kind == "weekly":
        end_day, length = today - timedelta(days=today.weekday()), 7
    else:
        raise ValueError(f"no digest period {kind!r}")
    start_day = end_day - timedelta(days=length)
    # Midnight in the zone (DST-safe: build local wall times, let zoneinfo pick the offset).
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone)
    return Period(kind, start, end)


def digest_numbers(warehouse: Warehouse, project_hash: str, period: Period) -> dict[str, Any]:
    """Everything a digest shows, from the warehouse (counts exact, answers masked)."""
    params = {
        "project": project_hash,
        "start": period.start.astimezone(UTC),
        "end": period.end.astimezone(UTC),
        "previous_start": period.previous_start.astimezone(UTC),
    }
    previous_params = {**params, "start": params["previous_start"], "end": params["start"]}

    def query(sql: str, values: dict[str, Any]):
        # DuckDB refuses parameters a statement does not use: pass only those it names.
        return warehouse.query(sql, {k: v for k, v in values.items() if f"@{k}" in sql})

    count = int(query(_COUNT_SQL, params)["deactivations"].iloc[0])
    previous = int(query(_COUNT_SQL, previous_params)["deactivations"].iloc[0])
    reasons = [
        {
            "reason_id": row["reason_id"],
            "reason_label": row["reason_label"],
            "deactivations": int(row["deactivations"]),
            "share": int(row["deactivations"]) / count if count else 0.0,
        }
        for row in query(_REASONS_SQL, params).to_dict("records")
    ]
    versions = [
        {
            "project_version": row["project_version"],
            "deactivations": int(row["deactivations"]),
            "previous": int(row["previous"]),
            "change": int(row["deactivations"]) - int(row["previous"]),
        }
        for row in query(_VERSIONS_SQL, params).to_dict("records")
    ]
    versions.sort(key=lambda row: (-abs(row["change"]), row["project_version"]))
    answers = [
        {
            "reason_info": mask_free_text(row["reason_info"])[:MAX_ANSWER_CHARS],
            "reason_label": row["reason_label"],
        }
        for row in query(_ANSWERS_SQL, params).to_dict("records")
    ]
    return {
        "deactivations": count,
        "previous_deactivations": previous,
        "top_reasons": reasons,
        "version_movers": [row for row in versions if row["change"]][:TOP_VERSION_MOVERS],
        "notable_answers": answers,
    }


def change_text(current: int, previous: int) -> str:
    if previous == 0:
        return "new" if current else "no change"
    change = (current - previous) / previous * 100
    return f"{change:+.0f}%"


def plan_digests(
    db: Database,
    warehouse: Warehouse,
    projects: dict[str, Project],
    now: datetime,
    newest_loaded_hour: datetime | None,
) -> Counter[str]:
    """Enqueue each project's due digest (at most one per period, ever)."""
    planned: Counter[str] = Counter()
    if newest_loaded_hour is None:
        return planned
    for project in projects.values():
        settings = project.notifications
        if settings.digest == "off":
            continue
        period = last_complete_period(settings.digest, settings.timezone, now)
        last_hour = hour_floor(period.end.astimezone(UTC) - timedelta(seconds=1))
        if newest_loaded_hour < last_hour:
            continue  # the period's last hour is not in the warehouse yet
        notification_id = f"digest:{project.hash}:{period.kind}:{period.start.date().isoformat()}"
        if db[NOTIFICATIONS].count_documents({"_id": notification_id}, limit=1):
            continue
        numbers = digest_numbers(warehouse, project.hash, period)
        document = {
            "_id": notification_id,
            "kind": Kind.digest.value,
            "project_hash": project.hash,
            "payload": {
                "period": period.kind,
                "period_label": period.label,
                "previous_label": "day before" if period.kind == "daily" else "week before",
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "digest": numbers,
            },
        }
        planned[Kind.digest] += enqueue(db[NOTIFICATIONS], [document], now)
    return planned
