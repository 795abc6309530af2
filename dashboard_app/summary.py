"""The overview's numbers, from the aggregates the analytics build publishes to MongoDB.

No warehouse query: `daily_reason_counts` gives totals, days and reasons; `daily_free_text_counts`
the share of answers with free text; `daily_dead_letter_counts` the data-quality panel.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from pymongo.database import Database

from dashboard_app.charts import LoadedAggregates, published_version

TOP_REASONS = 5


def _days(start_day: date, end_day: date) -> list[date]:
    return [start_day + timedelta(days=i) for i in range((end_day - start_day).days + 1)]


def _in_range(start_day: date, end_day: date) -> dict[str, str]:
    return {"$gte": start_day.isoformat(), "$lte": end_day.isoformat()}


def project_summary(db: Database, project_hash: str, start_day: date, end_day: date) -> dict[str, Any]:
    """Totals, per day, top reasons and the change against the previous period of the same length
    (cached per project, period and published version, like the charts' rows)."""
    key = ("summary", db.name, project_hash, start_day, end_day, published_version(db))
    return _cached(key, lambda: _project_summary(db, project_hash, start_day, end_day))


def dead_letters_by_day(db: Database, start_day: date, end_day: date) -> dict[str, Any]:
    """Every project's rejected records per day and dead-letter type (operators only; cached)."""
    key = ("dead_letters", db.name, start_day, end_day, published_version(db))
    return _cached(key, lambda: _dead_letters_by_day(db, start_day, end_day))


def _cached(key: tuple, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    found = _ANSWERS.get(key)
    if found is None:
        found = compute()
        _ANSWERS.put(key, found)
    return copy.deepcopy(found)  # callers may add to their answer; the cached one stays as it was


_ANSWERS = LoadedAggregates(size=256)


def _project_summary(db: Database, project_hash: str, start_day: date, end_day: date) -> dict[str, Any]:
    length = (end_day - start_day).days + 1
    previous_end = start_day - timedelta(days=1)
    previous_start = previous_end - timedelta(days=length - 1)
    per_day: Counter[str] = Counter()
    previous_total = 0
    reasons: dict[str, list[Any]] = {}
    documents = db["daily_reason_counts"].find(
        {"project_hash": project_hash, "day": _in_range(previous_start, end_day)},
        {"day": 1, "reason_id": 1, "reason_label": 1, "deactivations": 1},
    )
    for document in documents:
        count = int(document["deactivations"])
        if document["day"] < start_day.isoformat():
            previous_total += count
            continue
        per_day[document["day"]] += count
        reason = reasons.setdefault(document["reason_id"], [document["reason_label"], 0])
        reason[1] += count
    total = sum(per_day.values())
    with_text = 0
    for document in db["daily_free_text_counts"].find(
        {"project_hash": project_hash, "day": _in_range(start_day, end_day)}, {"with_text": 1}
    ):
        with_text += int(document["with_text"])
    top = sorted(reasons.items(), key=lambda item: (-item[1][1], item[0]))[:TOP_REASONS]
    return {
        "from": start_day.isoformat(),
        "to": end_day.isoformat(),
        "total": total,
        "previous": {
            "from": previous_start.isoformat(),
            "to": previous_end.isoformat(),
            "total": previous_total,
        },
        "change": round((total - previous_total) / previous_total, 4) if previous_total else None,
        "per_day": [
            {"day": d.isoformat(), "deactivations": per_day[d.isoformat()]} for d in _days(start_day, end_day)
        ],
        "top_reasons": [
            {
                "reason_id": reason_id,
                "reason_label": label,
                "deactivations": count,
                "share": round(count / total, 4) if total else 0.0,
            }
            for reason_id, (label, count) in top
        ],
        "with_text": with_text,
        "with_text_share": round(with_text / total, 4) if total else None,
    }


def _dead_letters_by_day(db: Database, start_day: date, end_day: date) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for document in db["daily_dead_letter_counts"].find(
        {"day": _in_range(start_day, end_day)}, {"day": 1, "error_type": 1, "dead_letters": 1}
    ):
        counts[document["error_type"]][document["day"]] += int(document["dead_letters"])
    days = [d.isoformat() for d in _days(start_day, end_day)]
    return {
        "days": days,
        "by_type": {
            error_type: [per_day[day] for day in days] for error_type, per_day in sorted(counts.items())
        },
        "total": sum(sum(per_day.values()) for per_day in counts.values()),
    }
