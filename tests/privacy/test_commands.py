"""`deact export-site` returns everything held about a site; `deact erase` from the command line:
JSON summary last, dry run first, one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deactivation.erasure import ERASURE_AUDIT
from deactivation.mongo import connect
from privacy.export import export_site

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(world, monkeypatch):
    for name, value in world.settings.store_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_KEY", world.settings.SECRET_KEY)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "deact", *args], capture_output=True, text=True, timeout=300
        )

    return run


def test_export_site_returns_everything_held_about_the_site(world, snapshots):
    exported = export_site(world.settings, snapshots.form_builder, world.site + "/")

    raw = exported["raw_store"]
    events = {item["envelope"]["event_id"] for item in raw["deactivate"] if "envelope" in item}
    assert world.site_event_ids < events and len(events) == len(world.site_event_ids) + 1  # + its dead letter
    assert [item for item in raw["deactivate"] if "text" in item], "the torn line, as text"
    assert len(raw["track"]) == len(raw["tracking-skipped"]) == len(exported["rejected"]) == 1
    assert {row["event_id"] for row in exported["warehouse"]["deactivations"]} == world.site_event_ids
    assert {row["site_url"] for row in exported["warehouse"]["sites"]} == {world.site}
    assert len(exported["warehouse"]["deactivation_errors"]) == 1  # the torn line's has its URL masked
    assert [d["admin_email"] for d in exported["mongo"]["sites"]] == [world.email]
    assert len(exported["mongo"]["mail_outbox"]) == len(world.site_event_ids)
    assert len(exported["mongo"]["notifications"]) == 1
    assert exported["mail_suppressed"] == {world.email: True} and exported["erased"] is False
    # Nothing of the look-alikes (longer URLs, the same URL in another project).
    urls = {item["envelope"]["body"]["url"] for route in raw.values() for item in route if "envelope" in item}
    assert urls == {world.site}
    hashes = {
        item["envelope"]["body"]["hash"] for route in raw.values() for item in route if "envelope" in item
    }
    assert hashes == {snapshots.form_builder}


def test_export_site_on_the_command_line_prints_json(cli, world, snapshots):
    result = cli("export-site", "--project", snapshots.form_builder, "--site", world.site)

    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    assert {row["event_id"] for row in exported["warehouse"]["deactivations"]} == world.site_event_ids


def test_erase_on_the_command_line_dry_run_then_for_real(cli, world, snapshots):
    before = snapshots.raw(world.settings)
    dry = cli("erase", "--project", snapshots.form_builder, "--site", world.site, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    dry_summary = json.loads(dry.stdout.strip().splitlines()[-1])
    assert dry_summary["dry_run"] is True and snapshots.raw(world.settings) == before

    real = cli("erase", "--project", snapshots.form_builder, "--site", world.site)

    assert real.returncode == 0, real.stderr
    summary = json.loads(real.stdout.strip().splitlines()[-1])
    assert (
        summary["warehouse"]
        == dry_summary["warehouse"]
        == {
            "deactivations": len(world.site_event_ids),
            "sites": len(world.site_event_ids),
            "deactivation_errors": 2,
        }
    )
    assert summary["analytics_hours_rebuilt"] >= 1
    assert world.site not in real.stdout + dry.stdout  # counts only, no personal data
    client = connect(world.settings)
    assert client[world.settings.MONGODB_DB][ERASURE_AUDIT].count_documents({"_id": summary["audit_id"]}) == 1
    client.close()
    after = cli("export-site", "--project", snapshots.form_builder, "--site", world.site)
    exported = json.loads(after.stdout)
    assert exported["erased"] is True
    assert not any(exported["raw_store"].values()) and not any(exported["warehouse"].values())
    assert not any(exported["mongo"].values())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["erase", "--project", "nope", "--site", "https://a.example"], "--project must be a project hash"),
        (["erase", "--project", "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "--email", "nobody"], "--email must"),
        (["export-site", "--project", "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "--site", " "], "--site must"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli, world, snapshots, arguments, message):
    before = snapshots.raw(world.settings)

    result = cli(*arguments)

    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and snapshots.raw(world.settings) == before


def test_site_and_email_together_are_refused_by_the_parser(cli, snapshots):
    result = cli(
        "erase", "--project", snapshots.form_builder, "--site", "https://a.example", "--email", "a@b.c"
    )
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
