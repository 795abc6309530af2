"""`deact generate` and `deact analytics build`: JSON summary last, clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deactivation.generator import DEMO_PROJECTS
from deactivation.projects import list_projects


@pytest.fixture
def cli(settings, monkeypatch):
    for name, value in settings.store_environment().items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deact", *args], capture_output=True, text=True)

    return run


def test_generate_writes_the_raw_store_and_registers_the_demo_projects(cli, settings, mongo_db):
    arguments = (
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
    first = cli(*arguments)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["first_hour"] == "2026-11-27T04" and summary["envelopes"] == 60
    assert {p.hash for p in list_projects(mongo_db)} == {p.hash for p in DEMO_PROJECTS}
    files = sorted(Path(settings.RAW_STORE_URL).rglob("*.*json"))
    assert [f.parent.name for f in files] == ["04", "05"]

    again = cli(*arguments)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == summary
    assert sorted(Path(settings.RAW_STORE_URL).rglob("*.*json")) == files


def test_generate_rejects_a_bad_hour(cli):
    result = cli("generate", "--end-hour", "yesterday", "--no-projects")
    assert result.returncode == 2 and "YYYY-MM-DDTHH" in result.stderr


def test_analytics_build_prints_its_summary_last(cli):
    result = cli("analytics", "build", "--no-publish")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["hours_rebuilt"] == [] and summary["watermark"] is None

    bad = cli("analytics", "build", "--since", "2026-11-27 05:00")
    assert bad.returncode == 2 and "YYYY-MM-DDTHH" in bad.stderr
