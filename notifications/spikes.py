"""Spike alerts: is the last complete hour (or day) far above what this hour of the week usually brings?

Baseline (the choice, and why): the same hour of the week in each of the previous BASELINE_WEEKS
weeks that the warehouse has loaded. Comparing like with like absorbs daily and weekly seasonality
without fitting a model. The expected count is the median of those values and the spread their
MAD (median absolute deviation, × 1.4826 to estimate a standard deviation): both ignore one or two
past incidents in the history, where a mean and standard deviation would be dragged up by them.

Counts are small integers whose noise grows with their size (Poisson), so the test is made on the
Anscombe transform 2·sqrt(x + 3/8), where Poisson noise has a standard deviation of about 1 at any
level; the spread there is never taken below SPREAD_FLOOR (that unit noise, plus the error of a
median of ~6 weeks). Without the transform a quiet night hour (median 3) would alert on 14.

An alert needs all of:
- enough history: at least MIN_WEEKS loaded weeks for that hour (a new project gets no alert);
- statistical size: (transformed observed - transformed median) / spread >= Z_THRESHOLD;
- practical size: observed - median >= MIN_EXCESS_HOUR (MIN_EXCESS_DAY for the day), and observed
  at least RATIO × the median;
- cool-down: none sent for the project within COOLDOWN, so one incident is one alert.

Z_THRESHOLD and SPREAD_FLOOR were set on generated Poisson histories (tests/notifications/
test_spikes.py, 30 seeds): steady, weekly-seasonal and +5 %/week trending traffic gave no z above
3.63 in 15,120 hourly checks, and +60 on a baseline of 42 gave at least 3.96.

The alert is decided on the project's total (a new version replacing an old one moves traffic
between versions without moving the total, so per-version series alone would alert on every
release); it then names what spiked: the versions and reasons whose own excess over their own
baseline is largest, e.g. "version 2.4.0: 61 deactivations in the hour, baseline 2 ± 1".
A slow trend moves the median by a fraction of the spread per week and stays below the threshold.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from deactivation.hours import format_hour, hour_floor
from deactivation.projects import Project
from deactivation.warehouse import Warehouse
from notifications.outbox import NOTIFICATION_STATE, NOTIFICATIONS, Kind, enqueue

BASELINE_WEEKS = 6
MIN_WEEKS = 3
Z_THRESHOLD = 3.8
SPREAD_FLOOR = 1.2
MIN_EXCESS_HOUR = 10
MIN_EXCESS_DAY = 30
RATIO = 2.0
COOLDOWN = timedelta(hours=6)
#: How many versions and reasons an alert names.
NAMED = 3
#: The hour checked must be at most this old (a pipeline that is hours late is not "now").
MAX_CHECK_DELAY = timedelta(hours=3)
WEEK = timedelta(days=7)
MAD_SCALE = 1.4826

#: (dimension, value): ("all", ""), ("version", "2.4.0"), ("reason", "Not working").
SeriesKey = tuple[str, str]


@dataclass(frozen=True)
class Baseline:
    median: float
    spread: float
    weeks: int


@dataclass(frozen=True)
class Finding:
    dimension: str
    value: str
    window: str  # hour | day
    observed: int
    median: float
    spread: float
    text: str


def baseline(history: Iterable[float]) -> Baseline:
    """Median and MAD-based spread in counts (what an alert shows: "baseline 42 ± 7")."""
    values = list(history)
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    return Baseline(median, max(MAD_SCALE * mad, math.sqrt(max(median, 1.0))), len(values))


def anscombe(count: float) -> float:
    """Variance-stabilising transform: Poisson counts get a standard deviation of about 1."""
    return 2.0 * math.sqrt(count + 3.0 / 8.0)


def z_score(observed: float, history: list[float]) -> float:
    """How far `observed` is above the history, in robust standard deviations (transformed scale)."""
    transformed = [anscombe(v) for v in history]
    median = statistics.median(transformed)
    mad = statistics.median(abs(v - median) for v in transformed)
    return (anscombe(observed) - median) / max(MAD_SCALE * mad, SPREAD_FLOOR)


def is_large(observed: float, history: list[float], min_excess: float) -> bool:
    if len(history) < MIN_WEEKS:
        return False
    median = statistics.median(history)
    return (
        observed - median >= min_excess
        and observed >= RATIO * median
        and z_score(observed, history) >= Z_THRESHOLD
    )


def describe(dimension: str, value: str, window: str, observed: int, base: Baseline) -> str:
    name = {"all": "all deactivations", "version": f"version {value}", "reason": f"reason {value}"}[dimension]
    return f"{name}: {observed} deactivations in the {window}, baseline {base.median:.0f} ± {base.spread:.0f}"


def detect(
    counts: Mapping[datetime, Mapping[SeriesKey, int]], loaded_hours: set[datetime], hour: datetime
) -> dict[str, Any] | None:
    """The alert for `hour` (None when there is nothing to report).

    counts: hour → series key → deactivations (missing = 0); loaded_hours: hours the warehouse has
    loaded (a week whose hour was never loaded is not history, it is absence of data).
    """
    hour = hour_floor(hour)
    weeks = [hour - WEEK * k for k in range(1, BASELINE_WEEKS + 1)]
    hour_weeks = [h for h in weeks if h in loaded_hours]
    day_weeks = [h for h in weeks if h in loaded_hours and h - timedelta(hours=23) in loaded_hours]

    def hour_value(at: datetime, key: SeriesKey) -> int:
        return counts.get(at, {}).get(key, 0)

    def day_value(at: datetime, key: SeriesKey) -> int:
        return sum(hour_value(at - timedelta(hours=i), key) for i in range(24))

    total: SeriesKey = ("all", "")
    windows = (
        ("hour", hour_value, hour_weeks, MIN_EXCESS_HOUR),
        ("day", day_value, day_weeks, MIN_EXCESS_DAY),
    )
    for window, value, history_hours, min_excess in windows:
        if len(history_hours) < MIN_WEEKS:
            continue
        observed = value(hour, total)
        history = [value(h, total) for h in history_hours]
        if not is_large(observed, history, min_excess):
            continue
        base = baseline(history)
        findings = [
            Finding(
                "all",
                "",
                window,
                observed,
                base.median,
                base.spread,
                describe("all", "", window, observed, base),
            )
        ]
        keys = {key for at in [hour, *history_hours] for key in _keys_around(counts, at, window)}
        for dimension in ("version", "reason"):
            ranked = []
            for key in sorted(k for k in keys if k[0] == dimension):
                part_observed = value(hour, key)
                part_base = baseline(value(h, key) for h in history_hours)
                excess = part_observed - part_base.median
                if excess > 0:
                    ranked.append((excess, key, part_observed, part_base))
            ranked.sort(key=lambda item: (-item[0], item[1]))
            for _excess, key, part_observed, part_base in ranked[:NAMED]:
                findings.append(
                    Finding(
                        key[0],
                        key[1],
                        window,
                        part_observed,
                        part_base.median,
                        part_base.spread,
                        describe(key[0], key[1], window, part_observed, part_base),
                    )
                )
        return _alert(hour, window, findings)
    return None


def _keys_around(counts: Mapping[datetime, Mapping[SeriesKey, int]], at: datetime, window: str) -> set:
    span = 1 if window == "hour" else 24
    return {key for i in range(span) for key in counts.get(at - timedelta(hours=i), {})}


def _alert(hour: datetime, window: str, findings: list[Finding]) -> dict[str, Any]:
    versions = [f for f in findings if f.dimension == "version"]
    reasons = [f for f in findings if f.dimension == "reason"]
    lead = versions[0] if versions else findings[0]
    headline = lead.text
    if reasons:
        headline += f"; top reason: {reasons[0].value}"
    return {
        "hour": format_hour(hour),
        "window": window,
        "headline": headline,
        "findings": [asdict(f) for f in findings],
    }


_SERIES_SQL = """
SELECT TIMESTAMP_TRUNC(received_at, HOUR) AS hour, COALESCE(project_version, 'unknown') AS project_version,
       reason_label, COUNT(*) AS deactivations
FROM deactivations
WHERE project_hash = @project AND received_at >= @since AND received_at < @until
GROUP BY 1, 2, 3
"""


def load_counts(warehouse: Warehouse, project_hash: str, hour: datetime) -> dict[datetime, Counter]:
    """hour → series key → count, for the windows detect() looks at (BASELINE_WEEKS weeks back)."""
    since = hour - WEEK * BASELINE_WEEKS - timedelta(hours=23)
    frame = warehouse.query(
        _SERIES_SQL, {"project": project_hash, "since": since, "until": hour + timedelta(hours=1)}
    )
    counts: dict[datetime, Counter] = defaultdict(Counter)
    for row in frame.to_dict("records"):
        at = row["hour"].to_pydatetime() if hasattr(row["hour"], "to_pydatetime") else row["hour"]
        at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
        n = int(row["deactivations"])
        counts[at][("all", "")] += n
        counts[at][("version", str(row["project_version"]))] += n
        counts[at][("reason", str(row["reason_label"]))] += n
    return counts


def plan_alerts(
    db: Database,
    warehouse: Warehouse,
    projects: dict[str, Project],
    now: datetime,
    loaded_hours: set[datetime],
) -> Counter[str]:
    """Check each alerting project's last complete loaded hour; enqueue mail and webhook alerts."""
    planned: Counter[str] = Counter()
    last_complete = hour_floor(now) - timedelta(hours=1)
    candidates = [h for h in loaded_hours if last_complete - MAX_CHECK_DELAY <= h <= last_complete]
    if not candidates:
        return planned
    hour = max(candidates)
    for project in projects.values():
        settings = project.notifications
        if settings.alerts != "on":
            continue
        state_id = f"spike:{project.hash}"
        state = db[NOTIFICATION_STATE].find_one({"_id": state_id}) or {}
        last_alert = state.get("last_alert_hour")
        if last_alert is not None:
            last_alert = last_alert.astimezone(UTC) if last_alert.tzinfo else last_alert.replace(tzinfo=UTC)
            if hour - last_alert < COOLDOWN:
                continue
        alert = detect(load_counts(warehouse, project.hash, hour), loaded_hours, hour)
        if alert is None:
            continue
        base = {"project_hash": project.hash, "payload": {"alert": alert}}
        documents = []
        if settings.alerts_to:
            documents.append(
                {"_id": f"alert:{project.hash}:{alert['hour']}", "kind": Kind.alert.value, **base}
            )
        if settings.webhook_url:
            documents.append(
                {
                    "_id": f"webhook:alert.spike:{project.hash}:{alert['hour']}",
                    "kind": Kind.webhook.value,
                    "event": "alert.spike",
                    **base,
                }
            )
        planned[Kind.alert] += enqueue(db[NOTIFICATIONS], documents, now)
        db[NOTIFICATION_STATE].update_one({"_id": state_id}, {"$set": {"last_alert_hour": hour}}, upsert=True)
    return planned
