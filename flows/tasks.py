"""The Prefect tasks the flows sequence: each wraps one package call.

Only tasks that do I/O (raw store, MongoDB, warehouse) retry; they are safe to retry because every
stage is idempotent (the pipeline replaces whole raw_hour slices, analytics rebuilds aggregates).
Settings come from `get_settings()`, i.e. the environment of the worker that runs the flow.
Beam and the reports package are imported inside the tasks that use them: registering a deployment
or validating parameters then does not pay for importing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from prefect import task
from pydantic import BaseModel, Field

from beam.hour_lock import HoursLockedError
from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.hours import (
    describe_hours,
    format_hour,
    hour_floor,
    hour_range,
    hours_ending_at,
    parse_hour,
    trailing_hours,
)
from deactivation.schemas import HISTORY_TABLES as HISTORY_TABLE_SCHEMAS
from deactivation.settings import get_settings
from deactivation.warehouse import open_warehouse

if TYPE_CHECKING:
    from beam.pipeline import PipelineSummary
    from reports.analytics import AnalyticsSummary
    from reports.render import ReportSummary

#: An hour as operators type it in the Prefect UI and on the CLI: YYYY-MM-DDTHH (UTC).
HourText = Annotated[
    str,
    Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}$", description="An hour in UTC, written YYYY-MM-DDTHH."),
]

#: Retry policy of tasks that talk to storage, MongoDB or the warehouse.
IO_RETRIES = 2
IO_RETRY_DELAYS = [10, 60]

HISTORY_TABLES = tuple(table.name for table in HISTORY_TABLE_SCHEMAS)


class PipelineRunError(RuntimeError):
    """The Beam pipeline failed for a window of hours (the message names them and the cause)."""


class VerificationError(RuntimeError):
    """The warehouse does not hold what the pipeline reported (the message names the hours)."""


class HourCounts(BaseModel):
    """What the warehouse holds for one raw hour (hour_loads, checked against the tables)."""

    hour: str
    files: int
    read: int
    deactivations: int
    sites: int
    dead_letters: int


class WarehouseCounts(BaseModel):
    """Rows the warehouse holds for a set of raw hours."""

    hours: list[HourCounts]
    table_rows: dict[str, int]
    dead_letters: dict[str, int]
    #: (hour, table) → rows actually in the table, to check hour_loads against.
    rows_by_hour: dict[str, dict[str, int]] = Field(default_factory=dict)


# --- pure tasks ---------------------------------------------------------------------------------------


@task(name="resolve-window")
def resolve_window(hour: str | None, hours: int) -> list[datetime]:
    """The hours to process: `hours` hours ending at `hour`, or the trailing complete hours."""
    if hour is None:
        return trailing_hours(count=hours)
    return hours_ending_at(parse_hour(hour), hours)


@task(name="resolve-range")
def resolve_range(start_hour: str, end_hour: str, max_hours: int) -> list[datetime]:
    """Every hour from start to end, both included (at most `max_hours`)."""
    first = parse_hour(start_hour, name="start_hour")
    last = parse_hour(end_hour, name="end_hour")
    return hour_range(first, last, max_hours=max_hours)


# --- I/O tasks ----------------------------------------------------------------------------------------


def retry_unless_hours_locked(task, task_run, state) -> bool:
    """Retry a failed pipeline run, except one that already waited PIPELINE_LOCK_WAIT_SECONDS for
    hours another run holds: it fails at once, naming the holder, instead of waiting again."""
    error = state.data if isinstance(state.data, BaseException) else None
    return not (error is not None and isinstance(error.__cause__, HoursLockedError))


@task(
    name="run-beam-pipeline",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_unless_hours_locked,
)
def run_beam_pipeline(hours: list[datetime]) -> PipelineSummary:
    """One Beam job over the window; a failure names the hours and the cause."""
    # lazy: Beam (~5 s) loads in the flow run that needs it, not when a deployment is registered.
    from beam.pipeline import run_pipeline

    try:
        return run_pipeline(get_settings(), hours)
    except Exception as exc:
        raise PipelineRunError(
            f"pipeline failed for hour {describe_hours(hours)}: {type(exc).__name__}: {exc}"
        ) from exc


@task(name="read-warehouse-counts", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS)
def read_warehouse_counts(hours: list[datetime]) -> WarehouseCounts:
    """hour_loads rows and the actual table rows of these raw hours."""
    warehouse = open_warehouse(get_settings())
    params = {"hours": [hour_floor(h) for h in hours]}
    loads = warehouse.query(HOUR_LOADS_SQL, params)
    rows = warehouse.query(ROWS_BY_HOUR_SQL, params)
    return _warehouse_counts(loads, rows)


@task(name="find-loaded-hours", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS)
def find_loaded_hours(hours: list[datetime]) -> list[datetime]:
    """The hours that already have an hour_loads row (a backfill skips them when resuming)."""
    warehouse = open_warehouse(get_settings())
    if not warehouse.table_exists("hour_loads"):
        return []
    loaded = warehouse.query(HOUR_LOADS_SQL, {"hours": [hour_floor(h) for h in hours]})
    done = set(loaded["hour"])
    return [h for h in hours if format_hour(h) in done]


@task(name="build-analytics", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS)
def build_analytics_task(since: datetime | None, full: bool) -> AnalyticsSummary:
    # lazy: pandas and the aggregates load in the flow run that needs them, not at registration.
    from reports.analytics import build_analytics

    return build_analytics(get_settings(), since=since, full=full)


@task(name="render-report", retries=1, retry_delay_seconds=10)
def render_report_task(project: str | None, days: int | None, png: bool) -> ReportSummary:
    # lazy: plotly loads in the flow run that renders, not at registration.
    from reports.render import render_report

    settings = get_settings()
    return render_report(settings, Path(settings.reports_dir), project=project, days=days, png=png)


# --- verification (pure) ------------------------------------------------------------------------------


@task(name="verify-warehouse")
def verify_against_warehouse(
    summary: PipelineSummary, hours: list[datetime], counts: WarehouseCounts
) -> None:
    """Raise VerificationError, naming each bad hour, unless the warehouse holds what Beam reported."""
    problems = warehouse_problems(summary, hours, counts)
    if problems:
        raise VerificationError("warehouse check failed: " + "; ".join(problems))


def warehouse_problems(
    summary: PipelineSummary, hours: Sequence[datetime], counts: WarehouseCounts
) -> list[str]:
    problems = []
    loaded = {row.hour: row for row in counts.hours}
    for hour in map(format_hour, hours):
        row = loaded.get(hour)
        if row is None:
            problems.append(f"hour {hour}: no hour_loads row")
            continue
        actual = counts.rows_by_hour.get(hour, {})
        for table, expected in (
            ("deactivations", row.deactivations),
            ("sites", row.sites),
            ("deactivation_errors", row.dead_letters),
        ):
            held = actual.get(table, 0)
            if held != expected:
                problems.append(f"hour {hour}: hour_loads says {expected} {table} rows, the table has {held}")
    for table in HISTORY_TABLES:
        reported = summary.rows_written.get(table)
        if reported is not None and reported != counts.table_rows.get(table, 0):
            problems.append(
                f"hours {describe_hours(hours)}: pipeline wrote {reported} {table} rows, "
                f"the warehouse holds {counts.table_rows.get(table, 0)}"
            )
    for kind, reported in summary.errors.items():
        if reported != counts.dead_letters.get(kind, 0):
            problems.append(
                f"hours {describe_hours(hours)}: pipeline reported {reported} {kind} dead letters, "
                f"the warehouse holds {counts.dead_letters.get(kind, 0)}"
            )
    return problems


# --- warehouse SQL (BigQuery dialect) -----------------------------------------------------------------

HOUR_LOADS_SQL = """
SELECT FORMAT_TIMESTAMP('%Y-%m-%dT%H', raw_hour) AS hour, files, records_read, deactivations, sites, errors
FROM hour_loads
WHERE raw_hour IN UNNEST(@hours)
ORDER BY hour
"""

ROWS_BY_HOUR_SQL = """
SELECT 'deactivations' AS table_name, '' AS error_type,
       FORMAT_TIMESTAMP('%Y-%m-%dT%H', raw_hour) AS hour, COUNT(*) AS row_count
FROM deactivations WHERE raw_hour IN UNNEST(@hours) GROUP BY raw_hour
UNION ALL
SELECT 'sites', '', FORMAT_TIMESTAMP('%Y-%m-%dT%H', raw_hour), COUNT(*)
FROM sites WHERE raw_hour IN UNNEST(@hours) GROUP BY raw_hour
UNION ALL
SELECT 'deactivation_errors', error_type, FORMAT_TIMESTAMP('%Y-%m-%dT%H', raw_hour), COUNT(*)
FROM deactivation_errors WHERE raw_hour IN UNNEST(@hours) GROUP BY raw_hour, error_type
"""


def _warehouse_counts(loads, rows) -> WarehouseCounts:
    hours = [
        HourCounts(
            hour=record["hour"],
            files=int(record["files"]),
            read=int(record["records_read"]),
            deactivations=int(record["deactivations"]),
            sites=int(record["sites"]),
            dead_letters=int(record["errors"]),
        )
        for record in loads.to_dict("records")
    ]
    table_rows = dict.fromkeys(HISTORY_TABLES, 0)
    dead_letters = dict.fromkeys(DEAD_LETTER_TYPES, 0)
    rows_by_hour: dict[str, dict[str, int]] = {}
    for record in rows.to_dict("records"):
        count = int(record["row_count"])
        table_rows[record["table_name"]] += count
        per_hour = rows_by_hour.setdefault(record["hour"], {})
        per_hour[record["table_name"]] = per_hour.get(record["table_name"], 0) + count
        if record["table_name"] == "deactivation_errors":
            dead_letters[record["error_type"]] = dead_letters.get(record["error_type"], 0) + count
    return WarehouseCounts(
        hours=hours, table_rows=table_rows, dead_letters=dead_letters, rows_by_hour=rows_by_hour
    )
