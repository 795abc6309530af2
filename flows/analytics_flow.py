"""deactivation-analytics: rebuild the aggregates the pipeline touched, publish them, render the report.

Deployed hourly (prefect.yaml: deactivation-analytics-hourly, "20 * * * *" UTC), after the
pipeline's run at :05. Incremental by default: only hours loaded since the last build are rebuilt.
"""

from __future__ import annotations

import time
from typing import Annotated

from prefect import flow
from pydantic import Field

from deactivation.hours import parse_hour
from flows.artifacts import ANALYTICS_KEY, AnalyticsRunReport, analytics_markdown, publish
from flows.tasks import HourText, build_analytics_task, render_report_task


@flow(name="deactivation-analytics")
def deactivation_analytics(
    since: HourText | None = None,
    full: bool = False,
    render: bool = True,
    report_project: str | None = None,
    report_days: Annotated[int, Field(ge=1, le=3660)] | None = None,
    png: bool = False,
) -> AnalyticsRunReport:
    """Incremental analytics build (or `full`, or from `since`), then the HTML report."""
    started = time.perf_counter()
    built = build_analytics_task(parse_hour(since) if since else None, full)
    rendered = render_report_task(report_project, report_days, png) if render else None
    report = AnalyticsRunReport(
        hours_rebuilt=sorted(built.hours_rebuilt),
        days_rebuilt=sorted(built.days_rebuilt),
        tables=built.tables,
        published=built.published,
        watermark=built.watermark,
        report_html=rendered.html_path if rendered else None,
        charts=len(rendered.charts) if rendered else 0,
        pngs=len(rendered.pngs) if rendered else 0,
        empty_charts=list(rendered.empty) if rendered else [],
        seconds=time.perf_counter() - started,
    )
    publish(ANALYTICS_KEY, analytics_markdown(report), "Analytics build and report")
    return report
