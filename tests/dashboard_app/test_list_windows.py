"""The list's time windows against a brute-force truth on the real local MongoDB server: paging
forwards to the end and back again yields every matching site exactly once, in (received_at, _id)
order, across exact ties, long quiet stretches and dense bursts, with indexed and residual
filters, whether the published counts that size the first window are right, wrong or absent."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from dashboard_app.filters import ListFilters, day_start
from dashboard_app.state import (
    DAILY_COUNTS,
    HOURLY_COUNTS,
    Cursors,
    list_deactivations,
)
from deactivation.mongo import DEACTIVATIONS, ensure_latest_state_indexes

PROJECT, OTHER = "p" * 8, "q" * 8
BASE = datetime(2026, 3, 1, tzinfo=UTC)


def documents() -> list[dict]:
    rng = random.Random(11)
    made = []
    for i in range(900):
        if i < 300:  # a burst with exact ties, and a few a month later
            received_at = BASE + timedelta(seconds=rng.choice([0, 1, 2, 30 * 86400]) + i // 40)
        elif i < 600:  # a dense cluster 200 days earlier
            received_at = BASE - timedelta(days=200) + timedelta(minutes=rng.randint(0, 90))
        else:  # spread over years
            received_at = BASE - timedelta(days=rng.randint(0, 1200), seconds=rng.randint(0, 86399))
        project = PROJECT if i % 5 else OTHER
        made.append(
            {
                "_id": f"{project}|https://s{i}.example",
                "project_hash": project,
                "site_url": f"https://s{i}.example",
                "event_id": f"{i:04d}",
                "received_at": received_at,
                "reason_id": rng.choice(["a", "b"]),
                "locale": rng.choice(["en_US", "de_DE", "ja"]),
                "reason_info": rng.choice(["", " \t", "x"]),
            }
        )
    return made


def publish_counts(db, made: list[dict], *, scale: float) -> None:
    """Per-hour and per-day counts as the analytics build publishes them, multiplied by `scale`
    (1: right; otherwise wrong, which may only change speed, never the pages)."""
    hourly: dict[tuple, int] = {}
    for d in made:
        key = (d["project_hash"], d["received_at"].replace(minute=0, second=0, microsecond=0), d["reason_id"])
        hourly[key] = hourly.get(key, 0) + 1
    daily: dict[tuple, int] = {}
    for (project, hour, reason), count in hourly.items():
        key = (project, hour.date().isoformat(), reason)
        daily[key] = daily.get(key, 0) + count
    db[HOURLY_COUNTS].insert_many(
        {"project_hash": p, "hour": h, "reason_id": r, "deactivations": round(c * scale)}
        for (p, h, r), c in hourly.items()
    )
    db[DAILY_COUNTS].insert_many(
        {"project_hash": p, "day": d, "reason_id": r, "deactivations": round(c * scale)}
        for (p, d, r), c in daily.items()
    )


def expected(made: list[dict], filters: ListFilters) -> list[str]:
    def wanted(d: dict) -> bool:
        start = day_start(filters.start_day) if filters.start_day else None
        end = day_start(filters.end_day + timedelta(days=1)) if filters.end_day else None
        return (
            d["project_hash"] == PROJECT
            and (filters.reason is None or d["reason_id"] == filters.reason)
            and (filters.locale is None or d["locale"] == filters.locale)
            and (filters.has_text is None or bool(d["reason_info"].strip()) == filters.has_text)
            and (filters.q is None or filters.q in d["site_url"])
            and (start is None or d["received_at"] >= start)
            and (end is None or d["received_at"] < end)
        )

    matching = sorted(
        (d for d in made if wanted(d)), key=lambda d: (d["received_at"], d["_id"]), reverse=True
    )
    return [d["event_id"] for d in matching]


def walk(db, cursors: Cursors, filters: ListFilters, limit: int) -> tuple[list[str], list[str]]:
    """(event ids paging forwards to the end, event ids paging back from there to the start)."""
    forwards, pages, cursor = [], [], None
    while True:
        page = list_deactivations(db, cursors, PROJECT, filters, limit=limit, cursor=cursor, personal=False)
        assert len(page.items) <= limit
        pages.append(page)
        forwards += [item["event_id"] for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    backwards = [item["event_id"] for item in pages[-1].items]
    cursor = pages[-1].previous_cursor
    while cursor is not None:
        page = list_deactivations(db, cursors, PROJECT, filters, limit=limit, cursor=cursor, personal=False)
        backwards = [item["event_id"] for item in page.items] + backwards
        cursor = page.previous_cursor
    return forwards, backwards


FILTERS = [
    ListFilters(),
    ListFilters(reason="a"),
    ListFilters(locale="ja"),
    ListFilters(has_text=True),
    ListFilters(q="s1"),
    ListFilters(start_day=date(2025, 8, 13), end_day=date(2026, 3, 1), reason="b"),
]


@pytest.mark.parametrize("counts", ["absent", "right", "too_low", "too_high"])
def test_paging_both_ways_yields_every_matching_site_once_in_keyset_order(mongo_db, settings, counts):
    made = documents()
    ensure_latest_state_indexes(mongo_db)
    mongo_db[DEACTIVATIONS].insert_many(made)
    if counts != "absent":
        publish_counts(mongo_db, made, scale={"right": 1, "too_low": 0.2, "too_high": 5}[counts])
    cursors = Cursors(settings)
    for filters in FILTERS:
        truth = expected(made, filters)
        assert truth, filters  # every case has something to page through
        for limit in (7, 50):
            forwards, backwards = walk(mongo_db, cursors, filters, limit)
            assert forwards == truth, (filters, limit)
            assert backwards == truth, (filters, limit)


def test_a_site_inserted_while_paging_neither_repeats_nor_hides_another(mongo_db, settings):
    made = documents()
    ensure_latest_state_indexes(mongo_db)
    mongo_db[DEACTIVATIONS].insert_many(made)
    cursors = Cursors(settings)
    first = list_deactivations(
        mongo_db, cursors, PROJECT, ListFilters(), limit=20, cursor=None, personal=False
    )
    mongo_db[DEACTIVATIONS].insert_one(
        {
            "_id": f"{PROJECT}|https://new.example",
            "project_hash": PROJECT,
            "site_url": "https://new.example",
            "event_id": "new",
            "received_at": datetime.now(UTC),
            "reason_id": "a",
            "locale": "ja",
            "reason_info": "",
        }
    )
    seen = [item["event_id"] for item in first.items]
    cursor = first.next_cursor
    while cursor is not None:
        page = list_deactivations(
            mongo_db, cursors, PROJECT, ListFilters(), limit=20, cursor=cursor, personal=False
        )
        seen += [item["event_id"] for item in page.items]
        cursor = page.next_cursor
    assert seen == expected(made, ListFilters())  # the newer site belongs to a new first page
