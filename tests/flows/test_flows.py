"""The flows against the real pipeline and warehouse, on seeded demo data."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from prefect.exceptions import ParameterTypeError

from deactivation.settings import Settings, get_settings
from deactivation.warehouse import open_warehouse
from flows.artifacts import PIPELINE_KEY
from flows.backfill_flow import backfill, contiguous_chunks
from flows.pipeline_flow import deactivation_pipeline


def label(hour: datetime) -> str:
    return f"{hour:%Y-%m-%dT%H}"


def history_snapshot(settings: Settings) -> dict[str, list[tuple]]:
    """Every history row by table (what a re-run must reproduce), hour_loads without its timestamp."""
    warehouse = open_warehouse(settings)
    queries = {
        "deactivations": "SELECT * FROM deactivations ORDER BY event_id",
        "sites": "SELECT * FROM sites ORDER BY event_id",
        "deactivation_errors": "SELECT * FROM deactivation_errors ORDER BY error_id",
        "hour_loads": "SELECT * EXCEPT (loaded_at) FROM hour_loads ORDER BY raw_hour",
    }
    return {table: list(warehouse.query(sql).itertuples(index=False)) for table, sql in queries.items()}


def latest_artifact_markdown(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> str:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )
            return artifacts[0].data

    return asyncio.run(read())


def markdown_counts(markdown: str) -> dict[str, str]:
    """The artifact's summary table (the one before the per-hour section) as {measure: value}."""
    summary = markdown.split("\n### ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in summary.splitlines() if line.startswith("|")]
    return {cells[0].strip(): cells[1].strip() for cells in rows[2:]}


def test_pipeline_artifact_numbers_equal_the_warehouse(demo_data: Settings, demo_hours: list[datetime]):
    report = deactivation_pipeline(hour=label(demo_hours[-1]), hours=len(demo_hours))

    counts = markdown_counts(latest_artifact_markdown(PIPELINE_KEY))
    warehouse = open_warehouse(demo_data)
    in_warehouse = {
        row.measure: int(row.n)
        for row in warehouse.query(
            "SELECT 'valid deactivations' AS measure, COUNT(*) AS n FROM deactivations "
            "UNION ALL SELECT 'rows written: sites', COUNT(*) FROM sites "
            "UNION ALL SELECT 'rows written: deactivation_errors', COUNT(*) FROM deactivation_errors "
            "UNION ALL SELECT 'events read', SUM(records_read) FROM hour_loads "
            "UNION ALL SELECT CONCAT('dead letters: ', error_type), COUNT(*) FROM deactivation_errors "
            "GROUP BY error_type"
        ).itertuples(index=False)
    }
    assert in_warehouse["valid deactivations"] > 0 and in_warehouse["rows written: deactivation_errors"] > 0
    for measure, number in in_warehouse.items():
        assert int(counts[measure]) == number, measure
    assert int(counts["rows written: deactivations"]) == in_warehouse["valid deactivations"]
    assert report.valid == in_warehouse["valid deactivations"]
    assert [h.hour for h in report.per_hour] == [label(h) for h in demo_hours]


def test_backfill_over_six_hours_equals_six_single_hour_runs(
    demo_data: Settings, demo_hours: list[datetime], tmp_path, monkeypatch: pytest.MonkeyPatch
):
    first, last = label(demo_hours[0]), label(demo_hours[-1])
    for hour in demo_hours:
        deactivation_pipeline(hour=label(hour), hours=1)
    single_runs = history_snapshot(demo_data)

    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{tmp_path / 'backfill.duckdb'}")
    get_settings.cache_clear()
    report = backfill(start_hour=first, end_hour=last, hours_per_run=4, run_analytics=False)

    assert [len(run.hours) for run in report.runs] == [4, 2]
    assert history_snapshot(get_settings()) == single_runs
    assert single_runs["deactivations"], "the seeded hours hold deactivations"

    resumed = backfill(start_hour=first, end_hour=last, run_analytics=False)
    assert resumed.runs == [] and len(resumed.skipped) == len(demo_hours)


def test_a_failed_run_names_the_hour_and_the_cause(flow_settings: Settings, monkeypatch: pytest.MonkeyPatch):
    import beam.pipeline
    from flows import tasks

    def storage_down(settings, hours, **_options):
        raise ConnectionError("raw store unreachable")

    monkeypatch.setattr(beam.pipeline, "run_pipeline", storage_down)
    monkeypatch.setattr(tasks.run_beam_pipeline, "retries", 0)

    state = deactivation_pipeline(hour="2026-11-20T03", hours=1, return_state=True)

    assert state.is_failed()
    assert "2026-11-20T03" in state.message and "raw store unreachable" in state.message
    failure = latest_artifact_markdown(PIPELINE_KEY)
    assert "FAILED" in failure and "2026-11-20T03" in failure and "ConnectionError" in failure


def test_parameters_are_validated():
    with pytest.raises(ParameterTypeError, match="hour"):
        deactivation_pipeline(hour="2026-11-20 03:00", hours=1)
    with pytest.raises(ParameterTypeError, match="hours"):
        deactivation_pipeline(hour="2026-11-20T03", hours=0)


def test_contiguous_chunks_split_at_gaps_and_size(demo_hours: list[datetime]):
    hours = [demo_hours[0] + timedelta(hours=i) for i in (0, 1, 2, 4, 5, 6, 7, 8)]
    chunks = contiguous_chunks(hours, 3)
    assert [[h.hour for h in chunk] for chunk in chunks] == [[0, 1, 2], [4, 5, 6], [7, 8]]


def test_the_warehouse_check_names_each_inconsistent_hour(demo_hours: list[datetime]):
    from types import SimpleNamespace

    from flows.tasks import HourCounts, WarehouseCounts, warehouse_problems

    first, second = label(demo_hours[0]), label(demo_hours[1])
    counts = WarehouseCounts(
        hours=[HourCounts(hour=first, files=1, read=3, deactivations=3, sites=3, dead_letters=0)],
        table_rows={"deactivations": 2, "sites": 3, "deactivation_errors": 0},
        dead_letters={"unparseable": 0},
        rows_by_hour={first: {"deactivations": 2, "sites": 3}},
    )
    summary = SimpleNamespace(rows_written={"deactivations": 3}, errors={"unparseable": 0})

    problems = warehouse_problems(summary, demo_hours[:2], counts)

    assert problems == [
        f"hour {first}: hour_loads says 3 deactivations rows, the table has 2",
        f"hour {second}: no hour_loads row",
        f"hours {first}..{second} (2 hours): pipeline wrote 3 deactivations rows, the warehouse holds 2",
    ]


def test_the_artifact_reports_duplicate_and_erased_dead_letters(
    demo_data: Settings, demo_hours: list[datetime], mongo_db
):
    from deactivation.dead_letters import DEAD_LETTER_TYPES, DeadLetterType
    from deactivation.erasure import ERASURES, erasure_key, site_key
    from deactivation.generator import generate_events
    from deactivation.raw_store import open_raw_store

    hour = demo_hours[0]
    resent, erased = [
        e
        for e in generate_events(seed=11, start_hour=hour, hours=1, events_per_hour=12).envelopes
        if e["body"].get("url") and e["body"].get("hash")
    ][:2]
    open_raw_store(demo_data).write_envelopes("deactivate", [resent])  # the same event_id again
    erased_key = site_key(erasure_key(demo_data), erased["body"]["hash"].lower(), erased["body"]["url"])
    mongo_db[ERASURES].insert_one({"_id": erased_key, "kind": "site"})

    report = deactivation_pipeline(hour=label(hour), hours=1)

    counts = markdown_counts(latest_artifact_markdown(PIPELINE_KEY))
    held = open_warehouse(demo_data).query(
        "SELECT error_type, COUNT(*) AS n FROM deactivation_errors GROUP BY error_type"
    )
    in_warehouse = dict(zip(held["error_type"], held["n"].astype(int), strict=True))
    for kind in DEAD_LETTER_TYPES:
        assert int(counts[f"dead letters: {kind}"]) == in_warehouse.get(kind, 0) == report.dead_letters[kind]
    assert report.dead_letters[DeadLetterType.DUPLICATE] >= 1
    assert report.dead_letters[DeadLetterType.ERASED] >= 1


def test_every_deployment_carries_a_concurrency_limit():
    from pathlib import Path

    import yaml

    prefect_yaml = Path(__file__).resolve().parents[2] / "prefect.yaml"
    deployments = yaml.safe_load(prefect_yaml.read_text())["deployments"]
    assert {d["name"]: d.get("concurrency_limit") for d in deployments} == dict.fromkeys(
        (d["name"] for d in deployments), 1
    )


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        (ConnectionError("raw store unreachable"), 3),  # retried: it may be transient
        (None, 1),  # hours held by another run: it already waited, so it fails at once
    ],
)
def test_a_run_blocked_by_another_is_not_retried(
    flow_settings: Settings, monkeypatch: pytest.MonkeyPatch, failure, attempts
):
    import beam.pipeline
    from beam.hour_lock import HoursLockedError
    from flows import tasks

    calls = []

    def blocked(settings, hours, **_options):
        calls.append(hours)
        raise failure or HoursLockedError(
            "hours 2026-11-20T03 are being processed by another run: held by h:1:a"
        )

    monkeypatch.setattr(beam.pipeline, "run_pipeline", blocked)
    monkeypatch.setattr(tasks.run_beam_pipeline, "retry_delay_seconds", [0, 0])

    state = deactivation_pipeline(hour="2026-11-20T03", hours=1, return_state=True)

    assert state.is_failed()
    assert len(calls) == attempts
    if failure is None:
        assert "held by h:1:a" in state.message
