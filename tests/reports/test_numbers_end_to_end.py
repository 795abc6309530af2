"""Numbers are right: generator → raw store → pipeline → analytics, every aggregate compared with
the generator's own record, exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.warehouse import open_warehouse
from reports.aggregates import AGGREGATES
from reports.analytics import build_analytics

pipeline = pytest.importorskip(
    "beam.pipeline", reason="the Beam pipeline (beam/pipeline.py) is not importable"
)

START = datetime(2026, 11, 21, 22, tzinfo=UTC)  # crosses a UTC midnight
HOURS = [START + timedelta(hours=i) for i in range(4)]


@pytest.mark.slow
def test_generator_pipeline_analytics_agree_with_the_truth_exactly(settings, mongo_db, truth):
    generated = generate_events(seed=2026, start_hour=START, hours=len(HOURS), events_per_hour=150)
    for project in DEMO_PROJECTS:
        upsert_project(mongo_db, project)
    write_to_raw_store(open_raw_store(settings), generated.envelopes)

    summary = pipeline.run_pipeline(settings, HOURS)

    assert summary.read == len(generated.envelopes)
    assert summary.deactivations == len(generated.truth.events)
    for kind, count in generated.truth.rejected.items():
        assert summary.errors[kind] == count, kind
    history = open_warehouse(settings).query("SELECT event_id FROM deactivations")
    assert set(history["event_id"]) == {e.event_id for e in generated.truth.events}

    analytics = build_analytics(settings)
    assert analytics.hours_rebuilt == [f"{h:%Y-%m-%dT%H}" for h in HOURS]
    expected = truth.expected_aggregates(generated.truth.events, generated.truth.dead_letters)
    truth.assert_aggregates_equal(truth.actual_aggregates(settings), expected)
    for aggregate in AGGREGATES:
        assert mongo_db[aggregate.name].count_documents({}) == len(expected[aggregate.name])
    published = {
        (d["project_hash"], date.fromisoformat(d["day"]), d["reason_id"]): (
            d["reason_label"],
            d["deactivations"],
            d["share"],
        )
        for d in mongo_db.daily_reason_counts.find()
    }
    assert published == expected["daily_reason_counts"]

    # Re-running the pipeline for an hour changes nothing, and analytics rebuilds just that hour.
    pipeline.run_pipeline(settings, HOURS[-1:])
    again = build_analytics(settings)
    assert again.hours_rebuilt == [f"{HOURS[-1]:%Y-%m-%dT%H}"]
    truth.assert_aggregates_equal(truth.actual_aggregates(settings), expected)
