"""The plugin author's guide on generated data: events of a project that was not registered yet are
unknown_project dead letters; `deadletters list` shows them (counts only), `projects add` registers
the project, `deadletters replay` loads them. And `events recent` sees events before any pipeline run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
from deactivation.hours import hour_floor
from deactivation.raw_store import open_raw_store
from deactivation.warehouse import open_warehouse

SEO = next(p for p in DEMO_PROJECTS if p.name == "Simple SEO Meta")  # no custom reasons or fields
FIRST_HOUR = datetime(2026, 11, 27, 4, tzinfo=UTC)
HOURS = [FIRST_HOUR, FIRST_HOUR + timedelta(hours=1)]


@pytest.mark.slow
def test_the_guide_register_then_replay_dead_letters(deact, settings, mongo_db):
    from beam.pipeline import run_pipeline

    generated = generate_events(seed=7, start_hour=FIRST_HOUR, hours=len(HOURS), events_per_hour=40)
    write_to_raw_store(open_raw_store(settings), generated.envelopes)
    run_pipeline(settings, HOURS)  # nothing registered: every event is a dead letter
    warehouse = open_warehouse(settings)

    listed = deact("deadletters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["rows"]
    in_table = warehouse.query(
        "SELECT COUNT(*) AS n FROM deactivation_errors "
        "WHERE project_hash = @p AND error_type = 'unknown_project'",
        {"p": SEO.hash},
    )
    seo_rows = [r for r in rows if r["project_hash"] == SEO.hash and r["type"] == "unknown_project"]
    assert sum(r["count"] for r in seo_rows) == int(in_table["n"][0]) > 0
    assert {r["hour"] for r in seo_rows} == {"2026-11-27T04", "2026-11-27T05"}

    table = deact("deadletters", "list", "--type", "unknown_project")
    assert table.returncode == 0, table.stderr
    assert f"{SEO.hash} (not registered)" in table.stdout
    assert "deact deadletters replay --project HASH" in table.stdout
    assert "admin_email" not in table.stdout and "@" not in table.stdout, "counts only, no content"

    # The guide's registration, by hash; from then on the project is named by its name.
    added = deact("projects", "add", "--hash", SEO.hash, "--name", SEO.name)
    assert added.returncode == 0, added.stderr
    assert f"registered plugin '{SEO.name}' ({SEO.hash})" in added.stdout
    by_name = deact("deadletters", "list", "--project", "simple seo meta")
    assert f"{SEO.name} ({SEO.hash[:8]}…)" in by_name.stdout
    assert all(SEO.hash[:8] in line for line in by_name.stdout.splitlines()[1:-3] if line[:2] == "20")

    replay = deact("deadletters", "replay", "--project", SEO.name, "--type", "unknown_project", "--json")
    assert replay.returncode == 0, replay.stderr
    summary = json.loads(replay.stdout.strip().splitlines()[-1])
    assert summary["hours"] == ["2026-11-27T04", "2026-11-27T05"]
    assert summary["dead_letters_before"] == int(in_table["n"][0]) and summary["dead_letters_after"] == 0
    loaded = warehouse.query(
        "SELECT COUNT(*) AS n FROM deactivations WHERE project_hash = @p", {"p": SEO.hash}
    )
    expected = sum(1 for event in generated.truth.events if event.project_hash == SEO.hash)
    assert int(loaded["n"][0]) == expected > 0


def test_deadletters_list_on_an_empty_warehouse_says_so(deact, settings, mongo_db):
    open_warehouse(settings).ensure_tables()
    result = deact("deadletters", "list")
    assert result.returncode == 0 and result.stdout.strip() == "no dead letters."


def test_deadletters_for_an_unknown_project_name_list_the_known_ones(
    deact, one_line_error, settings, mongo_db
):
    from deactivation.projects import upsert_project

    open_warehouse(settings).ensure_tables()
    upsert_project(mongo_db, SEO)
    one_line_error(
        deact("deadletters", "list", "--project", "Nope"), 2, "no project 'Nope'; known: Simple SEO Meta"
    )


def test_events_recent_counts_arrivals_per_project_before_any_pipeline_run(deact, settings, mongo_db):
    from deactivation.projects import upsert_project

    this_hour = hour_floor(datetime.now(UTC))
    generated = generate_events(seed=3, start_hour=this_hour, hours=1, events_per_hour=30)
    write_to_raw_store(open_raw_store(settings), generated.envelopes)
    upsert_project(mongo_db, SEO)
    expected = sum(1 for e in generated.envelopes if str(e["body"].get("hash", "")).lower() == SEO.hash)

    result = deact("events", "recent", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert sum(r["events"] for r in rows) == len(generated.envelopes)
    assert sum(r["events"] for r in rows if r["project_hash"] == SEO.hash) == expected > 0

    table = deact("events", "recent", "--project", SEO.name)
    assert table.returncode == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if line.startswith("20")]
    assert len(lines) == 1 and f"{SEO.name} ({SEO.hash[:8]}…)" in lines[0] and f" {expected} " in lines[0]

    assert deact("events", "recent", "--hours", "0").returncode == 2
