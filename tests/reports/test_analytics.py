"""Analytics on warehouse rows inserted directly: every aggregate equals the generator's truth,
incremental builds touch only what changed, a full rebuild gives the same rows, MongoDB mirrors it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deactivation.generator import generate_events
from reports.aggregates import AGGREGATES
from reports.analytics import build_analytics

START = datetime(2026, 11, 20, 21, tzinfo=UTC)  # spans a UTC midnight: days need whole-day rebuilds
HOURS = [START + timedelta(hours=i) for i in range(6)]


@pytest.fixture(scope="module")
def generated():
    return generate_events(seed=11, start_hour=START, hours=len(HOURS), events_per_hour=60)


def test_every_aggregate_equals_the_truth(settings, generated, truth):
    truth.load_events(
        settings, generated.truth.events, HOURS, loaded_at=datetime(2026, 11, 21, 3, tzinfo=UTC)
    )

    summary = build_analytics(settings, publish=False)

    assert summary.hours_rebuilt == [f"{h:%Y-%m-%dT%H}" for h in HOURS]
    assert summary.days_rebuilt == ["2026-11-20", "2026-11-21"]
    truth.assert_aggregates_equal(
        truth.actual_aggregates(settings), truth.expected_aggregates(generated.truth.events)
    )


def test_incremental_build_rebuilds_only_reloaded_hours_and_matches_a_full_rebuild(
    settings, generated, truth, mongo_db
):
    events = generated.truth.events
    first_load = datetime(2026, 11, 21, 3, tzinfo=UTC)
    truth.load_events(settings, events, HOURS, loaded_at=first_load)
    build_analytics(settings)

    nothing = build_analytics(settings)
    assert nothing.hours_rebuilt == [] and nothing.published == {}

    # The pipeline re-runs the last hour, which now holds only half of its events.
    last_hour = HOURS[-1]
    kept = [e for e in events if e.hour != last_hour or e.event_id[-1] in "02468ace"]
    truth.load_events(settings, kept, [last_hour], loaded_at=first_load + timedelta(hours=1))
    incremental = build_analytics(settings)

    assert incremental.hours_rebuilt == [f"{last_hour:%Y-%m-%dT%H}"]
    assert incremental.days_rebuilt == [f"{last_hour:%Y-%m-%d}"]
    assert incremental.watermark == (first_load + timedelta(hours=1)).isoformat()
    expected = truth.expected_aggregates(kept)
    after_incremental = truth.actual_aggregates(settings)
    truth.assert_aggregates_equal(after_incremental, expected)

    full = build_analytics(settings, full=True)
    assert full.full and len(full.hours_rebuilt) == len(HOURS)
    assert truth.actual_aggregates(settings) == after_incremental

    for aggregate in AGGREGATES:
        documents = list(mongo_db[aggregate.name].find())
        assert len(documents) == len(expected[aggregate.name]), aggregate.name
        assert full.published[aggregate.name] == len(documents)


def test_mongo_documents_are_keyed_and_stale_keys_are_deleted(settings, generated, truth, mongo_db):
    events = generated.truth.events
    truth.load_events(settings, events, HOURS, loaded_at=datetime(2026, 11, 21, 3, tzinfo=UTC))
    build_analytics(settings)
    one = mongo_db.daily_reason_counts.find_one({"day": "2026-11-21"})
    assert one["_id"] == f"{one['project_hash']}|2026-11-21|{one['reason_id']}"
    assert isinstance(one["deactivations"], int) and one["reason_label"]
    hourly = mongo_db.hourly_reason_counts.find_one({})
    assert isinstance(hourly["hour"], datetime)

    # Every event of the first hour is gone after a re-run: its documents must disappear too.
    emptied = [e for e in events if e.hour != HOURS[0]]
    truth.load_events(settings, emptied, [HOURS[0]], loaded_at=datetime(2026, 11, 21, 4, tzinfo=UTC))
    build_analytics(settings, since=HOURS[0])
    assert mongo_db.hourly_reason_counts.count_documents({"hour": HOURS[0]}) == 0
    expected = truth.expected_aggregates(emptied)
    for aggregate in AGGREGATES:
        ids = {d["_id"] for d in mongo_db[aggregate.name].find({}, {"_id": 1})}
        assert len(ids) == len(expected[aggregate.name]), aggregate.name


def test_since_rebuilds_raw_hours_from_that_hour_on(settings, generated, truth):
    truth.load_events(
        settings, generated.truth.events, HOURS, loaded_at=datetime(2026, 11, 21, 3, tzinfo=UTC)
    )
    build_analytics(settings, publish=False)
    again = build_analytics(settings, since=HOURS[4], publish=False)
    assert again.hours_rebuilt == [f"{h:%Y-%m-%dT%H}" for h in HOURS[4:]]
    truth.assert_aggregates_equal(
        truth.actual_aggregates(settings), truth.expected_aggregates(generated.truth.events)
    )


def test_a_failed_publish_leaves_the_watermark_so_the_next_run_redoes_the_hours(
    settings, generated, truth, monkeypatch
):
    import reports.analytics as analytics

    truth.load_events(
        settings, generated.truth.events, HOURS, loaded_at=datetime(2026, 11, 21, 3, tzinfo=UTC)
    )

    def unreachable(*_args):
        raise ConnectionError("MongoDB is down")

    monkeypatch.setattr(analytics, "_publish_all", unreachable)
    with pytest.raises(ConnectionError):
        build_analytics(settings)
    monkeypatch.undo()

    retried = build_analytics(settings, publish=False)
    assert len(retried.hours_rebuilt) == len(HOURS)
    assert build_analytics(settings, publish=False).hours_rebuilt == []
