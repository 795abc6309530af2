"""The dashboard's read operations, shared by the JSON API and the pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Response, stream_with_context

from dashboard_app.charts import PublishedAggregates, render_chart
from dashboard_app.context import dashboard
from dashboard_app.errors import not_found
from dashboard_app.filters import parse_filters, parse_limit, parse_period
from dashboard_app.history import csv_lines, site_history
from dashboard_app.state import Page, list_deactivations, site_state
from dashboard_app.summary import project_summary
from deactivation.api_keys import ApiKey
from deactivation.projects import Project

#: Longest site URL accepted in a path (the SDK's own URLs are far shorter).
MAX_SITE_URL = 2000


def deactivations_page(project: Project, key: ApiKey, args: Mapping[str, str]) -> tuple[Page, Any]:
    filters = parse_filters(args, project)
    limit = parse_limit(args)
    page = list_deactivations(
        dashboard().db,
        dashboard().cursors,
        project.hash,
        filters,
        limit=limit,
        cursor=args.get("cursor"),
        personal=key.sees_personal_data,
    )
    return page, filters


def summary(project: Project, args: Mapping[str, str]) -> dict[str, Any]:
    start_day, end_day = parse_period(args)
    return project_summary(dashboard().db, project.hash, start_day, end_day)


def charts(project: Project, args: Mapping[str, str], chart_id: str | None = None) -> list[dict[str, Any]]:
    start_day, end_day = parse_period(args)
    views = [view for view in dashboard().charts() if view.chart.applies_to(project.kind)]
    if chart_id is not None:
        views = [view for view in views if view.id == chart_id]
        if not views:
            raise not_found("no such chart")
    source = PublishedAggregates(dashboard().db, project.hash, start_day, end_day)
    try:
        return [render_chart(source, view) for view in views]
    finally:
        source.close()


def csv_download(project: Project, key: ApiKey, args: Mapping[str, str]) -> Response:
    filters = parse_filters(args, project)
    lines = csv_lines(
        dashboard().warehouse, dashboard().db, project.hash, filters, personal=key.sees_personal_data
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="deactivations-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def site(project: Project, key: ApiKey, site_url: str) -> dict[str, Any]:
    if not site_url or len(site_url) > MAX_SITE_URL:
        raise not_found("no such site")
    latest = site_state(dashboard().db, project.hash, site_url, key.sees_personal_data)
    if latest is None:
        raise not_found("no such site")
    return {
        "site_url": site_url,
        "latest": latest,
        "history": site_history(dashboard().warehouse, project.hash, site_url),
    }


def site_path(site_url: str) -> str:
    """The URL-quoted site, as it appears in /projects/<hash>/sites/<site> links."""
    return quote(site_url, safe="")
