"""The dashboard in a real headless Chromium: log in with a key, every chart draws, filter the list
by a reason, page forward and back, download the CSV; and axe finds no serious accessibility issue."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from .conftest import PLUGIN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PERIOD = "period=custom&from=2026-11-20&to=2026-11-22"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(app):
    """The dashboard app on a loopback port, in a thread, for the browser."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(10)


@pytest.fixture
def page(server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=server, accept_downloads=True)
            page = context.new_page()
            page.problems = []
            page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
            page.on("pageerror", lambda error: page.problems.append(str(error)))
            yield page
        finally:
            browser.close()


def log_in(page, key: str) -> None:
    page.goto("/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/projects")


def rows(page) -> list[tuple[str, str]]:
    return [
        (row.get_attribute("data-event"), row.query_selector("[data-reason]").get_attribute("data-reason"))
        for row in page.query_selector_all("tr[data-event]")
    ]


def serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['id']}: {violation['help']}"
        for violation in results.response["violations"]
        if violation["impact"] in {"serious", "critical"}
    ]


def test_log_in_and_every_chart_draws_without_errors(page, keys):
    log_in(page, keys["operator"])
    page.goto(f"/projects/{PLUGIN}?{PERIOD}")
    containers = page.query_selector_all("[data-figure]")
    assert len(containers) >= 2
    page.wait_for_function(
        "document.querySelectorAll('[data-figure]').length === "
        "document.querySelectorAll('[data-figure][data-drawn=true]').length",
        timeout=60_000,
    )
    for container in containers:
        assert container.query_selector(".main-svg"), container.get_attribute("data-figure")
    assert page.query_selector(".quality .main-svg"), "the operator's data-quality panel did not draw"
    assert page.problems == []  # no script error, no CSP violation
    assert serious_violations(page) == []


def test_filter_by_reason_page_forward_and_back_and_download_the_csv(page, keys, tmp_path):
    log_in(page, keys["personal"])
    page.goto(f"/projects/{PLUGIN}/deactivations?limit=10")
    assert serious_violations(page) == []
    page.select_option("select[name=reason]", "found-better-plugin")
    page.click("fieldset button[type=submit]")
    page.wait_for_load_state()
    first = rows(page)
    assert len(first) == 10 and {reason for _, reason in first} == {"found-better-plugin"}
    page.click("a[rel=next]")
    second = rows(page)
    assert second and {reason for _, reason in second} == {"found-better-plugin"}
    assert not {event for event, _ in first} & {event for event, _ in second}
    page.click("a[rel=prev]")
    assert rows(page) == first

    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    path = tmp_path / "export.csv"
    download_info.value.save_as(path)
    with path.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert exported and {row["reason_id"] for row in exported} == {"found-better-plugin"}
    assert exported[0]["admin_email"].startswith("admin@")
    assert page.problems == []
