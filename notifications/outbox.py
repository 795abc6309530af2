"""The outbox and its leases: how a notification is claimed, sent at most once, and recorded.

Every notification is a MongoDB document with a deterministic `_id` (the same deactivation, digest
period or alert hour always gives the same id, so planning twice inserts nothing new). Its life:

    pending ──claim──▶ claimed ──▶ sending ──▶ sent | skipped
       ▲                  │              ├──▶ failed (transient; retried after an exponential back-off)
       │                  │              │      └──▶ dead (after MAX_ATTEMPTS, or a permanent error)
       │   lease expired  │              └──▶ review (lease expired in `sending`: maybe sent; never
       └──────────────────┘                   resent blindly; an operator looks and may retry)

A claim is one conditional update per document (`status` still claimable), so two runners can never
both hold the same notification. A runner marks a small chunk (SENDING_CHUNK) `sending`
(conditionally, while it holds the claim) just before handing its messages to SMTP or HTTP, and
records the chunk's outcomes in one write after. A crash leaves either `claimed` (certainly not
sent: once the lease expires it goes back to the queue) or `sending` (maybe sent: once the lease
expires it goes to `review`, never resent without an operator); at most one chunk is in doubt.
Machine deliveries that are idempotent on the receiving side (list sync upserts a contact by
e-mail) re-queue both.

The same functions drive the pipeline's `mail_outbox` (list sync requests) and this app's
`notifications` collection: both carry `status`, `attempts`, `next_attempt_at` and the lease fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from deactivation.mongo import MAIL_OUTBOX, NOTIFICATIONS
from deactivation.redaction import mask_free_text

#: Watermarks and cool-downs of the planner (one small document per purpose).
NOTIFICATION_STATE = "notification_state"

MAX_ATTEMPTS = 6
#: How often a runner reads new candidates after losing all of them to another runner.
CLAIM_RACES = 20
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
#: Notifications marked `sending` and recorded together: two database writes per chunk instead of
#: two per message; a crash puts at most this many (some maybe never sent) in review.
SENDING_CHUNK = 20
#: How long a claim is held; a batch is sent well within it (a runner sends ~100 mails a second).
LEASE = timedelta(minutes=15)
#: Longest error text kept (it is masked first: SMTP replies can echo addresses).
MAX_ERROR_CHARS = 500


class Status(StrEnum):
    pending = "pending"
    claimed = "claimed"
    sending = "sending"
    sent = "sent"
    skipped = "skipped"
    failed = "failed"
    dead = "dead"
    review = "review"


class Kind(StrEnum):
    forward = "forward"
    auto_reply = "auto_reply"
    digest = "digest"
    alert = "alert"
    webhook = "webhook"
    list_sync = "list_sync"


CLAIMABLE = (Status.pending, Status.failed)
#: Statuses an operator may put back in the queue with `deact notify retry`.
RETRYABLE = (Status.failed, Status.dead, Status.review)


class OutboxError(ValueError):
    """An operator action that does not apply (unknown id, wrong status)."""


@dataclass(frozen=True)
class Lease:
    """One runner's identity and clock for a pass."""

    owner: str
    now: datetime

    @classmethod
    def new(cls, now: datetime | None = None) -> Lease:
        return cls(owner=uuid.uuid4().hex, now=now or datetime.now(UTC))


def ensure_indexes(db: Database) -> None:
    """The indexes claims and leases use, on our outbox and on the pipeline's `mail_outbox`."""
    for name in (NOTIFICATIONS, MAIL_OUTBOX):
        db[name].create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="claimable")
        db[name].create_index("lease_token", name="lease_token", sparse=True)
    db[NOTIFICATIONS].create_index([("project_hash", ASCENDING), ("kind", ASCENDING)], name="project_kind")


def enqueue(collection: Collection, documents: Iterable[Mapping[str, Any]], now: datetime) -> int:
    """Insert notifications that do not exist yet (by `_id`); returns how many were new."""
    operations = [
        UpdateOne(
            {"_id": document["_id"]},
            {
                "$setOnInsert": {
                    **document,
                    "status": Status.pending.value,
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
            },
            upsert=True,
        )
        for document in documents
    ]
    if not operations:
        return 0
    return collection.bulk_write(operations, ordered=False).upserted_count


def _due_filters(now: datetime) -> list[dict[str, Any]]:
    """What is due, as equality-on-status queries the (status, next_attempt_at) index answers
    (an `$in`/`$or` over them makes the local server scan the whole collection). Requests the
    pipeline wrote carry no next_attempt_at: pending with none is due."""
    due = [{"status": status.value, "next_attempt_at": {"$lte": now}} for status in CLAIMABLE]
    return [*due, {"status": Status.pending.value, "next_attempt_at": None}]


def claim_batch(
    collection: Collection, lease: Lease, limit: int, extra_filter: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Claim up to `limit` due notifications for this runner; each one is held by one runner only.

    Candidates are read first, then each is claimed by an update whose filter (by `_id`) re-checks
    that it is still claimable: one another runner claimed in between is simply not matched. What
    this runner actually holds is read back by its lease token.
    """
    for _race in range(CLAIM_RACES):
        candidates: list[dict[str, Any]] = []
        for due in _due_filters(lease.now):
            if len(candidates) >= limit:
                break
            query = {**due, **(extra_filter or {})}
            fields = {"_id": 1, "status": 1, "next_attempt_at": 1}
            candidates += collection.find(query, fields).limit(limit - len(candidates))
        if not candidates:
            return []
        token = uuid.uuid4().hex
        claim = {
            "$set": {
                "status": Status.claimed.value,
                "lease_owner": lease.owner,
                "lease_token": token,
                "claimed_at": lease.now,
                "lease_expires_at": lease.now + LEASE,
            },
            "$inc": {"attempts": 1},
        }
        collection.bulk_write(
            [
                UpdateOne(
                    {"_id": c["_id"], "status": c["status"], "next_attempt_at": c.get("next_attempt_at")},
                    claim,
                )
                for c in candidates
            ],
            ordered=False,
        )
        claimed = list(collection.find({"lease_token": token, "status": Status.claimed.value}))
        if claimed:
            return claimed
        # Another runner claimed these very candidates first: the next read finds others.
    return []


def mark_sending(collection: Collection, documents: list[Mapping[str, Any]], lease: Lease) -> set[str]:
    """Just before handing a chunk over: from here on a crash means "maybe sent" for these.
    Returns the ids this runner still held (a claim lost to expiry is not ours to send)."""
    if not documents:
        return set()
    mark = {"$set": {"status": Status.sending.value}}
    held_filter = {"status": Status.claimed.value, "lease_owner": lease.owner}
    marked = collection.bulk_write(
        [UpdateOne({"_id": d["_id"], **held_filter}, mark) for d in documents], ordered=False
    )
    ids = {document["_id"] for document in documents}
    if marked.modified_count == len(ids):
        return ids  # the usual case: every claim still ours (saves a read per chunk)
    token = documents[0]["lease_token"]
    held = collection.find({"lease_token": token, "status": Status.sending.value}, {"_id": 1})
    return {document["_id"] for document in held} & ids


@dataclass(frozen=True)
class Outcome:
    """What became of one notification: its new status and the fields to record."""

    notification_id: str
    status: Status
    update: dict[str, Any]


def sent(document: Mapping[str, Any]) -> Outcome:
    return Outcome(document["_id"], Status.sent, {"sent_at": datetime.now(UTC)})


def skipped(document: Mapping[str, Any], reason: str) -> Outcome:
    return Outcome(document["_id"], Status.skipped, {"skip_reason": reason, "finished_at": datetime.now(UTC)})


def failed(
    document: Mapping[str, Any],
    lease: Lease,
    error: str,
    *,
    permanent: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> Outcome:
    """A failed attempt: `failed` with the next attempt after an exponential back-off, or `dead`
    (with the last error) once attempts are used up or the error is permanent."""
    attempts = int(document.get("attempts", 1))
    status = Status.dead if permanent or attempts >= max_attempts else Status.failed
    update: dict[str, Any] = {"last_error": clean_error(error)}
    if status is Status.failed:
        update["next_attempt_at"] = lease.now + backoff(attempts)
    else:
        update["finished_at"] = datetime.now(UTC)
    return Outcome(document["_id"], status, update)


def unknown(document: Mapping[str, Any], error: str) -> Outcome:
    """The outcome is unknown (the connection dropped after the message was handed over)."""
    return Outcome(
        document["_id"], Status.review, {"last_error": clean_error(error), "finished_at": datetime.now(UTC)}
    )


def record(collection: Collection, outcomes: list[Outcome], lease: Lease) -> int:
    """Record outcomes in one write, each only while this runner still holds its claim."""
    if not outcomes:
        return 0
    operations = [
        UpdateOne(
            {
                "_id": outcome.notification_id,
                "status": {"$in": [Status.claimed.value, Status.sending.value]},
                "lease_owner": lease.owner,
            },
            {"$set": {**outcome.update, "status": outcome.status.value}, "$unset": {"lease_token": ""}},
        )
        for outcome in outcomes
    ]
    return collection.bulk_write(operations, ordered=False).modified_count


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after the 1st, 2nd, 3rd … failed attempt, at most BACKOFF_CAP."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def clean_error(error: str) -> str:
    """An error text fit to store and show: addresses and URLs masked, bounded."""
    return mask_free_text(str(error))[:MAX_ERROR_CHARS]


def expire_claims(collection: Collection, now: datetime, *, requeue: bool = False) -> int:
    """Leases that ran out without a result. `claimed` (never handed over) goes back to the queue;
    `sending` (maybe sent) goes to `review`, or back to the queue too when `requeue` is set (the
    delivery is idempotent on the receiving side). Returns how many went to review."""
    expired = {"lease_expires_at": {"$lt": now}}
    back = {"status": Status.failed.value, "next_attempt_at": now, "last_error": "lease expired"}
    requeued = [Status.claimed, Status.sending] if requeue else [Status.claimed]
    for status in requeued:  # one equality query each: the status index answers it
        collection.update_many(
            {"status": status.value, **expired}, {"$set": back, "$unset": {"lease_token": ""}}
        )
    if requeue:
        return 0
    review = {
        "status": Status.review.value,
        "last_error": "lease expired while sending, no result recorded: maybe sent; not resent",
        "finished_at": now,
    }
    return collection.update_many(
        {"status": Status.sending.value, **expired}, {"$set": review, "$unset": {"lease_token": ""}}
    ).modified_count


def retry(collection: Collection, notification_id: str, now: datetime) -> dict[str, Any]:
    """Put a failed, dead or review notification back in the queue (an operator's decision)."""
    document = collection.find_one_and_update(
        {"_id": notification_id, "status": {"$in": [s.value for s in RETRYABLE]}},
        {
            "$set": {"status": Status.pending.value, "next_attempt_at": now, "attempts": 0},
            "$push": {"operator_retries": now},
        },
    )
    if document is None:
        found = collection.find_one({"_id": notification_id}, {"status": 1})
        if found is None:
            raise OutboxError(f"no notification with id {notification_id!r}")
        raise OutboxError(
            f"notification {notification_id!r} is {found['status']}; only "
            f"{', '.join(s.value for s in RETRYABLE)} can be retried"
        )
    return document


def count_by_status(collection: Collection) -> dict[str, int]:
    return {
        row["_id"]: row["count"]
        for row in collection.aggregate([{"$group": {"_id": "$status", "count": {"$sum": 1}}}])
    }
