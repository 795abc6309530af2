"""Run summaries the Prefect UI shows: one markdown artifact per run, and backfill progress.

The markdown is built by pure functions (tested on their own); `publish_*` hands it to Prefect.
Artifact keys are stable per flow, so the UI's Artifacts page shows each flow's history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from pydantic import BaseModel
from tqdm import tqdm

from deactivation.hours import describe_hours, format_hour, parse_hour
from flows.tasks import HourCounts

PIPELINE_KEY = "deactivation-pipeline"
ANALYTICS_KEY = "deactivation-analytics"
BACKFILL_KEY = "backfill"
BACKFILL_PROGRESS_KEY = "backfill-progress"


class PipelineRunReport(BaseModel):
    """What one pipeline run did: the numbers its artifact shows (checked against the warehouse)."""

    hours: list[str]
    files: int
    events_read: int
    valid: int
    dead_letters: dict[str, int]
    rows_written: dict[str, int]
    per_hour: list[HourCounts]
    beam_seconds: float
    seconds: float


class AnalyticsRunReport(BaseModel):
    hours_rebuilt: list[str]
    days_rebuilt: list[str]
    tables: dict[str, int]
    published: dict[str, int]
    watermark: str | None
    report_html: str | None
    charts: int
    pngs: int
    empty_charts: list[str]
    seconds: float


class BackfillReport(BaseModel):
    hours: list[str]
    skipped: list[str]
    runs: list[PipelineRunReport]
    analytics: AnalyticsRunReport | None
    seconds: float

    @property
    def events_read(self) -> int:
        return sum(run.events_read for run in self.runs)

    @property
    def valid(self) -> int:
        return sum(run.valid for run in self.runs)

    @property
    def dead_letters(self) -> dict[str, int]:
        return _sum_dicts(run.dead_letters for run in self.runs)

    @property
    def rows_written(self) -> dict[str, int]:
        return _sum_dicts(run.rows_written for run in self.runs)


def _sum_dicts(dicts) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in dicts:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


# --- markdown ---------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _count_rows(
    events_read: int, valid: int, dead_letters: Mapping[str, int], rows_written: Mapping[str, int]
) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [("events read", events_read), ("valid deactivations", valid)]
    rows += [(f"dead letters: {kind}", count) for kind, count in sorted(dead_letters.items())]
    rows += [(f"rows written: {table}", count) for table, count in sorted(rows_written.items())]
    return rows


def pipeline_markdown(report: PipelineRunReport) -> str:
    hours = [parse_hour(h) for h in report.hours]
    summary = _count_rows(report.events_read, report.valid, report.dead_letters, report.rows_written)
    summary += [
        ("raw files", report.files),
        ("Beam seconds", f"{report.beam_seconds:.1f}"),
        ("duration seconds", f"{report.seconds:.1f}"),
    ]
    per_hour = [(h.hour, h.files, h.read, h.deactivations, h.sites, h.dead_letters) for h in report.per_hour]
    return "\n\n".join(
        [
            f"## Pipeline run: {describe_hours(hours)}",
            _table(("measure", "count"), summary),
            "### Per hour, as the warehouse holds it (hour_loads, checked against the tables)",
            _table(("hour", "files", "read", "deactivations", "sites", "dead letters"), per_hour),
        ]
    )


def analytics_markdown(report: AnalyticsRunReport) -> str:
    rows: list[tuple[str, object]] = [
        ("hours rebuilt", _span(report.hours_rebuilt)),
        ("days rebuilt", _span(report.days_rebuilt)),
    ]
    rows += [(f"rows written: {table}", count) for table, count in sorted(report.tables.items())]
    rows += [(f"documents published: {name}", count) for name, count in sorted(report.published.items())]
    rows += [
        ("watermark", report.watermark or "-"),
        ("report", report.report_html or "not rendered"),
        ("charts", report.charts),
        ("PNG files", report.pngs),
        ("charts without data", ", ".join(report.empty_charts) or "-"),
        ("duration seconds", f"{report.seconds:.1f}"),
    ]
    return "## Analytics run\n\n" + _table(("measure", "value"), rows)


def _span(labels: Sequence[str]) -> str:
    """'0' or '3 (2026-11-27T22..2026-11-28T00)'."""
    if not labels:
        return "0"
    return f"{len(labels)} ({labels[0]}..{labels[-1]})" if len(labels) > 1 else f"1 ({labels[0]})"


def backfill_markdown(report: BackfillReport) -> str:
    rows = _count_rows(report.events_read, report.valid, report.dead_letters, report.rows_written)
    rows += [
        ("hours in range", len(report.hours)),
        ("hours already loaded (skipped)", len(report.skipped)),
        ("pipeline runs", len(report.runs)),
        ("analytics", "run" if report.analytics else "not run"),
        ("duration seconds", f"{report.seconds:.1f}"),
    ]
    runs = [(", ".join((run.hours[0], run.hours[-1])), run.events_read, run.valid) for run in report.runs]
    return "\n\n".join(
        [
            f"## Backfill {report.hours[0]}..{report.hours[-1]}",
            _table(("measure", "count"), rows),
            "### Pipeline runs",
            _table(("first, last hour", "events read", "valid"), runs),
        ]
    )


def failure_markdown(what: str, hours: Sequence[datetime], error: BaseException) -> str:
    return "\n\n".join(
        [
            f"## {what} FAILED",
            _table(
                ("hour(s)", "error", "why"),
                [(", ".join(map(format_hour, hours)), type(error).__name__, str(error).replace("|", "/"))],
            ),
            "Every stage is idempotent: re-run the same hours once the cause is fixed.",
        ]
    )


# --- publishing -------------------------------------------------------------------------------------


def publish(key: str, markdown: str, description: str) -> UUID:
    return create_markdown_artifact(markdown=markdown, key=key, description=description)


class BackfillProgress:
    """Progress of a backfill, in the Prefect UI (a progress artifact) and on the CLI (tqdm)."""

    def __init__(self, total_hours: int, already_done: int) -> None:
        self.total = total_hours
        self.done = already_done
        self.bar = tqdm(total=total_hours, initial=already_done, unit="hour", desc="backfill")
        self.artifact_id = create_progress_artifact(
            progress=self.percent, key=BACKFILL_PROGRESS_KEY, description="Hours of the backfill done"
        )

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total

    def advance(self, hours: int) -> None:
        self.done += hours
        self.bar.update(hours)
        update_progress_artifact(self.artifact_id, self.percent)

    def close(self) -> None:
        self.bar.close()
