"""Spike detection on generated hourly histories: a spike is found in one run and named; steady,
weekly-seasonal, trending and short histories give no alert."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from notifications.spikes import COOLDOWN, baseline, detect

NOW_HOUR = datetime(2026, 11, 27, 14, tzinfo=UTC)  # a Friday afternoon
VERSIONS = {"2.3.1": 0.7, "2.4.0": 0.3}
REASONS = {"Not working": 0.3, "Found a better plugin": 0.4, "Other": 0.3}
SEEDS = range(12)


def _rate_steady(hour: datetime) -> float:
    return 20.0


def _rate_seasonal(hour: datetime) -> float:
    daily = 1 + 0.8 * math.sin((hour.hour - 6) / 24 * 2 * math.pi)  # busy afternoons, quiet nights
    weekly = 0.4 if hour.weekday() >= 5 else 1.0  # quiet weekends
    return 25.0 * daily * weekly


def _rate_trending(hour: datetime) -> float:
    weeks_ago = (NOW_HOUR - hour) / timedelta(weeks=1)
    return 20.0 * (1 + 0.05) ** (-weeks_ago)  # +5 % a week


def _series(rate, seed: int, weeks: int = 8, spike: dict | None = None):
    """hour → Counter of series keys, Poisson counts split over versions and reasons."""
    rng = np.random.default_rng(seed)
    counts: dict[datetime, Counter] = {}
    hours = [NOW_HOUR - timedelta(hours=i) for i in range(weeks * 7 * 24)]
    for hour in hours:
        by_key: Counter = Counter()
        events = [(v, r) for v, r in _draw(rng, rng.poisson(rate(hour)))]
        if spike and hour == NOW_HOUR:
            events += [(spike["version"], spike["reason"])] * spike["extra"]
        for version, reason in events:
            by_key[("all", "")] += 1
            by_key[("version", version)] += 1
            by_key[("reason", reason)] += 1
        counts[hour] = by_key
    return counts, set(hours)


def _draw(rng, n):
    versions = rng.choice(list(VERSIONS), size=n, p=list(VERSIONS.values()))
    reasons = rng.choice(list(REASONS), size=n, p=list(REASONS.values()))
    return zip(versions, reasons, strict=True)


@pytest.mark.parametrize(
    "rate", [_rate_steady, _rate_seasonal, _rate_trending], ids=["steady", "seasonal", "trend"]
)
def test_no_alert_for_steady_seasonal_or_trending_traffic(rate):
    # Many seeds and every hour of the last day: a false alarm anywhere fails the test.
    for seed in SEEDS:
        counts, loaded = _series(rate, seed)
        for back in range(0, 24, 3):
            hour = NOW_HOUR - timedelta(hours=back)
            assert detect(counts, loaded, hour) is None, (seed, hour)


def test_a_version_spike_is_found_in_one_run_and_names_the_version_and_reason():
    spike = {"version": "2.4.0", "reason": "Not working", "extra": 60}
    for seed in SEEDS:
        counts, loaded = _series(_rate_seasonal, seed, spike=spike)
        alert = detect(counts, loaded, NOW_HOUR)
        assert alert is not None, seed
        assert alert["hour"] == "2026-11-27T14" and alert["window"] == "hour"
        assert alert["headline"].startswith("version 2.4.0: ")
        assert "deactivations in the hour, baseline" in alert["headline"]
        assert alert["headline"].endswith("top reason: Not working")
        named = {(f["dimension"], f["value"]) for f in alert["findings"]}
        assert ("version", "2.4.0") in named and ("reason", "Not working") in named


def test_a_spike_too_small_to_matter_is_not_alerted():
    # Statistically clear on a quiet project, but fewer extra deactivations than the practical minimum.
    counts, loaded = _series(
        lambda hour: 0.2, seed=3, spike={"version": "2.4.0", "reason": "Other", "extra": 6}
    )
    assert detect(counts, loaded, NOW_HOUR) is None


def test_little_history_gives_no_alert_even_for_a_jump():
    spike = {"version": "2.4.0", "reason": "Not working", "extra": 60}
    for weeks in (1, 2):
        for seed in SEEDS:
            counts, loaded = _series(_rate_seasonal, seed, weeks=weeks, spike=spike)
            assert detect(counts, loaded, NOW_HOUR) is None, (weeks, seed)


def test_hours_never_loaded_are_not_counted_as_quiet_history():
    spike = {"version": "2.4.0", "reason": "Not working", "extra": 60}
    counts, loaded = _series(_rate_steady, seed=1, spike=spike)
    only_recent = {h for h in loaded if NOW_HOUR - h < timedelta(days=15)}  # 2 weeks loaded
    assert detect(counts, only_recent, NOW_HOUR) is None
    assert detect(counts, loaded, NOW_HOUR) is not None


def test_a_past_incident_does_not_lift_the_baseline():
    # One of the same hours in the history had an incident; median and MAD ignore it.
    counts, loaded = _series(_rate_steady, seed=5, spike={"version": "2.4.0", "reason": "Other", "extra": 60})
    counts[NOW_HOUR - timedelta(weeks=2)][("all", "")] += 200
    assert detect(counts, loaded, NOW_HOUR) is not None


def test_baseline_spread_is_never_below_poisson_noise():
    steady = baseline([20, 20, 20, 20])
    assert steady.median == 20 and steady.spread == pytest.approx(math.sqrt(20))
    assert baseline([0, 0, 0]).spread == 1.0


def test_cooldown_is_hours():
    assert timedelta(hours=1) <= COOLDOWN


def test_a_day_long_rise_no_single_hour_shows_is_found_on_the_day():
    counts, loaded = _series(lambda hour: 5.0, seed=2)
    for back in range(24):  # +8 in each of the last 24 hours: below the hourly minimum of 10
        counts[NOW_HOUR - timedelta(hours=back)][("all", "")] += 8
        counts[NOW_HOUR - timedelta(hours=back)][("version", "2.4.0")] += 8
    alert = detect(counts, loaded, NOW_HOUR)
    assert alert is not None and alert["window"] == "day"
    assert alert["headline"].startswith("version 2.4.0: ") and "in the day" in alert["headline"]
