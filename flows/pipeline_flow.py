"""deactivation-pipeline: run the Beam pipeline over a window of raw hours, verify, publish counts.

Deployed hourly (prefect.yaml: deactivation-pipeline-hourly, "5 * * * *" UTC) with the default
window, the last 2 complete hours, so an hour is processed again once its late files are in.
Operators re-run any hour from the UI by giving `hour` (and `hours` for a longer window).
"""

from __future__ import annotations

import time
from typing import Annotated

from prefect import flow
from pydantic import Field

from deactivation.hours import DEFAULT_WINDOW_HOURS, describe_hours, format_hour
from flows.artifacts import PIPELINE_KEY, PipelineRunReport, failure_markdown, pipeline_markdown, publish
from flows.tasks import (
    HourText,
    PipelineRunError,
    VerificationError,
    read_warehouse_counts,
    resolve_window,
    run_beam_pipeline,
    verify_against_warehouse,
)

#: The longest window one run may cover (a month); longer ranges are a backfill.
MAX_WINDOW_HOURS = 24 * 31


@flow(name="deactivation-pipeline")
def deactivation_pipeline(
    hour: HourText | None = None,
    hours: Annotated[int, Field(ge=1, le=MAX_WINDOW_HOURS)] = DEFAULT_WINDOW_HOURS,
) -> PipelineRunReport:
    """Process `hours` raw hours ending at `hour` (YYYY-MM-DDTHH, UTC); default: the last 2 complete hours."""
    started = time.perf_counter()
    window = resolve_window(hour, hours)
    try:
        summary = run_beam_pipeline(window)
        counts = read_warehouse_counts(window)
        verify_against_warehouse(summary, window, counts)
    except (PipelineRunError, VerificationError) as error:
        failure = failure_markdown("Pipeline run", window, error)
        publish(PIPELINE_KEY, failure, f"FAILED {describe_hours(window)}")
        raise
    report = PipelineRunReport(
        hours=[format_hour(h) for h in window],
        files=summary.files,
        events_read=summary.read,
        valid=summary.deactivations,
        dead_letters=summary.errors,
        rows_written=summary.rows_written,
        per_hour=counts.hours,
        beam_seconds=summary.seconds,
        seconds=time.perf_counter() - started,
    )
    publish(PIPELINE_KEY, pipeline_markdown(report), f"Pipeline {describe_hours(window)}")
    return report
