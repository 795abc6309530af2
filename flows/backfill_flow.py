"""backfill: a range of hours through the pipeline in chunks, then analytics once.

Resumable: hours that already have an hour_loads row are skipped (pass `skip_loaded_hours=False`
to reprocess them; that is safe, every stage is idempotent). Progress shows in the Prefect UI
(a progress artifact) and on the CLI (tqdm). Deployed without a schedule: run it from the UI or
`prefect deployment run backfill/backfill -p start_hour=... -p end_hour=...`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

from prefect import flow
from pydantic import Field

from deactivation.hours import format_hour
from flows.analytics_flow import deactivation_analytics
from flows.artifacts import BACKFILL_KEY, BackfillProgress, BackfillReport, backfill_markdown, publish
from flows.pipeline_flow import MAX_WINDOW_HOURS, deactivation_pipeline
from flows.tasks import HourText, find_loaded_hours, resolve_range

#: The longest range one backfill may cover (a year); split longer ones.
MAX_BACKFILL_HOURS = 24 * 366


@flow(name="backfill")
def backfill(
    start_hour: HourText,
    end_hour: HourText,
    hours_per_run: Annotated[int, Field(ge=1, le=MAX_WINDOW_HOURS)] = 6,
    skip_loaded_hours: bool = True,
    run_analytics: bool = True,
) -> BackfillReport:
    """Process every hour from `start_hour` to `end_hour` (both included, UTC), `hours_per_run` at a time."""
    started = time.perf_counter()
    hours = resolve_range(start_hour, end_hour, MAX_BACKFILL_HOURS)
    skipped = find_loaded_hours(hours) if skip_loaded_hours else []
    runs = []
    progress = BackfillProgress(len(hours), already_done=len(skipped))
    try:
        for chunk in contiguous_chunks([h for h in hours if h not in skipped], hours_per_run):
            runs.append(deactivation_pipeline(hour=format_hour(chunk[-1]), hours=len(chunk)))
            progress.advance(len(chunk))
    finally:
        progress.close()
    analytics = deactivation_analytics() if run_analytics and runs else None
    report = BackfillReport(
        hours=[format_hour(h) for h in hours],
        skipped=[format_hour(h) for h in skipped],
        runs=runs,
        analytics=analytics,
        seconds=time.perf_counter() - started,
    )
    publish(BACKFILL_KEY, backfill_markdown(report), f"Backfill {start_hour}..{end_hour}")
    return report


def contiguous_chunks(hours: Sequence[datetime], size: int) -> list[list[datetime]]:
    """Split sorted hours into runs of consecutive hours, each at most `size` long."""
    chunks: list[list[datetime]] = []
    for hour in hours:
        last = chunks[-1] if chunks else None
        if last and len(last) < size and hour - last[-1] == timedelta(hours=1):
            last.append(hour)
        else:
            chunks.append([hour])
    return chunks
