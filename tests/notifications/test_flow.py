"""The Prefect flow's task runs one pass with the process settings; its artifact says what happened."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from deactivation.mongo import NOTIFICATIONS
from deactivation.projects import NotificationSettings, Project, upsert_project
from deactivation.settings import get_settings
from flows.notifications_flow import notification_pass_task, notifications_markdown
from notifications import outbox


def test_the_task_sends_with_the_environment_settings(
    notify_settings, mongo_db, mail_sink, helpers, monkeypatch
):
    for name, value in {**notify_settings.store_environment(), "SMTP_URL": notify_settings.SMTP_URL}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        project = Project(
            hash="6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c",
            name="Form Builder Pro",
            notifications=NotificationSettings(forward_to=["team@example.org"]),
        )
        upsert_project(mongo_db, project)
        payload = {
            "site_url": "https://a.example.com",
            "received_at": "2026-11-28T10:00:00+00:00",
            "reason_id": "other",
            "reason_label": "Other",
            "reason_info": "",
            "project_version": "1.0",
            "wp_version": "",
            "php_version": "",
        }
        document = {"_id": "forward:f1", "kind": "forward", "project_hash": project.hash, "payload": payload}
        outbox.enqueue(mongo_db[NOTIFICATIONS], [document], datetime(2026, 11, 28, tzinfo=UTC))
        summary = notification_pass_task.fn()
    finally:
        get_settings.cache_clear()
    assert summary["sent"]["forward"] == 1
    assert len(helpers.sink_messages(mail_sink)) == 1


def test_the_artifact_lists_sent_kinds_and_what_needs_an_operator():
    summary = {
        "sent": {"forward": 3, "auto_reply": 1, "digest": 0, "alert": 0, "webhook": 0, "list_sync": 5},
        "failed": 1,
        "dead": 2,
        "review": 1,
        "skipped": 4,
        "skipped_by_reason": {"suppressed": 1, "waiting_for_credentials": 3},
    }
    markdown = notifications_markdown(summary)
    assert "| forward | 3 |" in markdown and "| list_sync | 5 |" in markdown
    assert "dead: 2" in markdown and "to review (maybe sent): 1" in markdown
    assert "deact notify retry ID" in markdown
    assert "suppressed 1, waiting_for_credentials 3" in markdown


def test_the_deployment_runs_every_five_minutes_utc():
    text = (Path(__file__).resolve().parents[2] / "prefect.yaml").read_text()
    deployments = {d["name"]: d for d in yaml.safe_load(text)["deployments"]}
    deployment = deployments["deactivation-notifications"]
    assert deployment["schedules"] == [{"cron": "*/5 * * * *", "timezone": "UTC"}]
    assert deployment["entrypoint"] == "flows/notifications_flow.py:deactivation_notifications"
