"""The demo's notification pass: starts its own mail sink when none listens, and says where mails are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deactivation.generator import DEMO_PROJECTS
from deactivation.hours import hour_floor
from deactivation.mongo import free_port
from deactivation.projects import upsert_project
from notifications.demo import demo_pass


def test_demo_pass_starts_a_sink_and_reports_mails_by_kind(settings, mongo_db, helpers):
    for project in DEMO_PROJECTS:
        upsert_project(mongo_db, project)
    hour = hour_floor(datetime.now(UTC)) - timedelta(hours=1)
    seo = DEMO_PROJECTS[1].hash
    rows = [
        helpers.deactivation_row(
            f"d{i}", seo, hour + timedelta(minutes=i), site_url=f"https://s{i}.example.com"
        )
        for i in range(3)
    ]
    helpers.load_rows(settings, mongo_db, rows, loaded_at=hour + timedelta(hours=1))
    local = settings.model_copy(update={"SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})

    result = demo_pass(local)

    assert result["sent"]["forward"] == 3 and result["failed"] == 0
    assert result["skipped"]["empty_digest"] == 1  # Form Builder Pro's daily digest: nothing to say
    assert result["smtp"].startswith("started a mail sink")
    assert result["mail_dir"] == str(settings.DATA_DIR / "mail") and result["eml_files"] == 3
    again = demo_pass(local)
    assert sum(again["sent"].values()) == 0 and again["eml_files"] == 3
