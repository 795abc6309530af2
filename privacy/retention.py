"""Retention: remove what is older than its limit (settings RETENTION_*), in every store.

What "older than the limit" means, exactly (the boundary the tests check): with `cutoff = now - limit`,

* a raw hour folder, and the warehouse rows of a raw hour, go when the whole hour lies before the
  cutoff: hour start < hour_floor(cutoff) (its last record is older than the limit);
* a MongoDB document goes when its timestamp < cutoff.

Raw store routes: deactivate/ (RETENTION_RAW_DAYS), track/ and tracking-skipped/
(RETENTION_TRACKING_DAYS), rejected/ (RETENTION_REJECTED_DAYS). Warehouse history tables
(RETENTION_WAREHOUSE_DAYS; BigQuery: also set partition expiration, docs/privacy.md). MongoDB: latest
state (RETENTION_LATEST_STATE_DAYS), mail_outbox (RETENTION_OUTBOX_DAYS, by `received_at`),
notifications (RETENTION_NOTIFICATION_DAYS, by `created_at`). Aggregates hold counts only and stay.

Every step is idempotent: a run that fails halfway is finished by the next.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from deactivation.envelope import REJECTED_PREFIX
from deactivation.hours import format_hour, hour_floor
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, NOTIFICATIONS, SITES, connect
from deactivation.raw_store import open_raw_store
from deactivation.schemas import HISTORY_TABLES
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse

log = logging.getLogger(__name__)


class RetentionSummary(BaseModel):
    """What one retention run removed (or would remove, with dry_run), and the limits it applied."""

    now: datetime
    dry_run: bool
    #: store → the oldest time kept (an hour for hour-foldered stores, an instant for MongoDB)
    kept_from: dict[str, str]
    raw_hours: dict[str, int]
    raw_files: dict[str, int]
    warehouse_rows: dict[str, int]
    mongo_documents: dict[str, int]
    seconds: float = 0.0


def raw_limits(settings: Settings) -> dict[str, int]:
    """Days kept per raw store prefix."""
    return {
        "deactivate": settings.RETENTION_RAW_DAYS,
        "track": settings.RETENTION_TRACKING_DAYS,
        "tracking-skipped": settings.RETENTION_TRACKING_DAYS,
        REJECTED_PREFIX: settings.RETENTION_REJECTED_DAYS,
    }


def mongo_limits(settings: Settings) -> dict[str, tuple[int, str]]:
    """(days kept, timestamp field) per MongoDB collection."""
    return {
        DEACTIVATIONS: (settings.RETENTION_LATEST_STATE_DAYS, "received_at"),
        SITES: (settings.RETENTION_LATEST_STATE_DAYS, "received_at"),
        MAIL_OUTBOX: (settings.RETENTION_OUTBOX_DAYS, "received_at"),
        NOTIFICATIONS: (settings.RETENTION_NOTIFICATION_DAYS, "created_at"),
    }


def first_hour_kept(now: datetime, days: int) -> datetime:
    """The oldest hour folder (or raw_hour) a limit of `days` keeps: any hour before it is wholly older."""
    return hour_floor(now - timedelta(days=days))


def apply_retention(
    settings: Settings, *, now: datetime | None = None, dry_run: bool = False
) -> RetentionSummary:
    """Remove (or, with dry_run, count) everything past its limit at `now` (default: the current time)."""
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    kept_from: dict[str, str] = {}
    raw_hours, raw_files = expire_raw(settings, now, dry_run, kept_from)
    warehouse_rows = expire_warehouse(settings, now, dry_run, kept_from)
    mongo_documents = expire_mongo(settings, now, dry_run, kept_from)
    summary = RetentionSummary(
        now=now,
        dry_run=dry_run,
        kept_from=kept_from,
        raw_hours=raw_hours,
        raw_files=raw_files,
        warehouse_rows=warehouse_rows,
        mongo_documents=mongo_documents,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "retention%s: %d raw files, %d warehouse rows, %d documents",
        " (dry run)" if dry_run else "",
        sum(raw_files.values()),
        sum(warehouse_rows.values()),
        sum(mongo_documents.values()),
    )
    return summary


def expire_raw(
    settings: Settings, now: datetime, dry_run: bool, kept_from: dict[str, str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Hour folders past each prefix's limit: (hours, files) removed per prefix."""
    store = open_raw_store(settings)
    raw_hours: dict[str, int] = {}
    raw_files: dict[str, int] = {}
    for prefix, days in raw_limits(settings).items():
        keep_from = first_hour_kept(now, days)
        kept_from[f"raw:{prefix}"] = format_hour(keep_from)
        old_hours = list(store.list_hours(prefix, before=keep_from))
        raw_hours[prefix] = len(old_hours)
        raw_files[prefix] = sum(
            len(store.list_hour(prefix, hour)) if dry_run else store.delete_hour(prefix, hour)
            for hour in old_hours
        )
    return raw_hours, raw_files


def expire_warehouse(
    settings: Settings, now: datetime, dry_run: bool, kept_from: dict[str, str]
) -> dict[str, int]:
    """History rows of raw hours past the limit, in one transaction: rows removed per table."""
    warehouse = open_warehouse(settings)
    keep_from = first_hour_kept(now, settings.RETENTION_WAREHOUSE_DAYS)
    kept_from["warehouse"] = format_hour(keep_from)
    tables = [table.name for table in HISTORY_TABLES if warehouse.table_exists(table.name)]
    if not tables:
        return {table.name: 0 for table in HISTORY_TABLES}
    counted = warehouse.query(
        "\nUNION ALL\n".join(
            f"SELECT '{name}' AS table_name, COUNT(*) AS n FROM {name} WHERE raw_hour < @keep_from"
            for name in tables
        ),
        {"keep_from": keep_from},
    )
    rows = {table.name: 0 for table in HISTORY_TABLES} | {
        r.table_name: int(r.n) for r in counted.itertuples()
    }
    if not dry_run and any(rows.values()):
        statements = [f"DELETE FROM {name} WHERE raw_hour < @keep_from" for name in tables]
        warehouse.run_script(statements, {"keep_from": keep_from})
    return rows


def expire_mongo(
    settings: Settings, now: datetime, dry_run: bool, kept_from: dict[str, str]
) -> dict[str, int]:
    """Documents older than each collection's limit: documents removed per collection."""
    documents: dict[str, int] = {}
    client = connect(settings)
    try:
        db = client[settings.MONGODB_DB]
        for collection, (days, field) in mongo_limits(settings).items():
            cutoff = now - timedelta(days=days)
            kept_from[f"mongo:{collection}"] = cutoff.isoformat()
            query = {field: {"$lt": cutoff}}
            if dry_run:
                documents[collection] = db[collection].count_documents(query)
            else:
                documents[collection] = db[collection].delete_many(query).deleted_count
    finally:
        client.close()
    return documents
