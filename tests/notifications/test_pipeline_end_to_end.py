"""Generator → real pipeline → `deact notify run` → real SMTP server and provider contract server."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
from deactivation.hours import hour_floor
from deactivation.mongo import MAIL_OUTBOX, SITES
from deactivation.projects import AutoReply, NotificationSettings, upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.warehouse import open_warehouse

pipeline = pytest.importorskip("beam.pipeline", reason="the Beam pipeline (beam/) is not importable")

# Recent hours, so that `deact notify run` (the real clock) treats them as new deactivations.
START = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
HOURS = [START, START + timedelta(hours=1)]
TEAM = ["team@example.org"]
REPLY = AutoReply(subject="About {{ project_name }}", body="Hi {{ first_name }}, sorry it did not work.")


def _notify_run(settings) -> dict:
    """`deact notify run` as a user runs it; its last line is the JSON summary."""
    environment = {
        **settings.store_environment(),
        "SMTP_URL": settings.SMTP_URL,
        "DASHBOARD_URL": settings.DASHBOARD_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "MAILCHIMP_API_KEY": settings.MAILCHIMP_API_KEY,
        "NOTIFY_PROVIDER_BASE_URLS": json.dumps(settings.NOTIFY_PROVIDER_BASE_URLS),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "deact", "notify", "run"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_generated_deactivations_are_forwarded_answered_and_synced_once(
    provider_settings, mongo_db, mail_sink, contract_server, helpers
):
    plugin, other, theme = DEMO_PROJECTS
    settings = provider_settings
    notifications = NotificationSettings(forward_to=TEAM, auto_replies={"is-not-working": REPLY})
    upsert_project(mongo_db, plugin.model_copy(update={"notifications": notifications}))
    upsert_project(mongo_db, other)
    upsert_project(mongo_db, theme)
    generated = generate_events(seed=7, start_hour=START, hours=len(HOURS), events_per_hour=40)
    write_to_raw_store(open_raw_store(settings), generated.envelopes)
    pipeline.run_pipeline(settings, HOURS)
    rows = open_warehouse(settings).query(
        "SELECT event_id, site_url, reason_id FROM deactivations WHERE project_hash = @p", {"p": plugin.hash}
    )
    assert len(rows) > 10

    summary = _notify_run(settings)

    messages = helpers.by_kind(helpers.sink_messages(mail_sink))
    assert summary["sent"]["forward"] == len(rows) == len(messages["forward"])
    replied_sites = set(rows[rows["reason_id"] == "is-not-working"]["site_url"])
    expected = {
        mongo_db[SITES].find_one({"_id": f"{plugin.hash}|{site}"})["admin_email"] for site in replied_sites
    }
    assert {m["To"] for m in messages["auto_reply"]} == expected and expected
    requests = mongo_db[MAIL_OUTBOX].count_documents({})
    assert requests > 0 and summary["sent"]["list_sync"] == requests
    assert contract_server.violations == []

    again = _notify_run(settings)
    assert sum(again["sent"].values()) == 0
