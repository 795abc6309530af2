"""`deact pipeline run`: the JSON summary last, the deployment's window, Beam flags after `--`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from deact.cli import main

THEME_HASH = "b1b2c3d4-0000-4000-8000-000000000001"


@pytest.mark.slow
def test_pipeline_run_command_prints_the_summary_last(deact, settings, mongo_db):
    from deactivation.envelope import make_envelope
    from deactivation.projects import Project, upsert_project
    from deactivation.raw_store import open_raw_store

    upsert_project(mongo_db, Project(hash=THEME_HASH, name="Theme", kind="theme"))
    theme_body = {"hash": THEME_HASH, "url": "https://a.example", "wp": {"memory_limit": "64M"}}
    envelope = make_envelope(
        route="deactivate",
        body=theme_body,
        content_type="application/x-www-form-urlencoded",
        received_at=datetime(2026, 11, 28, 1, tzinfo=UTC),
    )
    open_raw_store(settings).write_envelopes("deactivate", [envelope])
    result = deact("pipeline", "run", "--hour", "2026-11-28T02", "--hours", "2", timeout=240)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["hours"] == ["2026-11-28T01", "2026-11-28T02"]
    assert (summary["files"], summary["read"], summary["deactivations"]) == (1, 1, 1)
    assert summary["rows_written"]["hour_loads"] == 2
    assert result.stdout.startswith(
        "processed 2026-11-28T01..2026-11-28T02 (2 hours): 1 files, 1 events read"
    )


def test_pipeline_run_command_rejects_a_malformed_hour(capsys):
    assert main(["pipeline", "run", "--hour", "2026-11-28 01"]) == 2
    assert "hour must look like YYYY-MM-DDTHH" in capsys.readouterr().err


def _fake_run_pipeline(monkeypatch, settings):
    import beam.pipeline
    from beam.pipeline import PipelineSummary

    calls = []

    def fake_run(run_settings, hours, *, extra_pipeline_args=None):
        calls.append((hours, extra_pipeline_args))
        return PipelineSummary(
            hours=[], files=0, read=0, deactivations=0, sites=0, errors={}, rows_written={}, seconds=0.0
        )

    monkeypatch.setattr(beam.pipeline, "run_pipeline", fake_run)
    monkeypatch.setattr("deact.commands.pipeline.get_settings", lambda: settings)
    return calls


def test_pipeline_run_passes_beam_flags_after_the_separator(monkeypatch, settings, capsys):
    calls = _fake_run_pipeline(monkeypatch, settings)
    argv = ["pipeline", "run", "--hour", "2026-11-28T05", "--hours", "1", "--", "--runner=DataflowRunner",
            "--project=acme"]  # fmt: skip
    assert main(argv) == 0
    assert calls == [([datetime(2026, 11, 28, 5, tzinfo=UTC)], ["--runner=DataflowRunner", "--project=acme"])]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["read"] == 0


def test_pipeline_run_hour_means_what_the_deployment_hour_means(monkeypatch, settings, capsys):
    """--hour is the LAST hour of a window of DEFAULT_WINDOW_HOURS (2), as the deployment's `hour`."""
    import inspect

    from deactivation.hours import DEFAULT_WINDOW_HOURS
    from flows.pipeline_flow import deactivation_pipeline

    calls = _fake_run_pipeline(monkeypatch, settings)
    assert main(["pipeline", "run", "--hour", "2026-11-28T05"]) == 0
    assert calls[0][0] == [datetime(2026, 11, 28, 4, tzinfo=UTC), datetime(2026, 11, 28, 5, tzinfo=UTC)]
    deployment_default = inspect.signature(deactivation_pipeline.fn).parameters["hours"].default
    assert DEFAULT_WINDOW_HOURS == deployment_default == 2
