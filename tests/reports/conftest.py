"""Fixtures for analytics tests: expected aggregates computed from the generator's own record.

The expectations are plain-Python counts over `Truth.events`, never SQL, so a wrong query cannot
agree with itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace

import pandas as pd
import pytest

from deactivation.generator import DEMO_PROJECTS, TruthEvent
from deactivation.schemas import DEACTIVATIONS, HOUR_LOADS
from deactivation.warehouse import open_warehouse, rows_to_arrow

# The stop words the top-terms summary leaves out (kept here on purpose, not imported).
_STOP_WORD_TEXT = """
    about after again all also and any are back because been but can could did does doesn don
    for from get had has have how into its just more most much not now off only other our out
    please plugin same some still such than that the their them then there these they this too
    use using very was way were what when which while who why will with would you your
"""
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())
PROJECT_KIND = {p.hash: p.kind for p in DEMO_PROJECTS}


def major_minor(version: str | None) -> str:
    return ".".join(version.split(".")[:2]) if version else "unknown"


def server_name(software: str | None) -> str:
    return software.split("/")[0].strip().lower() if software else "unknown"


def answer_terms(text: str) -> list[str]:
    cleaned = re.sub(r"\S+@\S+|\S*://\S*|\S+\.\S+", " ", text.lower())
    return [word for word in re.findall(r"[^\W\d_]{3,}", cleaned) if word not in STOP_WORDS]


def warehouse_rows(events: Iterable[TruthEvent]) -> list[dict]:
    """What the pipeline writes into `deactivations` for these events (as the tests understand it)."""
    return [
        {
            "event_id": e.event_id,
            "raw_hour": e.hour,
            "received_at": e.received_at,
            "project_hash": e.project_hash,
            "project_kind": PROJECT_KIND[e.project_hash],
            "site_url": e.site_url,
            "reason_id": e.reason_id,
            "reason_label": e.reason_label,
            "reason_info": e.reason_info,
            "project_version": e.project_version,
            "wp_version": e.wp_version,
            "wp_version_mm": major_minor(e.wp_version),
            "php_version": e.php_version,
            "php_version_mm": major_minor(e.php_version),
            "locale": e.locale,
            "server_software": e.server_software,
        }
        for e in events
    ]


def load_events(settings, events: list[TruthEvent], hours: Iterable[datetime], loaded_at: datetime) -> None:
    """Replace the given raw hours of the warehouse with these events, as a pipeline run would."""
    hours = sorted(set(hours))
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables()
    in_hours = [e for e in events if e.hour in hours]
    loads = [
        {
            "raw_hour": hour,
            "loaded_at": loaded_at,
            "files": 1,
            "records_read": sum(e.hour == hour for e in in_hours),
            "deactivations": sum(e.hour == hour for e in in_hours),
            "sites": 0,
            "errors": 0,
        }
        for hour in hours
    ]
    warehouse.replace_hours(
        hours,
        {
            DEACTIVATIONS.name: rows_to_arrow(DEACTIVATIONS, warehouse_rows(in_hours)),
            HOUR_LOADS.name: rows_to_arrow(HOUR_LOADS, loads),
        },
    )


def expected_aggregates(
    events: list[TruthEvent], dead_letters: Counter | None = None
) -> dict[str, dict[tuple, tuple]]:
    """Every aggregate, key → values, counted from the generator's record."""
    labels = {(e.project_hash, e.reason_id): e.reason_label for e in events}
    by_hour = Counter((e.project_hash, e.hour, e.reason_id) for e in events)
    by_day = Counter((e.project_hash, e.day, e.reason_id) for e in events)
    hour_totals = Counter((e.project_hash, e.hour) for e in events)
    day_totals = Counter((e.project_hash, e.day) for e in events)

    def environment(e: TruthEvent) -> list[tuple[str, str]]:
        return [
            ("wp_version", major_minor(e.wp_version)),
            ("php_version", major_minor(e.php_version)),
            ("locale", e.locale or "unknown"),
            ("server_software", server_name(e.server_software)),
        ]

    terms = Counter(
        (e.project_hash, e.day, e.reason_id, term) for e in events for term in answer_terms(e.reason_info)
    )
    return {
        "hourly_reason_counts": {
            (p, h, r): (labels[p, r], n, n / hour_totals[p, h]) for (p, h, r), n in by_hour.items()
        },
        "daily_reason_counts": {
            (p, d, r): (labels[p, r], n, n / day_totals[p, d]) for (p, d, r), n in by_day.items()
        },
        "hourly_version_reason_counts": {
            (p, h, v, r): (labels[p, r], n)
            for (p, h, v, r), n in Counter(
                (e.project_hash, e.hour, e.project_version, e.reason_id) for e in events
            ).items()
        },
        "daily_version_reason_counts": {
            (p, d, v, r): (labels[p, r], n)
            for (p, d, v, r), n in Counter(
                (e.project_hash, e.day, e.project_version, e.reason_id) for e in events
            ).items()
        },
        "hourly_environment_counts": {
            key: (n,)
            for key, n in Counter(
                (e.project_hash, e.hour, dim, value) for e in events for dim, value in environment(e)
            ).items()
        },
        "daily_environment_counts": {
            key: (n,)
            for key, n in Counter(
                (e.project_hash, e.day, dim, value) for e in events for dim, value in environment(e)
            ).items()
        },
        "daily_reason_terms": {(p, d, r, t): (labels[p, r], n) for (p, d, r, t), n in terms.items()},
        "daily_free_text_counts": {
            (p, d): (n, sum(1 for e in events if (e.project_hash, e.day) == (p, d) and e.reason_info.strip()))
            for (p, d), n in day_totals.items()
        },
        # (project, day, type) → count: the generator's record of its bad events; none when only
        # deactivations were loaded (load_events).
        "daily_dead_letter_counts": {key: (n,) for key, n in (dead_letters or {}).items()},
    }


# Column order of each aggregate: key columns, then value columns.
AGGREGATE_COLUMNS = {
    "hourly_reason_counts": (
        ("project_hash", "hour", "reason_id"),
        ("reason_label", "deactivations", "share"),
    ),
    "daily_reason_counts": (("project_hash", "day", "reason_id"), ("reason_label", "deactivations", "share")),
    "hourly_version_reason_counts": (
        ("project_hash", "hour", "project_version", "reason_id"),
        ("reason_label", "deactivations"),
    ),
    "daily_version_reason_counts": (
        ("project_hash", "day", "project_version", "reason_id"),
        ("reason_label", "deactivations"),
    ),
    "hourly_environment_counts": (("project_hash", "hour", "dimension", "value"), ("deactivations",)),
    "daily_environment_counts": (("project_hash", "day", "dimension", "value"), ("deactivations",)),
    "daily_reason_terms": (("project_hash", "day", "reason_id", "term"), ("reason_label", "mentions")),
    "daily_free_text_counts": (("project_hash", "day"), ("deactivations", "with_text")),
    "daily_dead_letter_counts": (("project_hash", "day", "error_type"), ("dead_letters",)),
}


def _python_value(value):
    if isinstance(value, (pd.Timestamp, datetime)):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
        return stamp.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def actual_aggregates(settings) -> dict[str, dict[tuple, tuple]]:
    """Every aggregate table as read back from the warehouse, key → values."""
    warehouse = open_warehouse(settings)
    result = {}
    for name, (key_columns, value_columns) in AGGREGATE_COLUMNS.items():
        frame = warehouse.query(f"SELECT * FROM {name}")
        rows = {}
        for record in frame.to_dict("records"):
            values = {k: _python_value(v) for k, v in record.items()}
            if "day" in values and isinstance(values["day"], datetime):
                values["day"] = values["day"].date()
            key = tuple(values[c] for c in key_columns)
            assert key not in rows, f"{name}: duplicate key {key}"
            rows[key] = tuple(values[c] for c in value_columns)
        result[name] = rows
    return result


def assert_aggregates_equal(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        missing = expected[name].keys() - actual[name].keys()
        extra = actual[name].keys() - expected[name].keys()
        assert not missing and not extra, f"{name}: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}"
        wrong = {k: (actual[name][k], v) for k, v in expected[name].items() if actual[name][k] != v}
        assert not wrong, f"{name}: {len(wrong)} rows differ, e.g. {list(wrong.items())[:3]}"


@pytest.fixture(scope="session")
def truth():
    """The helpers above, for tests (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        load_events=load_events,
        expected_aggregates=expected_aggregates,
        actual_aggregates=actual_aggregates,
        assert_aggregates_equal=assert_aggregates_equal,
        answer_terms=answer_terms,
    )
