"""One pipeline run per raw hour at a time: a lease document per hour in MongoDB `pipeline_locks`.

The hourly deployment and a backfill (or an operator's re-run) may reach the same hours together.
Each run takes a lease on every hour of its window before it reads anything: a document
``{_id: "YYYY-MM-DDTHH", owner, holder, acquired_at, expires_at}`` per hour. A hour whose lease is
held by another run and not expired blocks: the run gives back what it took (no hold-and-wait, so
two runs with overlapping windows cannot deadlock), waits and tries again, up to
PIPELINE_LOCK_WAIT_SECONDS, then exits with `HoursLockedError` naming the hours and the holder.

A thread renews the leases every third of PIPELINE_LOCK_LEASE_SECONDS, so a long run keeps them
and a crashed run frees its hours once its leases expire. Before the warehouse commit the run
checks that it still holds every lease (`assert_held`): a run that lost its lease, or cannot
reach MongoDB, commits nothing. Expiry compares this host's clock with the one that wrote the
lease; the lease lifetime (minutes) dwarfs the clock skew of hosts kept by NTP.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from deactivation.hours import describe_hours, format_hour, parse_hour
from deactivation.mongo import PIPELINE_LOCKS

log = logging.getLogger(__name__)

#: How often a waiting run looks again whether the hours it needs are free.
POLL_SECONDS = 1.0


class HoursLockedError(RuntimeError):
    """Another run holds some of the hours; the message names them and the holder."""


class LeaseLostError(RuntimeError):
    """The run no longer holds its hours (its lease expired and another run took it, or MongoDB is
    unreachable), so it must not commit."""


def run_owner() -> str:
    """Who holds a lease: host, process and a per-run nonce (a process may run twice)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class HourLease:
    """The leases of one run on a set of hours."""

    def __init__(self, collection: Collection, hours: Sequence[datetime], owner: str, lease_seconds: float):
        self.collection = collection
        self.keys = sorted({format_hour(h) for h in hours})
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self._renewal_failure: BaseException | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- taking and giving back ------------------------------------------------------------------

    def acquire(self, wait_seconds: float) -> None:
        """Take every hour's lease, waiting up to `wait_seconds` for hours another run holds."""
        deadline = time.monotonic() + wait_seconds
        waited = False
        while True:
            blocked = self._try_acquire_all()
            if blocked is None:
                if waited:
                    log.info("pipeline lock: hours %s free again, taken", self._describe())
                return
            if time.monotonic() >= deadline:
                raise HoursLockedError(self._locked_message(blocked, wait_seconds))
            if not waited:
                log.info(
                    "pipeline lock: hour %s held by %s; waiting up to %.0fs",
                    blocked["_id"],
                    blocked.get("holder"),
                    wait_seconds,
                )
                waited = True
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _try_acquire_all(self) -> dict | None:
        """Take each hour in order; on the first one held by another run give back what was taken
        and return that hour's lease document (None: all taken)."""
        taken: list[str] = []
        for key in self.keys:
            if not self._take(key):
                self._give_back(taken)
                return self.collection.find_one({"_id": key}) or {"_id": key}
            taken.append(key)
        return None

    def _take(self, key: str) -> bool:
        now = datetime.now(UTC)
        lease = {
            "owner": self.owner,
            "holder": self.owner,
            "acquired_at": now,
            "expires_at": now + self.lease,
        }
        try:
            self.collection.insert_one({"_id": key, **lease})
            return True
        except DuplicateKeyError:
            pass
        # Held already: ours (a retried acquire), or expired (its run died): take it over.
        taken = self.collection.update_one(
            {"_id": key, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]}, {"$set": lease}
        )
        return taken.matched_count == 1

    def _give_back(self, keys: Sequence[str]) -> None:
        if keys:
            self.collection.delete_many({"_id": {"$in": list(keys)}, "owner": self.owner})

    def release(self) -> None:
        """Give back every hour; when MongoDB is unreachable the leases simply expire."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            self._give_back(self.keys)
        except PyMongoError as exc:
            log.warning("pipeline lock: could not release hours %s (%s); they expire", self._describe(), exc)

    # --- keeping ---------------------------------------------------------------------------------

    def renew(self) -> None:
        """Push every lease's expiry forward; LeaseLostError if one is no longer ours."""
        now = datetime.now(UTC)
        renewed = self.collection.update_many(
            {"_id": {"$in": self.keys}, "owner": self.owner}, {"$set": {"expires_at": now + self.lease}}
        )
        if renewed.matched_count != len(self.keys):
            raise LeaseLostError(f"the lease on hours {self._describe()} was taken over by another run")

    def start_renewing(self) -> None:
        interval = self.lease.total_seconds() / 3

        def renew_until_stopped() -> None:
            while not self._stop.wait(interval):
                try:
                    self.renew()
                except (LeaseLostError, PyMongoError) as exc:
                    self._renewal_failure = exc
                    log.error("pipeline lock: renewal failed for hours %s: %s", self._describe(), exc)
                    return

        self._renewer = threading.Thread(target=renew_until_stopped, name="hour-lease-renewal", daemon=True)
        self._renewer.start()

    def assert_held(self) -> None:
        """Raise LeaseLostError unless this run still holds every hour (checked in MongoDB)."""
        if self._renewal_failure is not None:
            raise LeaseLostError(
                f"the lease on hours {self._describe()} could not be renewed: {self._renewal_failure}"
            )
        try:
            self.renew()
        except PyMongoError as exc:
            raise LeaseLostError(
                f"cannot confirm the lease on hours {self._describe()}: MongoDB unreachable ({exc})"
            ) from exc

    # --- messages --------------------------------------------------------------------------------

    def _describe(self) -> str:
        if not self.keys:
            return "(none)"
        return describe_hours([parse_hour(key) for key in self.keys])

    def _locked_message(self, blocked: dict, waited: float) -> str:
        expires = blocked.get("expires_at")
        until = f" (lease until {expires:%Y-%m-%dT%H:%M:%SZ})" if isinstance(expires, datetime) else ""
        return (
            f"hours {self._describe()} are being processed by another run: hour {blocked['_id']} is "
            f"held by {blocked.get('holder', 'an unknown run')}{until}; waited {waited:.0f}s "
            "(PIPELINE_LOCK_WAIT_SECONDS). Run again once it has finished."
        )


@contextlib.contextmanager
def hours_locked(
    db: Database,
    hours: Sequence[datetime],
    *,
    wait_seconds: float,
    lease_seconds: float,
    owner: str | None = None,
) -> Iterator[HourLease]:
    """Hold the leases on `hours` for the block (renewed in the background), give them back after."""
    lease = HourLease(db[PIPELINE_LOCKS], hours, owner or run_owner(), lease_seconds)
    lease.acquire(wait_seconds)
    lease.start_renewing()
    try:
        yield lease
    finally:
        lease.release()
