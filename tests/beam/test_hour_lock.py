"""The lease per raw hour that serialises pipeline runs (beam/hour_lock.py), on the real local MongoDB."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from beam.hour_lock import HourLease, HoursLockedError, LeaseLostError, hours_locked
from deactivation.mongo import PIPELINE_LOCKS

H1 = datetime(2026, 11, 28, 1, tzinfo=UTC)
H2, H3 = H1 + timedelta(hours=1), H1 + timedelta(hours=2)


def lease(mongo_db, hours, owner: str, seconds: float = 60.0) -> HourLease:
    return HourLease(mongo_db[PIPELINE_LOCKS], hours, owner, seconds)


def test_a_held_hour_blocks_another_run_which_gives_back_what_it_took(mongo_db):
    first = lease(mongo_db, [H1, H2], "host-a:1:aa")
    first.acquire(wait_seconds=0)

    second = lease(mongo_db, [H2, H3], "host-b:2:bb")
    with pytest.raises(HoursLockedError) as raised:
        second.acquire(wait_seconds=0)

    message = str(raised.value)
    assert "hours 2026-11-28T02..2026-11-28T03 (2 hours) are being processed by another run" in message
    assert "hour 2026-11-28T02 is held by host-a:1:aa (lease until " in message
    held = {d["_id"]: d["owner"] for d in mongo_db[PIPELINE_LOCKS].find()}
    assert held == {"2026-11-28T01": "host-a:1:aa", "2026-11-28T02": "host-a:1:aa"}  # no hold-and-wait


def test_an_expired_lease_is_taken_over_and_its_old_holder_may_not_commit(mongo_db):
    crashed = lease(mongo_db, [H1], "host-a:1:aa")
    crashed.acquire(wait_seconds=0)
    mongo_db[PIPELINE_LOCKS].update_one(
        {"_id": "2026-11-28T01"}, {"$set": {"expires_at": datetime(2026, 1, 1, tzinfo=UTC)}}
    )

    taker = lease(mongo_db, [H1], "host-b:2:bb")
    taker.acquire(wait_seconds=0)

    assert mongo_db[PIPELINE_LOCKS].find_one({"_id": "2026-11-28T01"})["owner"] == "host-b:2:bb"
    taker.assert_held()
    with pytest.raises(LeaseLostError, match="taken over by another run"):
        crashed.assert_held()


def test_a_waiting_run_gets_the_hours_once_they_are_given_back(mongo_db):
    with hours_locked(mongo_db, [H1], wait_seconds=0, lease_seconds=60) as held:
        held.assert_held()
        with pytest.raises(HoursLockedError):
            lease(mongo_db, [H1], "host-b:2:bb").acquire(wait_seconds=0.5)
    assert mongo_db[PIPELINE_LOCKS].count_documents({}) == 0

    waiting = lease(mongo_db, [H1], "host-b:2:bb")
    waiting.acquire(wait_seconds=0)
    waiting.assert_held()


def test_the_lease_is_renewed_in_the_background(mongo_db):
    with hours_locked(mongo_db, [H1], wait_seconds=0, lease_seconds=6) as held:
        first_expiry = mongo_db[PIPELINE_LOCKS].find_one({"_id": "2026-11-28T01"})["expires_at"]
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while datetime.now(UTC) < deadline:
            if mongo_db[PIPELINE_LOCKS].find_one({"_id": "2026-11-28T01"})["expires_at"] > first_expiry:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the lease was not renewed within 10 s (renewal every 2 s)")
        held.assert_held()
