"""The pages with Flask's test client: login with CSRF, the session cookie, logout, the list without
JavaScript (filters, next and previous pages, CSV link), the overview, the projects page."""

from __future__ import annotations

import re
from html import unescape

import pytest

from deactivation.api_keys import create_key, revoke_key
from deactivation.mongo import get_database

from .conftest import PLUGIN, THEME


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def log_in(client, key: str):
    form = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"key": key, "csrf_token": csrf_token(form)})


def links(html: str, rel: str) -> list[str]:
    return [unescape(href) for href in re.findall(rf'<a rel="{rel}" href="([^"]+)"', html)]


def event_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-event="([^"]+)"', html)


def test_pages_need_a_login(app):
    client = app.test_client()
    for path in ("/projects", f"/projects/{PLUGIN}", f"/projects/{PLUGIN}/deactivations"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_login_sets_a_strict_httponly_session_cookie_holding_no_key(app, keys):
    client = app.test_client()
    response = log_in(client, keys["read"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/projects")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert keys["read"] not in cookie and keys["read"].split("_", 2)[2] not in cookie
    assert client.get("/projects").status_code == 200


def test_a_login_without_the_csrf_token_is_refused(app, keys):
    client = app.test_client()
    response = client.post("/login", data={"key": keys["read"]})
    assert response.status_code == 400
    assert client.get("/projects").status_code == 302  # not logged in


def test_a_wrong_key_does_not_log_in(app):
    client = app.test_client()
    response = log_in(client, "dk_000000000000_" + "A" * 43)
    assert response.status_code == 401
    assert "not valid" in response.get_data(as_text=True)
    assert client.get("/projects").status_code == 302


def test_logout_needs_the_csrf_token_and_ends_the_session(app, keys):
    client = app.test_client()
    log_in(client, keys["read"])
    page = client.get("/projects").get_data(as_text=True)
    assert client.post("/logout").status_code == 400
    assert client.get("/projects").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/projects").status_code == 302


def test_a_key_revoked_after_login_ends_the_browser_session(app, demo):
    database = get_database(demo.settings)
    key, text = create_key(database, demo.settings, project_hash=PLUGIN, scope="read")
    client = app.test_client()
    log_in(client, text)
    assert client.get(f"/projects/{PLUGIN}/deactivations").status_code == 200
    revoke_key(database, key.key_id)
    assert client.get(f"/projects/{PLUGIN}/deactivations").status_code == 302


def test_a_bearer_key_does_not_open_the_pages_of_another_project(app, keys):
    client = app.test_client()
    log_in(client, keys["read"])
    assert client.get(f"/projects/{THEME}").status_code == 404
    assert client.get(f"/projects/{THEME}/deactivations").status_code == 404
    assert client.get(f"/projects/{THEME}/deactivations.csv").status_code == 404


def test_the_list_pages_forward_and_back_without_javascript(app, demo, keys):
    client = app.test_client()
    log_in(client, keys["personal"])
    first = client.get(f"/projects/{PLUGIN}/deactivations?reason=other&limit=5").get_data(as_text=True)
    expected = sorted(
        (e for e in demo.latest_per_site(PLUGIN) if e.reason_id == "other"),
        key=lambda e: e.received_at,
        reverse=True,
    )
    assert event_ids(first) == [e.event_id for e in expected[:5]]
    assert links(first, "prev") == []
    second = client.get(links(first, "next")[0]).get_data(as_text=True)
    assert event_ids(second) == [e.event_id for e in expected[5:10]]
    back = client.get(links(second, "prev")[0]).get_data(as_text=True)
    assert event_ids(back) == event_ids(first)
    assert "admin@" in first  # a personal key sees the admin column
    csv_link = re.search(r'href="([^"]+deactivations\.csv[^"]*)"', first).group(1)
    assert "reason=other" in unescape(csv_link)
    download = client.get(unescape(csv_link))
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "key" not in unescape(csv_link).lower().split("?")[1]


def test_the_list_links_to_each_site_history(app, keys):
    client = app.test_client()
    log_in(client, keys["read"])
    page = client.get(f"/projects/{PLUGIN}/deactivations?limit=3").get_data(as_text=True)
    site_link = unescape(re.search(r'href="(/projects/[^"]+/sites/[^"]+)"', page).group(1))
    assert "https%3A%2F%2F" in site_link
    site = client.get(site_link)
    assert site.status_code == 200 and "Deactivation history" in site.get_data(as_text=True)
    assert "admin@" not in site.get_data(as_text=True)  # read key


@pytest.mark.parametrize("period", ["7", "30", "90"])
def test_the_overview_shows_kpis_and_every_chart(app, keys, period):
    client = app.test_client()
    log_in(client, keys["read"])
    response = client.get(f"/projects/{PLUGIN}?period={period}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-kpi="total"' in html and 'data-kpi="free-text"' in html
    charts = app.extensions["dashboard"].charts()
    plugin_charts = [c for c in charts if c.chart.applies_to("plugin")]
    assert len(re.findall(r'<figure class="chart', html)) == len(plugin_charts)
    assert "<script>" not in html  # no inline script (the CSP would block it)
    assert "Data quality" not in html  # operators only


def test_the_overview_of_a_custom_period_and_the_operator_quality_panel(app, keys):
    client = app.test_client()
    log_in(client, keys["operator"])
    html = client.get(f"/projects/{PLUGIN}?period=custom&from=2026-11-20&to=2026-11-22").get_data(
        as_text=True
    )
    assert "Data quality" in html and "figure-data-quality" in html
    bad = client.get(f"/projects/{PLUGIN}?period=custom&from=2026-11-22&to=2026-11-20")
    assert bad.status_code == 400


def test_the_projects_page_lists_what_an_operator_key_covers(app, keys):
    client = app.test_client()
    log_in(client, keys["operator"])
    html = client.get("/projects").get_data(as_text=True)
    assert all(f"/projects/{project}" in html for project in (PLUGIN, THEME))


def test_plotly_is_served_locally_and_the_api_docs_render(app):
    client = app.test_client()
    script = client.get("/static/vendor/plotly.min.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    docs = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/projects/{project_hash}/deactivations" in docs


REVIEW_MODULE = '''"""A chart in review whose figure carries markup from the data."""

import plotly.graph_objects as go

from reports.registry import Chart


def figure(df):
    return go.Figure(go.Bar(x=df["reason_label"], y=df["deactivations"]), layout={"title": "</script><b>x"})


CHART = Chart(
    id="review_probe",
    title="Probe in review",
    description="Deactivations by reason.",
    sql="chart_review_probe.sql",
    figure=figure,
)
'''
REVIEW_SQL = """SELECT reason_label, SUM(deactivations) AS deactivations FROM daily_reason_counts
WHERE project_hash = @project_hash AND day BETWEEN @start_day AND @end_day GROUP BY reason_label"""


def test_a_chart_in_review_is_drawn_marked_and_its_figure_cannot_break_out_of_its_data_block(app, keys):
    review_dir = app.extensions["dashboard"].review_dir
    module, sql = review_dir / "review_probe.py", review_dir / "chart_review_probe.sql"
    module.write_text(REVIEW_MODULE)
    sql.write_text(REVIEW_SQL)
    try:
        client = app.test_client()
        log_in(client, keys["read"])
        html = client.get(f"/projects/{PLUGIN}?period=custom&from=2026-11-20&to=2026-11-22").get_data(
            as_text=True
        )
        probe = html[html.index('data-chart="review_probe"') :]
        assert "In review: not promoted" in probe[:600]
        assert 'class="chart in-review"' in html
        assert "</script><b>" not in html and "\\u003c/script\\u003e" in html
        api = client.get(
            f"/api/v1/projects/{PLUGIN}/charts/review_probe",
            headers={"Authorization": f"Bearer {keys['read']}"},
        )
        assert api.json["in_review"] is True and api.json["rows"]
    finally:
        module.unlink()
        sql.unlink()
