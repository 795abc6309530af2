"""The JSON API against the generator's own record: filters, keyset paging, access and personal data."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from urllib.parse import quote

import pytest

from deactivation.api_keys import list_keys, revoke_key
from deactivation.mongo import get_database

from .conftest import PLUGIN, THEME, bearer

PERSONAL = {"admin_email", "first_name", "last_name"}


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def site_name(site_url: str) -> str:
    """The generator names site-<project>-<NNN>.example.com "Site N"."""
    number = re.search(r"-(\d{3})\.example", site_url).group(1)
    return f"Site {int(number)}"


def page_through(client, key: str, project: str, **params) -> list[dict]:
    """Every item of the list, following next_cursor to the end."""
    items, cursor = [], None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(
            f"/api/v1/projects/{project}/deactivations", query_string=query, headers=bearer(key)
        )
        assert response.status_code == 200, response.json
        items += response.json["items"]
        cursor = response.json["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


FILTER_CASES = {
    "no filter": ({}, lambda e: True),
    "from": ({"from": "2026-11-21"}, lambda e: e.received_at.date() >= date(2026, 11, 21)),
    "to": ({"to": "2026-11-21"}, lambda e: e.received_at.date() <= date(2026, 11, 21)),
    "one day": (
        {"from": "2026-11-21", "to": "2026-11-21"},
        lambda e: e.received_at.date() == date(2026, 11, 21),
    ),
    "reason": ({"reason": "not-have-that-feature"}, lambda e: e.reason_id == "not-have-that-feature"),
    "custom reason": ({"reason": "too-expensive"}, lambda e: e.reason_id == "too-expensive"),
    "version": ({"version": "2.3.1"}, lambda e: e.project_version == "2.3.1"),
    "wp": ({"wp": "6.5"}, lambda e: major_minor(e.wp_version) == "6.5"),
    "php": ({"php": "8.2"}, lambda e: major_minor(e.php_version) == "8.2"),
    "locale": ({"locale": "de_DE"}, lambda e: e.locale == "de_DE"),
    "q in url": ({"q": "-0-00"}, lambda e: "-0-00" in e.site_url),
    "q in name": ({"q": "site 12"}, lambda e: site_name(e.site_url).lower().startswith("site 12")),
    "has text": ({"has_text": "true"}, lambda e: e.reason_info.strip() != ""),
    "no text": ({"has_text": "false"}, lambda e: e.reason_info.strip() == ""),
    "combined": (
        {"reason": "none", "from": "2026-11-21", "php": "8.1"},
        lambda e: (
            e.reason_id == "none"
            and e.received_at.date() >= date(2026, 11, 21)
            and major_minor(e.php_version) == "8.1"
        ),
    ),
}


@pytest.mark.parametrize("case", FILTER_CASES)
def test_each_filter_returns_exactly_the_matching_latest_deactivations(app, demo, keys, case):
    params, matches = FILTER_CASES[case]
    expected = {e.event_id for e in demo.latest_per_site(PLUGIN) if matches(e)}
    assert expected, f"the demo data has nothing for {case}: the test would prove nothing"
    items = page_through(app.test_client(), keys["read"], PLUGIN, limit=37, **params)
    assert len(items) == len(expected)
    assert {item["event_id"] for item in items} == expected


def test_paging_to_the_end_yields_each_site_once_newest_first(app, demo, keys):
    items = page_through(app.test_client(), keys["read"], PLUGIN, limit=7)
    sites = [item["site_url"] for item in items]
    assert len(sites) == len(set(sites)) == len(demo.latest_per_site(PLUGIN))
    times = [item["received_at"] for item in items]
    assert times == sorted(times, reverse=True)


def test_a_site_inserted_while_paging_neither_repeats_nor_hides_another(app, demo, keys):
    client = app.test_client()
    first = client.get(f"/api/v1/projects/{PLUGIN}/deactivations?limit=10", headers=bearer(keys["read"])).json
    database = get_database(demo.settings)
    newest = database["deactivations"].find_one({"project_hash": PLUGIN}, sort=[("received_at", -1)])
    inserted = {**newest, "_id": f"{PLUGIN}|https://late.example.com", "site_url": "https://late.example.com"}
    inserted["event_id"] = "ffffffff-0000-7000-8000-000000000000"
    database["deactivations"].insert_one(inserted)
    try:
        rest = page_through(client, keys["read"], PLUGIN, limit=10, cursor=first["next_cursor"])
    finally:
        database["deactivations"].delete_one({"_id": inserted["_id"]})
    seen = [item["site_url"] for item in first["items"] + rest]
    assert len(seen) == len(set(seen)) == len(demo.latest_per_site(PLUGIN))


def test_items_have_every_documented_field_and_no_personal_data_for_a_read_key(app, keys):
    client = app.test_client()
    read = client.get(f"/api/v1/projects/{PLUGIN}/deactivations?limit=5", headers=bearer(keys["read"])).json
    personal = client.get(
        f"/api/v1/projects/{PLUGIN}/deactivations?limit=5", headers=bearer(keys["personal"])
    ).json
    fields = {
        "event_id", "site_url", "site_name", "reason_id", "reason_label", "reason_info", "project_version",
        "wp_version", "php_version", "locale", "received_at",
    }  # fmt: skip
    for item in read["items"]:
        assert set(item) == fields
        assert item["site_name"] == site_name(item["site_url"])
    for item in personal["items"]:
        assert set(item) == fields | PERSONAL
        assert item["admin_email"].endswith(item["site_url"].removeprefix("https://"))


def test_a_read_key_never_sees_personal_data_in_the_site_or_the_csv(app, demo, keys):
    client = app.test_client()
    site_url = demo.latest_per_site(PLUGIN)[0].site_url
    read = client.get(
        f"/api/v1/projects/{PLUGIN}/sites/{quote(site_url, safe='')}", headers=bearer(keys["read"])
    )
    assert read.status_code == 200
    assert not PERSONAL & set(read.json["latest"])
    assert "admin@" not in read.get_data(as_text=True)
    personal = client.get(
        f"/api/v1/projects/{PLUGIN}/sites/{quote(site_url, safe='')}", headers=bearer(keys["personal"])
    )
    assert personal.json["latest"]["admin_email"].startswith("admin@")

    read_csv = client.get(f"/api/v1/projects/{PLUGIN}/deactivations.csv", headers=bearer(keys["read"]))
    header = next(csv.reader(io.StringIO(read_csv.get_data(as_text=True))))
    assert not PERSONAL & set(header)
    assert "admin@" not in read_csv.get_data(as_text=True)
    personal_csv = client.get(
        f"/api/v1/projects/{PLUGIN}/deactivations.csv", headers=bearer(keys["personal"])
    )
    assert set(next(csv.reader(io.StringIO(personal_csv.get_data(as_text=True))))) >= PERSONAL


def test_the_csv_holds_every_deactivation_in_history_for_the_filters(app, demo, keys):
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/deactivations.csv",
        query_string={"from": "2026-11-21", "reason": "is-not-working"},
        headers=bearer(keys["read"]),
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    expected = {
        e.event_id
        for e in demo.history(PLUGIN)
        if e.reason_id == "is-not-working" and e.received_at.date() >= date(2026, 11, 21)
    }
    assert len(rows) == len(expected) and {row["event_id"] for row in rows} == expected
    assert len(expected) > len({e.site_url for e in demo.history(PLUGIN) if e.event_id in expected}) - 1
    assert [row["received_at"] for row in rows] == sorted((row["received_at"] for row in rows), reverse=True)


def test_the_site_history_is_the_whole_history_newest_first(app, demo, keys):
    counts: dict[str, int] = {}
    for event in demo.history(PLUGIN):
        counts[event.site_url] = counts.get(event.site_url, 0) + 1
    site_url = max(counts, key=counts.get)
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/sites/{quote(site_url, safe='')}", headers=bearer(keys["read"])
    )
    history = response.json["history"]
    assert len(history) == counts[site_url] > 1
    assert [row["received_at"] for row in history] == sorted(
        (r["received_at"] for r in history), reverse=True
    )
    assert response.json["latest"]["site_url"] == site_url


def test_the_summary_matches_the_record_and_compares_with_the_previous_period(app, demo, keys):
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/summary?from=2026-11-22&to=2026-11-22", headers=bearer(keys["read"])
    )
    summary = response.json
    on = [e for e in demo.history(PLUGIN) if e.received_at.date() == date(2026, 11, 22)]
    before = [e for e in demo.history(PLUGIN) if e.received_at.date() == date(2026, 11, 21)]
    assert summary["total"] == len(on)
    assert summary["previous"]["total"] == len(before)
    assert summary["change"] == pytest.approx((len(on) - len(before)) / len(before), abs=1e-4)
    assert summary["with_text"] == sum(1 for e in on if e.reason_info.strip())
    top = max({e.reason_id for e in on}, key=lambda r: (sum(1 for e in on if e.reason_id == r), r))
    assert summary["top_reasons"][0]["deactivations"] == sum(1 for e in on if e.reason_id == top)


def test_charts_are_drawn_from_published_aggregates(app, keys):
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/charts?from=2026-11-20&to=2026-11-22", headers=bearer(keys["read"])
    )
    charts = response.json["items"]
    assert charts
    drawn = [chart for chart in charts if chart["note"] is None]
    assert drawn, "no chart could be drawn from the aggregates"
    for chart in drawn:
        assert chart["figure"]["data"] is not None and chart["rows"], chart["id"]
    one = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/charts/{drawn[0]['id']}?from=2026-11-20&to=2026-11-22",
        headers=bearer(keys["read"]),
    )
    assert one.json["rows"] == drawn[0]["rows"]


def _every_endpoint(project: str, site: str = "https%3A%2F%2Fsite-2-001.example.com") -> list[str]:
    return [
        f"/api/v1/projects/{project}/deactivations",
        f"/api/v1/projects/{project}/deactivations.csv",
        f"/api/v1/projects/{project}/sites/{site}",
        f"/api/v1/projects/{project}/summary",
        f"/api/v1/projects/{project}/charts",
        f"/api/v1/projects/{project}/charts/wordpress_versions",  # drawn for plugins and themes
    ]


def test_a_key_for_one_project_gets_404_on_every_endpoint_of_another(app, demo, keys):
    client = app.test_client()
    theme_site = quote(demo.latest_per_site(THEME)[0].site_url, safe="")
    for path in _every_endpoint(THEME, theme_site):
        own = client.get(path, headers=bearer(keys["theme"]))
        assert own.status_code == 200, path
        other = client.get(path, headers=bearer(keys["read"]))
        assert other.status_code == 404, path
        assert other.json == {"code": "not_found", "message": "no such project", "details": {}}
    unknown = client.get(
        "/api/v1/projects/00000000-0000-4000-8000-000000000000/summary", headers=bearer(keys["read"])
    )
    assert unknown.json == other.json  # a project that does not exist looks exactly the same
    projects = client.get("/api/v1/projects", headers=bearer(keys["read"])).json["items"]
    assert [p["hash"] for p in projects] == [PLUGIN]
    every = client.get("/api/v1/projects", headers=bearer(keys["operator"])).json["items"]
    assert len(every) == 3


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
    ids=["missing", "malformed", "basic", "huge"],
)
def test_a_missing_or_wrong_key_is_401_with_the_error_envelope(app, headers):
    for path in ["/api/v1/projects", *_every_endpoint(PLUGIN)]:
        response = app.test_client().get(path, headers=headers)
        assert response.status_code == 401, path
        assert (
            set(response.json) == {"code", "message", "details"} and response.json["code"] == "unauthorized"
        )


def test_a_wrong_secret_for_a_real_key_id_is_401(app, keys):
    key_id = keys["read"].split("_")[1]
    forged = f"dk_{key_id}_{'A' * 43}"
    assert app.test_client().get("/api/v1/projects", headers=bearer(forged)).status_code == 401


def test_a_revoked_key_stops_at_once(app, demo):
    from deactivation.api_keys import create_key

    database = get_database(demo.settings)
    key, text = create_key(database, demo.settings, project_hash=PLUGIN, scope="read", name="short-lived")
    client = app.test_client()
    assert client.get("/api/v1/projects", headers=bearer(text)).status_code == 200
    revoke_key(database, key.key_id)
    response = client.get(f"/api/v1/projects/{PLUGIN}/deactivations", headers=bearer(text))
    assert response.status_code == 401
    assert any(k.key_id == key.key_id and k.revoked_at for k in list_keys(database, PLUGIN))


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("reason=made-up", "reason"),
        ("from=2026-13-01", "from"),
        ("from=yesterday", "from"),
        ("to=2026-11-01&from=2026-11-02", "to"),
        ("cursor=garbage", "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("wp=6", "wp"),
        ("php=8.2.1", "php"),
        ("locale=%3Cscript%3E", "locale"),
        ("has_text=maybe", "has_text"),
        ("q=" + "a" * 101, "q"),
        ("q=a%00b", "q"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(app, keys, query, parameter):
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/deactivations?{query}", headers=bearer(keys["read"])
    )
    assert response.status_code == 400
    assert response.json["code"] == "bad_parameter"
    assert response.json["details"] == {"parameter": parameter}


def test_a_cursor_is_refused_with_other_filters(app, keys):
    client = app.test_client()
    first = client.get(f"/api/v1/projects/{PLUGIN}/deactivations?limit=2", headers=bearer(keys["read"])).json
    response = client.get(
        f"/api/v1/projects/{PLUGIN}/deactivations",
        query_string={"limit": 2, "reason": "other", "cursor": first["next_cursor"]},
        headers=bearer(keys["read"]),
    )
    assert response.status_code == 400 and response.json["details"] == {"parameter": "cursor"}


@pytest.mark.parametrize(
    ("query", "parameter"), [("from=2020-01-01&to=2026-01-01", "from"), ("to=2026-02-30", "to")]
)
def test_a_bad_period_is_400(app, keys, query, parameter):
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/summary?{query}", headers=bearer(keys["read"])
    )
    assert response.status_code == 400 and response.json["details"] == {"parameter": parameter}


def test_unknown_site_and_chart_are_404(app, keys):
    client = app.test_client()
    assert (
        client.get(
            f"/api/v1/projects/{PLUGIN}/sites/https%3A%2F%2Fnowhere.example", headers=bearer(keys["read"])
        ).status_code
        == 404
    )
    assert (
        client.get(
            f"/api/v1/projects/{PLUGIN}/charts/no_such_chart", headers=bearer(keys["read"])
        ).status_code
        == 404
    )


def test_the_rate_limit_answers_429_with_retry_after_per_key(demo, keys):
    from dashboard_app import create_app

    limited = create_app(demo.settings.model_copy(update={"DASHBOARD_RATE_LIMIT": "3 per minute"}))
    client = limited.test_client()
    statuses = [client.get("/api/v1/projects", headers=bearer(keys["read"])).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/projects", headers=bearer(keys["read"]))
    assert refused.json["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/api/v1/projects", headers=bearer(keys["personal"])).status_code == 200  # per key


def test_responses_carry_the_security_headers(app, keys):
    response = app.test_client().get("/api/v1/projects", headers=bearer(keys["read"]))
    policy = response.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("period", [("2026-11-20", "2026-11-21"), ("2026-11-21", "2026-11-30")])
def test_a_chart_gives_the_same_rows_from_published_aggregates_as_from_the_warehouse(app, demo, keys, period):
    """One chart definition, two sources: the dashboard's in-process DuckDB over the MongoDB copies of
    the aggregates must answer exactly what the chart's SQL answers on the warehouse."""
    import json
    from datetime import date as day

    from deactivation.warehouse import open_warehouse

    start, end = period
    warehouse = open_warehouse(demo.settings)
    response = app.test_client().get(
        f"/api/v1/projects/{PLUGIN}/charts?from={start}&to={end}", headers=bearer(keys["read"])
    )
    compared = 0
    for view in app.extensions["dashboard"].charts():
        [served] = [chart for chart in response.json["items"] if chart["id"] == view.id] or [None]
        if served is None or served["note"] is not None:
            continue
        frame = warehouse.query(
            view.chart.sql_text(),
            {
                "project_hash": PLUGIN,
                "start_day": day.fromisoformat(start),
                "end_day": day.fromisoformat(end),
            },
        )
        expected = json.loads(frame.to_json(orient="records", date_format="iso"))
        assert served["rows"] == expected, view.id
        compared += 1
    assert compared >= 5
