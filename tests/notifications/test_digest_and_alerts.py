"""Digests carry exactly the warehouse's numbers for the period (generator → real pipeline →
warehouse → digest mail), and spike alerts go out once per incident with what spiked named."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
from deactivation.mongo import NOTIFICATIONS
from deactivation.projects import NotificationSettings, upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.redaction import mask_free_text
from deactivation.warehouse import open_warehouse
from notifications.digests import last_complete_period
from notifications.runner import run_once

pipeline = pytest.importorskip(
    "beam.pipeline", reason="the Beam pipeline (beam/pipeline.py) is not importable"
)

ZONE = "Europe/Oslo"  # UTC+1 in November: the local day is not the UTC day
FIRST_HOUR = datetime(2026, 11, 20, 23, tzinfo=UTC)  # local midnight, 21 November
HOURS = 48  # local 21 and 22 November
NOW = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)


def _expected(rows: list[dict], start: datetime, end: datetime, previous_start: datetime) -> dict:
    """The digest's numbers from the warehouse's rows, counted in plain Python."""
    current = [r for r in rows if start <= r["received_at"] < end]
    previous = [r for r in rows if previous_start <= r["received_at"] < start]
    reasons = Counter(r["reason_id"] for r in current)
    labels = {r["reason_id"]: r["reason_label"] for r in current}
    top = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:5]
    now_by_version = Counter(r["project_version"] or "unknown" for r in current)
    before_by_version = Counter(r["project_version"] or "unknown" for r in previous)
    movers = [
        {
            "project_version": version,
            "deactivations": now_by_version[version],
            "previous": before_by_version[version],
            "change": now_by_version[version] - before_by_version[version],
        }
        for version in set(now_by_version) | set(before_by_version)
    ]
    movers.sort(key=lambda row: (-abs(row["change"]), row["project_version"]))
    answers = Counter(r["reason_info"] for r in current if r["reason_info"] and r["reason_info"].strip())
    return {
        "deactivations": len(current),
        "previous_deactivations": len(previous),
        "top_reasons": [
            {"reason_id": rid, "reason_label": labels[rid], "deactivations": n, "share": n / len(current)}
            for rid, n in top
        ],
        "version_movers": [row for row in movers if row["change"]][:5],
        "answer_counts": answers,
    }


@pytest.mark.slow
def test_daily_digest_numbers_equal_the_warehouse_exactly(notify_settings, mongo_db, mail_sink, helpers):
    plugin = DEMO_PROJECTS[0]
    for project in DEMO_PROJECTS:
        upsert_project(mongo_db, project)
    digest = NotificationSettings(digest="daily", digest_to=["team@example.org"], timezone=ZONE)
    upsert_project(mongo_db, plugin.model_copy(update={"notifications": digest}))
    generated = generate_events(seed=14, start_hour=FIRST_HOUR, hours=HOURS, events_per_hour=8)
    write_to_raw_store(open_raw_store(notify_settings), generated.envelopes)
    pipeline.run_pipeline(notify_settings, [FIRST_HOUR + timedelta(hours=i) for i in range(HOURS)])

    summary = run_once(notify_settings, now=NOW).as_json()

    assert summary["sent"]["digest"] == 1
    period = last_complete_period("daily", ZONE, NOW)
    assert period.start == datetime(2026, 11, 22, tzinfo=ZoneInfo(ZONE))
    rows = open_warehouse(notify_settings).query(
        "SELECT * FROM deactivations WHERE project_hash = @p", {"p": plugin.hash}
    )
    records = [
        {**r, "received_at": r["received_at"].to_pydatetime(), "reason_info": r["reason_info"] or ""}
        for r in rows.to_dict("records")
    ]
    expected = _expected(records, period.start, period.end, period.previous_start)
    assert expected["deactivations"] > 50 and expected["previous_deactivations"] > 50  # a real test
    sent = mongo_db[NOTIFICATIONS].find_one({"kind": "digest"})["payload"]["digest"]
    assert sent["deactivations"] == expected["deactivations"]
    assert sent["previous_deactivations"] == expected["previous_deactivations"]
    assert sent["top_reasons"] == expected["top_reasons"]
    assert sent["version_movers"] == expected["version_movers"]
    # Notable answers: the most frequent ones of the period, masked (no e-mail or URL shown).
    most = max(expected["answer_counts"].values())
    assert mask_free_text(next(a for a, n in expected["answer_counts"].items() if n == most)) in {
        a["reason_info"] for a in sent["notable_answers"]
    }
    assert all(
        "@" not in a["reason_info"] and "https://" not in a["reason_info"] for a in sent["notable_answers"]
    )

    (message,) = helpers.by_kind(helpers.sink_messages(mail_sink))["digest"]
    text = message.get_body(("plain",)).get_content()
    assert f"{expected['deactivations']} deactivations (" in text
    assert f"vs {expected['previous_deactivations']} the day before" in text
    assert message.get_body(("html",)) is not None
    assert f"{helpers.dashboard}/projects/{plugin.hash}" in text
    # Due once: a second pass sends no second digest for the same day.
    assert run_once(notify_settings, now=NOW + timedelta(minutes=5)).as_json()["sent"]["digest"] == 0


def test_no_digest_before_the_periods_last_hour_is_loaded(notify_settings, mongo_db, helpers):
    plugin = DEMO_PROJECTS[0]
    digest = NotificationSettings(digest="daily", digest_to=["team@example.org"], timezone="UTC")
    upsert_project(mongo_db, plugin.model_copy(update={"notifications": digest}))
    rows = [helpers.deactivation_row("d1", plugin.hash, datetime(2026, 11, 22, 21, 10, tzinfo=UTC))]
    helpers.load_rows(notify_settings, mongo_db, rows, loaded_at=datetime(2026, 11, 22, 22, 5, tzinfo=UTC))
    summary = run_once(notify_settings, now=datetime(2026, 11, 23, 0, 30, tzinfo=UTC)).as_json()
    assert summary["sent"]["digest"] == 0  # 22T23 (the day's last hour) is not loaded yet


def test_a_spike_sends_one_alert_naming_the_version_then_cools_down(
    notify_settings, mongo_db, mail_sink, contract_server, helpers
):
    plugin = DEMO_PROJECTS[0]
    hook = f"{contract_server.url}/hooks/{plugin.hash}"
    alerts = NotificationSettings(alerts="on", alerts_to=["oncall@example.org"], webhook_url=hook)
    upsert_project(mongo_db, plugin.model_copy(update={"notifications": alerts}))
    spike_hour = datetime(2026, 11, 27, 14, tzinfo=UTC)
    rows = []
    for week in range(1, 6):  # the same hour in the five weeks before: a handful, old version
        for i in range(3):
            at = spike_hour - timedelta(weeks=week) + timedelta(minutes=i)
            rows.append(helpers.deactivation_row(f"w{week}-{i}", plugin.hash, at, project_version="2.3.1"))
    for i in range(40):  # the release hour: 40 deactivations of 2.4.0, "Not working"
        at = spike_hour + timedelta(minutes=i)
        rows.append(helpers.deactivation_row(f"s{i}", plugin.hash, at, site_url=f"https://s{i}.example.com"))
    helpers.load_rows(notify_settings, mongo_db, rows, loaded_at=spike_hour + timedelta(hours=1, minutes=2))

    summary = run_once(notify_settings, now=spike_hour + timedelta(hours=1, minutes=5)).as_json()

    # One alert mail; webhooks: the alert, and deactivation.created for each of the 40 recent events.
    assert summary["sent"]["alert"] == 1 and summary["sent"]["webhook"] == 41
    (message,) = helpers.by_kind(helpers.sink_messages(mail_sink))["alert"]
    text = message.get_body(("plain",)).get_content()
    assert "version 2.4.0: 40 deactivations in the hour, baseline 0" in text
    assert "top reason: Not working" in text
    assert f"{helpers.dashboard}/projects/{plugin.hash}" in text
    assert contract_server.violations == []
    (delivery,) = [w for w in contract_server.webhooks if w["event"] == "alert.spike"]
    assert delivery["alert"]["hour"] == "2026-11-27T14" and delivery["alert"]["headline"] in text
    created = [w for w in contract_server.webhooks if w["event"] == "deactivation.created"]
    assert sorted(w["deactivation"]["event_id"] for w in created) == sorted(f"s{i}" for i in range(40))

    # The next hour is still high: the same incident, no second alert within the cool-down.
    more = [
        helpers.deactivation_row(f"t{i}", plugin.hash, spike_hour + timedelta(hours=1, minutes=i))
        for i in range(40)
    ]
    helpers.load_rows(notify_settings, mongo_db, more, loaded_at=spike_hour + timedelta(hours=2, minutes=2))
    later = run_once(notify_settings, now=spike_hour + timedelta(hours=2, minutes=5)).as_json()
    assert later["sent"]["alert"] == 0
    assert len([w for w in contract_server.webhooks if w["event"] == "alert.spike"]) == 1
