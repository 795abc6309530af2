"""The report: one self-contained HTML file with every chart per project, PNGs where Chromium exists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from plotly.offline import get_plotlyjs

from deactivation.generator import DEMO_PROJECTS, generate_events
from deactivation.projects import upsert_project
from reports.analytics import build_analytics
from reports.registry import load_charts
from reports.render import find_chromium, render_report

START = datetime(2026, 11, 18, tzinfo=UTC)
HOURS = 24 * 3
NO_DATA_PROJECT = "22222222-3333-4444-8555-666666666666"


@pytest.fixture
def analysed(settings, mongo_db, truth):
    generated = generate_events(seed=9, start_hour=START, hours=HOURS, events_per_hour=10)
    hours = [START + timedelta(hours=i) for i in range(HOURS)]
    truth.load_events(settings, generated.truth.events, hours, loaded_at=datetime(2026, 11, 21, tzinfo=UTC))
    for project in DEMO_PROJECTS:
        upsert_project(mongo_db, project)
    build_analytics(settings, publish=False)
    return settings


def test_report_has_every_chart_of_every_project_and_inlines_plotly(analysed, tmp_path):
    summary = render_report(analysed, tmp_path / "out", png=False)

    chart_ids = [c.id for c in load_charts()]
    assert summary.projects == sorted(
        (p.hash for p in DEMO_PROJECTS), key=lambda h: next(p.name for p in DEMO_PROJECTS if p.hash == h)
    )
    assert summary.charts == [f"{p}/{c}" for p in summary.projects for c in chart_ids]
    assert (summary.start_day, summary.end_day) == ("2026-11-18", "2026-11-20")
    page = (tmp_path / "out" / "deactivation-report.html").read_text()
    assert get_plotlyjs() in page
    assert not re.findall(r"<script\b[^>]*\bsrc=", page), "the report must not load scripts from anywhere"
    assert page.count("Plotly.newPlot") == len(summary.charts)
    for project in DEMO_PROJECTS:
        assert project.name in page
    assert "Found a better plugin" in page and "Too expensive" in page
    # The theme has no written answers: only its top-terms chart is empty.
    theme = next(p.hash for p in DEMO_PROJECTS if p.kind == "theme")
    assert summary.empty == [f"{theme}/top_terms"]


def test_a_project_without_data_gets_the_empty_state(analysed, tmp_path):
    summary = render_report(analysed, tmp_path, project=NO_DATA_PROJECT, days=2, png=False)
    assert summary.empty == summary.charts and len(summary.charts) == len(load_charts())
    assert (summary.start_day, summary.end_day) == ("2026-11-19", "2026-11-20")
    assert "No deactivations for this project" in (tmp_path / "deactivation-report.html").read_text()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (Debian package chromium)")
def test_png_per_chart_through_kaleido(analysed, tmp_path):
    summary = render_report(analysed, tmp_path, project=DEMO_PROJECTS[0].hash, days=3)
    assert len(summary.pngs) == len(load_charts())
    for path in summary.pngs:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_render_prints_a_json_summary_last(analysed, tmp_path, monkeypatch):
    for name, value in analysed.store_environment().items():
        monkeypatch.setenv(name, value)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deactivation",
            "report",
            "render",
            "--out",
            str(tmp_path),
            "--days",
            "1",
            "--no-png",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["start_day"] == summary["end_day"] == "2026-11-20"
    assert summary["html_path"].endswith("deactivation-report.html")

    bad = subprocess.run(
        [sys.executable, "-m", "deact", "report", "render", "--days", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--days must be at least 1" in bad.stderr


def test_one_project_report_covers_that_projects_own_days(analysed, tmp_path, truth):
    theme = next(p for p in DEMO_PROJECTS if p.kind == "theme")
    later = generate_events(
        seed=10, start_hour=datetime(2026, 11, 25, tzinfo=UTC), hours=2, events_per_hour=10
    )
    others = [e for e in later.truth.events if e.project_hash != theme.hash]
    truth.load_events(
        analysed, others, {e.hour for e in others}, loaded_at=datetime(2026, 11, 26, tzinfo=UTC)
    )
    build_analytics(analysed, publish=False)

    assert render_report(analysed, tmp_path, project=theme.hash, png=False).end_day == "2026-11-20"
    assert render_report(analysed, tmp_path, png=False).end_day == "2026-11-25"
