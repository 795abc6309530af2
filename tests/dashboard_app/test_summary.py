"""The data-quality panel's numbers: dead letters by type per day, published by the analytics build."""

from __future__ import annotations

from datetime import date

from dashboard_app.summary import dead_letters_by_day
from deactivation.mongo import get_database


def test_dead_letters_by_type_equal_the_generators_record(demo):
    quality = dead_letters_by_day(get_database(demo.settings), date(2026, 11, 19), date(2026, 11, 23))
    assert demo.rejected, "the demo data has no bad events: the test would prove nothing"
    assert {kind: sum(per_day) for kind, per_day in quality["by_type"].items()} == dict(demo.rejected)
    assert quality["total"] == sum(demo.rejected.values())
    assert quality["days"][0] == "2026-11-19" and len(quality["days"]) == 5
    assert all(count == 0 for per_day in quality["by_type"].values() for count in (per_day[0], per_day[4]))


def test_a_period_without_dead_letters_is_all_zero(demo):
    quality = dead_letters_by_day(get_database(demo.settings), date(2026, 10, 1), date(2026, 10, 2))
    assert quality == {"days": ["2026-10-01", "2026-10-02"], "by_type": {}, "total": 0}
