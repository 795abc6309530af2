"""`deact generate`: deterministic files, the demo projects, and never mixing into a store of real data."""

from __future__ import annotations

import json
from pathlib import Path

from deactivation.generator import DEMO_PROJECTS
from deactivation.projects import list_projects

ARGUMENTS = (
    "generate",
    "--seed",
    "3",
    "--hours",
    "2",
    "--events-per-hour",
    "30",
    "--end-hour",
    "2026-11-27T05",
)


def test_generate_writes_the_raw_store_and_registers_the_demo_projects(deact, settings, mongo_db):
    first = deact(*ARGUMENTS, "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["first_hour"] == "2026-11-27T04" and summary["envelopes"] == 60
    assert {p.hash for p in list_projects(mongo_db)} == {p.hash for p in DEMO_PROJECTS}
    files = sorted(Path(settings.RAW_STORE_URL).rglob("*.*json"))
    assert [f.parent.name for f in files] == ["04", "05"]

    again = deact(*ARGUMENTS, "--json")
    assert json.loads(again.stdout.strip().splitlines()[-1]) == summary
    assert sorted(Path(settings.RAW_STORE_URL).rglob("*.*json")) == files


def test_generate_prints_a_human_summary_by_default(deact, settings, mongo_db):
    result = deact(*ARGUMENTS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("wrote 60 synthetic requests (2026-11-27T04..2026-11-27T05, seed 3)")
    assert "{" not in result.stdout
    assert "next: `deact pipeline run --hour 2026-11-27T05 --hours 2`" in result.stdout


def test_generate_rejects_a_bad_hour(deact):
    result = deact("generate", "--end-hour", "yesterday", "--no-projects")
    assert result.returncode == 2 and "YYYY-MM-DDTHH" in result.stderr


def test_generate_refuses_a_store_holding_other_data_unless_forced(deact, one_line_error, settings):
    real = Path(settings.RAW_STORE_URL) / "deactivate/2026/11/27/05/0193a1b2-real.json"
    real.parent.mkdir(parents=True)
    real.write_text('{"event_id": "0193a1b2-real"}\n')

    refused = deact("generate", "--no-projects", "--hours", "1", "--end-hour", "2026-11-27T05")
    one_line_error(refused, 2, f"the raw store {settings.RAW_STORE_URL} holds data", "--force")
    assert sorted(p.name for p in Path(settings.RAW_STORE_URL).rglob("*") if p.is_file()) == [real.name]

    forced = deact("generate", "--no-projects", "--hours", "1", "--end-hour", "2026-11-27T05", "--force")
    assert forced.returncode == 0, forced.stderr
    note = (Path(settings.RAW_STORE_URL) / "GENERATED-DATA.txt").read_text()
    assert "synthetic" in note and "also held other data" in note
    assert real.read_text() == '{"event_id": "0193a1b2-real"}\n', "the real file is untouched"


def test_a_store_marked_as_generated_takes_more_generated_data(deact, settings):
    for end_hour in ("2026-11-27T05", "2026-11-27T07"):
        result = deact("generate", "--no-projects", "--hours", "1", "--end-hour", end_hour)
        assert result.returncode == 0, result.stderr
    assert "also held other data" not in (Path(settings.RAW_STORE_URL) / "GENERATED-DATA.txt").read_text()
