"""`deact demo` end to end (a small window), twice: the same numbers and no duplicates; afterwards,
with its MongoDB stopped, every other command fails with one clear line."""

from __future__ import annotations

import json

import pytest

from deact.cli import build_parser
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse

DEMO_ARGS = ["demo", "--generate-days", "1", "--events-per-hour", "8", "--seed", "5"]


def run_demo(capsys: pytest.CaptureFixture, *extra: str) -> str:
    """`deact demo` without `cli.main`, whose logging setup would outlive the captured stderr."""
    args = build_parser().parse_args([*DEMO_ARGS, *extra])
    assert args.handler(args) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_demo_twice_gives_the_same_numbers_and_no_duplicates(
    flow_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # the session's test server

    first = json.loads(run_demo(capsys, "--json").strip().splitlines()[-1])
    second_text = run_demo(capsys)
    assert "{" not in second_text, "no JSON without --json"
    assert "MongoDB keeps the LATEST deactivation per site" in second_text
    third = json.loads(run_demo(capsys, "--json").strip().splitlines()[-1])

    assert first["http"]["sent_now"] and not third["http"]["sent_now"]
    assert first["http"]["accepted"] == first["http"]["posted"] > 0
    assert first["window"] == third["window"]
    for stage in ("events_read", "valid", "dead_letters", "files"):
        assert first["pipeline"][stage] == third["pipeline"][stage], stage
    assert first["pipeline"]["events_read"] == first["generated"]
    assert first["pipeline"]["valid"] == first["expected_valid"]
    assert {k: v for k, v in first["pipeline"]["dead_letters"].items() if v} == first["expected_dead_letters"]
    assert first["analytics"]["tables"] == third["analytics"]["tables"]
    assert first["mongo_documents"] == third["mongo_documents"]

    rows = open_warehouse(flow_settings).query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS distinct_ids FROM deactivations"
    )
    assert int(rows["n"][0]) == int(rows["distinct_ids"][0]) == first["pipeline"]["valid"]
