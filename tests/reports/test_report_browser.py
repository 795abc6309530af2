"""The rendered report in a real headless Chromium: the index links every page, every chart of every
page draws, the written answers filter by reason, the page works without JavaScript, and nothing logs
an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events
from deactivation.projects import Project, upsert_project
from reports.analytics import build_analytics
from reports.render import INDEX_FILE, render_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
START = datetime(2026, 11, 18, 9, tzinfo=UTC)
QUIET_PROJECT = Project(hash="22222222-3333-4444-8555-666666666666", name="Quiet Plugin")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def report(settings, mongo_db, truth, tmp_path):
    generated = generate_events(seed=4, start_hour=START, hours=48, events_per_hour=10)
    hours = [START + timedelta(hours=i) for i in range(48)]
    truth.load_events(settings, generated.truth.events, hours, loaded_at=datetime(2026, 11, 21, tzinfo=UTC))
    for project in [*DEMO_PROJECTS, QUIET_PROJECT]:
        upsert_project(mongo_db, project)
    build_analytics(settings, publish=False)
    return render_report(settings, tmp_path / "report", png=False)


def _open(page, path: Path, *, charts: bool = True) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    if charts:
        page.wait_for_function(
            "Array.from(document.querySelectorAll('figure.chart')).every(f => f.querySelector('.main-svg'))"
        )
    return problems


def test_every_page_of_the_index_draws_every_chart_without_console_errors(report, browser):
    page = browser.new_page()
    index = Path(report.html_path)
    assert _open(page, index, charts=False) == []
    links = page.eval_on_selector_all("#projects a", "links => links.map(a => a.getAttribute('href'))")
    assert len(links) == len(report.pages) == len(DEMO_PROJECTS) + 1

    empty_keys = set(report.empty)
    drawn = 0
    for link in links:
        page = browser.new_page()
        problems = _open(page, index.parent / link)
        project_hash = next(p.hash for p in report.pages if Path(p.html_path).name == link)
        expected = [key.split("/")[1] for key in report.charts if key.startswith(project_hash)]
        figures = page.query_selector_all("figure.chart")
        assert [f.get_attribute("data-chart") for f in figures] == expected
        for figure in figures:
            chart_id = figure.get_attribute("data-chart")
            assert figure.query_selector(".main-svg"), f"{link}: {chart_id} did not draw"
            if figure.get_attribute("data-state") == "data":
                assert figure.query_selector_all("g.trace, g.slice"), f"{link}: {chart_id} drew no trace"
                assert f"{project_hash}/{chart_id}" not in empty_keys
            else:
                assert f"{project_hash}/{chart_id}" in empty_keys
                assert (
                    "No deactivations" in figure.inner_text() or "No written answers" in figure.inner_text()
                )
            drawn += 1
        assert page.inner_text("h1") == next(p.name for p in report.pages if p.hash == project_hash)
        assert problems == [], link
        page.close()
    assert drawn == len(report.charts)


def test_answers_filter_by_reason(report, browser):
    page = browser.new_page()
    plugin = next(p for p in report.pages if p.name == "Form Builder Pro")
    assert _open(page, Path(plugin.html_path)) == []
    rows = page.query_selector_all("#answers-table tbody tr")
    assert len(rows) == plugin.answers > 0
    assert page.is_visible("#reason-filter")
    options = page.eval_on_selector_all(
        "#reason-filter option", "options => options.map(o => [o.value, o.textContent])"
    )
    reasons = [value for value, _ in options if value]
    assert len(reasons) >= 2
    for reason in reasons:
        page.select_option("#reason-filter", reason)
        visible = page.eval_on_selector_all(
            "#answers-table tbody tr", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.reason)"
        )
        label = next(text for value, text in options if value == reason)
        assert visible and set(visible) == {reason}
        assert label.endswith(f"({len(visible)})")
        assert page.inner_text("#answers-shown") == f"{len(visible)} shown"
    page.select_option("#reason-filter", "")
    assert page.eval_on_selector_all(
        "#answers-table tbody tr", "rows => rows.filter(r => !r.hidden).length"
    ) == len(rows)


def test_pages_are_usable_without_javascript(report, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    plugin = next(p for p in report.pages if p.name == "Form Builder Pro")
    page.goto(Path(plugin.html_path).as_uri(), wait_until="load")
    assert page.is_visible("#headline-deactivations")
    assert len(page.query_selector_all("#answers-table tbody tr")) == plugin.answers
    assert page.is_visible("#answers-table tbody tr >> nth=0")
    assert not page.is_visible("#reason-filter"), "the filter shows only where it works"
    page.goto((Path(report.html_path).parent / INDEX_FILE).as_uri(), wait_until="load")
    assert len(page.query_selector_all("#projects tbody tr")) == len(report.pages)
    context.close()
