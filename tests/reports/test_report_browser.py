"""The rendered report in a real headless Chromium: every chart draws, nothing logs an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events
from deactivation.projects import upsert_project
from reports.analytics import build_analytics
from reports.render import render_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
START = datetime(2026, 11, 18, tzinfo=UTC)
NO_DATA_PROJECT = "22222222-3333-4444-8555-666666666666"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def chromium_page():
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _open(page, path):
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('figure.chart .main-svg').length > 0")
    return problems


def test_every_chart_draws_in_chromium_without_console_errors(
    settings, mongo_db, truth, chromium_page, tmp_path
):
    generated = generate_events(seed=4, start_hour=START, hours=48, events_per_hour=10)
    hours = [START + timedelta(hours=i) for i in range(48)]
    truth.load_events(settings, generated.truth.events, hours, loaded_at=datetime(2026, 11, 21, tzinfo=UTC))
    for project in DEMO_PROJECTS:
        upsert_project(mongo_db, project)
    build_analytics(settings, publish=False)
    with_data = render_report(settings, tmp_path / "all", png=False)
    without_data = render_report(settings, tmp_path / "none", project=NO_DATA_PROJECT, png=False)

    problems = _open(chromium_page, tmp_path / "all" / "deactivation-report.html")
    figures = chromium_page.query_selector_all("figure.chart")
    assert len(figures) == len(with_data.charts)
    empty_ids = {key.split("/")[1] for key in with_data.empty}
    for figure in figures:
        chart_id = figure.get_attribute("data-chart")
        assert figure.query_selector(".main-svg"), f"{chart_id} did not draw"
        traces = figure.query_selector_all("g.trace, g.slice")
        if figure.get_attribute("data-state") == "data":
            assert traces, f"{chart_id} drew no trace"
        else:
            assert chart_id in empty_ids
    assert problems == []

    problems = _open(chromium_page, tmp_path / "none" / "deactivation-report.html")
    empty_figures = chromium_page.query_selector_all("figure.chart")
    assert len(empty_figures) == len(without_data.charts) == len(without_data.empty)
    for figure in empty_figures:
        assert figure.query_selector(".main-svg")
        assert "No deactivations" in figure.inner_text() or "No written answers" in figure.inner_text()
    assert problems == []
