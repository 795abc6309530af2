"""`deact projects notify` validates before storing; unsupported providers are refused; `deact notify
list|retry` let an operator act on failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from deact.cli import main as deact
from deactivation.generator import DEMO_PROJECTS
from deactivation.mongo import NOTIFICATIONS, PROJECTS
from deactivation.projects import get_project, list_projects, upsert_project
from notifications import outbox

PROJECT = DEMO_PROJECTS[0]


@pytest.fixture
def cli(settings, mongo_db, monkeypatch):
    upsert_project(mongo_db, PROJECT)
    for where in ("deactivation.settings", "deact.commands.projects", "deact.commands.notify"):
        monkeypatch.setattr(f"{where}.get_settings", lambda: settings)
    return mongo_db


def test_notify_settings_are_validated_stored_and_listed(cli, capsys, tmp_path):
    template = tmp_path / "sorry.txt"
    template.write_text("Subject: Sorry, {{ first_name }}\n\nWe saw: {{ reason_info }}\n")
    code = deact(
        [
            "projects", "notify", "--project", PROJECT.name,
            "--forward-to", "team@example.org", "lead@example.org",
            "--auto-reply", f"is-not-working={template}",
            "--digest", "weekly", "--digest-to", "team@example.org", "--timezone", "Europe/Oslo",
            "--alerts", "on", "--alerts-to", "oncall@example.org",
            "--webhook", "https://hooks.example.org/deactivations",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "verify them with this secret: " in out
    stored = get_project(cli, PROJECT.hash).notifications
    assert stored.forward_to == ["team@example.org", "lead@example.org"]
    assert stored.auto_replies["is-not-working"].subject == "Sorry, {{ first_name }}"
    assert stored.auto_replies["is-not-working"].body.startswith("We saw: {{ reason_info }}")
    assert (stored.digest, stored.timezone, stored.alerts) == ("weekly", "Europe/Oslo", "on")

    # Options not given stay; an option given empty turns that setting off.
    assert deact(["projects", "notify", "--project", PROJECT.hash, "--forward-to"]) == 0
    stored = get_project(cli, PROJECT.hash).notifications
    assert stored.forward_to == [] and stored.digest == "weekly"

    capsys.readouterr()
    assert deact(["projects", "list"]) == 0
    assert "notify=auto-reply[is-not-working] digest weekly→1 (Europe/Oslo) alerts→1 webhook" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--forward-to", "not-an-address"], "not an e-mail address"),
        (["--digest", "daily"], "needs at least one --digest-to"),
        (["--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--alerts", "on"], "alerts need --alerts-to addresses or a --webhook URL"),
        (["--webhook", "ftp://example.org/x"], "http:// or https:// URL"),
        (["--auto-reply", "no-such-reason=TEMPLATE"], "does not have: no-such-reason"),
        (["--auto-reply", "is-not-working=/no/such/file"], "cannot read the auto-reply template"),
        (["--auto-reply", "is-not-working=BROKEN"], "unexpected"),
        (["--auto-reply", "is-not-working=NOSUBJECT"], "start with a 'Subject: ...' line"),
        ([], "nothing to change"),
    ],
)
def test_bad_notify_settings_are_refused_and_change_nothing(cli, capsys, tmp_path, arguments, message):
    good = tmp_path / "good.txt"
    good.write_text("Subject: Hello\n\nBody\n")
    (tmp_path / "broken.txt").write_text("Subject: Hello {{ name\n\nBody\n")
    (tmp_path / "nosubject.txt").write_text("Hello\nBody\n")
    files = {"TEMPLATE": good, "BROKEN": tmp_path / "broken.txt", "NOSUBJECT": tmp_path / "nosubject.txt"}
    arguments = [
        "=".join([a.split("=")[0], str(files.get(a.split("=")[1], a.split("=")[1]))]) if "=" in a else a
        for a in arguments
    ]
    before = get_project(cli, PROJECT.hash)
    assert deact(["projects", "notify", "--project", PROJECT.hash, *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert get_project(cli, PROJECT.hash) == before


@pytest.mark.parametrize("provider", ["mailpoet", "fluentcrm"])
def test_a_provider_without_an_adapter_is_refused(cli, capsys, provider):
    code = deact(
        ["projects", "add", "--hash", "11111111-2222-4333-8444-555555555555", "--name", "X",
         "--mail", f"{provider}:list-1"]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert (
        f"mail provider {provider!r} is not supported" in error and "supported: webhook, mailchimp" in error
    )


def test_operator_lists_dead_notifications_and_retries_one(cli, capsys):
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    document = {"_id": "forward:e1", "kind": "forward", "project_hash": PROJECT.hash, "payload": {}}
    outbox.enqueue(cli[NOTIFICATIONS], [document], now)
    cli[NOTIFICATIONS].update_one(
        {"_id": "forward:e1"}, {"$set": {"status": "dead", "attempts": 6, "last_error": "550 for [email]"}}
    )

    assert deact(["notify", "list", "--status", "dead"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["id"] for row in listed["notifications"]] == ["forward:e1"]
    assert listed["notifications"][0]["last_error"] == "550 for [email]"

    assert deact(["notify", "retry", "forward:e1"]) == 0
    assert cli[NOTIFICATIONS].find_one({"_id": "forward:e1"})["status"] == "pending"
    assert deact(["notify", "retry", "forward:e1"]) == 2
    assert "only failed, dead, review can be retried" in capsys.readouterr().err
    assert deact(["notify", "retry", "forward:nope"]) == 2


def test_projects_stored_before_notifications_or_with_unsupported_providers_still_load(mongo_db):
    mongo_db[PROJECTS].insert_one(
        {
            "hash": "11111111-2222-4333-8444-555555555555",
            "name": "Old",
            "kind": "plugin",
            "custom_reasons": {},
            "custom_fields": [],
            "mail_integrations": [{"provider": "mailpoet", "list_id": "3"}],
            "contact_policy": "keep",
            "created_at": "2026-01-01T00:00:00+00:00",
        }
    )
    (old,) = list_projects(mongo_db)
    assert old.notifications.forward_to == [] and old.notifications.digest == "off"
    assert old.mail_integrations[0].provider == "mailpoet"
