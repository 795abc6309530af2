"""Hourly analytics: turn warehouse history into aggregates, then publish them to MongoDB.

Incremental by a watermark kept in the warehouse (`analytics_builds`): the hours whose
`hour_loads.loaded_at` is newer than the last build's watermark are the ones the pipeline
(re)loaded since, so only those raw hours, and the UTC days containing them, are rebuilt. Each
aggregate's affected slices are deleted and re-inserted, all aggregates in one warehouse
transaction, so a failed build changes nothing and a full rebuild gives the same rows. MongoDB
gets each aggregate in a collection of the same name: documents upserted by key, and documents of
a rebuilt slice whose key disappeared deleted. The new watermark is recorded only after publishing
succeeded: a build that fails halfway is simply redone by the next run (rebuilding is idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel
from pymongo import ASCENDING, ReplaceOne
from pymongo.database import Database

from deactivation.mongo import ANALYTICS_PUBLISHED, PUBLISHED_MARKER_ID, connect
from deactivation.schemas import ALL_TABLES
from deactivation.settings import Settings
from deactivation.warehouse import Warehouse, open_warehouse
from reports.aggregates import AGGREGATES, ANALYTICS_BUILDS, Aggregate

log = logging.getLogger(__name__)

MONGO_BATCH = 1000


class AnalyticsSummary(BaseModel):
    full: bool
    hours_rebuilt: list[str]
    days_rebuilt: list[str]
    tables: dict[str, int]
    published: dict[str, int]
    watermark: str | None
    seconds: float
    warehouse_seconds: float
    publish_seconds: float


class RebuildPlan(BaseModel):
    full: bool
    hours: list[datetime]
    days: list[date]
    watermark: datetime | None


def build_analytics(
    settings: Settings,
    *,
    since: datetime | None = None,
    full: bool = False,
    publish: bool = True,
) -> AnalyticsSummary:
    """Rebuild the aggregates the pipeline's loads touched since the last build.

    `since` adds every loaded raw hour from that hour on; `full` rebuilds everything.
    """
    started = time.perf_counter()
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables([*ALL_TABLES.values(), *(a.table for a in AGGREGATES), ANALYTICS_BUILDS])
    plan = plan_rebuild(warehouse, since=since, full=full)
    tables: dict[str, int] = {}
    if plan.hours:
        warehouse.run_script(_rebuild_statements(plan), _rebuild_params(plan))
        tables = _count_slice_rows(warehouse, plan)
    warehouse_done = time.perf_counter()

    published: dict[str, int] = {}
    if publish and plan.hours:
        published = _publish_all(settings, warehouse, plan)
    if plan.hours:
        _record_watermark(warehouse, plan)
    finished = time.perf_counter()
    summary = AnalyticsSummary(
        full=plan.full,
        hours_rebuilt=[f"{h:%Y-%m-%dT%H}" for h in plan.hours],
        days_rebuilt=[d.isoformat() for d in plan.days],
        tables=tables,
        published=published,
        watermark=plan.watermark.isoformat() if plan.watermark else None,
        seconds=round(finished - started, 3),
        warehouse_seconds=round(warehouse_done - started, 3),
        publish_seconds=round(finished - warehouse_done, 3),
    )
    log.info(
        "analytics built: %d hours, %d days, full=%s in %.2fs",
        len(plan.hours),
        len(plan.days),
        plan.full,
        summary.seconds,
    )
    return summary


def plan_rebuild(warehouse: Warehouse, *, since: datetime | None, full: bool) -> RebuildPlan:
    """Which raw hours and days to rebuild, and the watermark to record afterwards."""
    loads = warehouse.query("SELECT raw_hour, loaded_at FROM hour_loads")
    loaded = [(_utc(row.raw_hour), _utc(row.loaded_at)) for row in loads.itertuples()]
    previous = _latest_watermark(warehouse)
    if full:
        hours = {hour for hour, _ in loaded}
    else:
        hours = {hour for hour, loaded_at in loaded if previous is None or loaded_at > previous}
        if since is not None:  # on top of, never instead of, what changed since the last build
            hours |= {hour for hour, _ in loaded if hour >= since.astimezone(UTC)}
    latest_load = max((loaded_at for _, loaded_at in loaded), default=None)
    watermark = max(filter(None, (previous, latest_load)), default=None)
    return RebuildPlan(
        full=full,
        hours=sorted(hours),
        days=sorted({hour.date() for hour in hours}),
        watermark=watermark,
    )


def _latest_watermark(warehouse: Warehouse) -> datetime | None:
    frame = warehouse.query("SELECT MAX(watermark) AS watermark FROM analytics_builds")
    value = frame["watermark"].iloc[0] if len(frame) else None
    return None if value is None or pd.isna(value) else _utc(value)


def _rebuild_statements(plan: RebuildPlan) -> list[str]:
    statements = []
    for aggregate in AGGREGATES:
        column_list = ", ".join(aggregate.table.column_names)
        if plan.full:
            statements.append(f"DELETE FROM {aggregate.name} WHERE TRUE")
        else:
            slots = "@hours" if aggregate.grain == "hour" else "@days"
            statements.append(f"DELETE FROM {aggregate.name} WHERE {aggregate.grain} IN UNNEST({slots})")
        statements.append(f"INSERT INTO {aggregate.name} ({column_list})\n{aggregate.select_sql()}")
    return statements


def _rebuild_params(plan: RebuildPlan) -> dict[str, Any]:
    return {"hours": plan.hours, "days": plan.days, "start_day": plan.days[0], "end_day": plan.days[-1]}


def _record_watermark(warehouse: Warehouse, plan: RebuildPlan) -> None:
    warehouse.run_script(
        [
            "INSERT INTO analytics_builds (built_at, watermark, full_rebuild, hours_rebuilt, days_rebuilt) "
            "VALUES (@built_at, @watermark, @full_rebuild, @hour_count, @day_count)"
        ],
        {
            "built_at": datetime.now(UTC),
            "watermark": plan.watermark,
            "full_rebuild": plan.full,
            "hour_count": len(plan.hours),
            "day_count": len(plan.days),
        },
    )


def _publish_all(settings: Settings, warehouse: Warehouse, plan: RebuildPlan) -> dict[str, int]:
    client = connect(settings)
    try:
        database = client[settings.MONGODB_DB]
        published = {a.name: publish_aggregate(warehouse, database, a, plan) for a in AGGREGATES}
        marker = {"watermark": plan.watermark, "built_at": datetime.now(UTC)}
        database[ANALYTICS_PUBLISHED].replace_one({"_id": PUBLISHED_MARKER_ID}, marker, upsert=True)
        return published
    finally:
        client.close()


def _slice_filter(aggregate: Aggregate, plan: RebuildPlan) -> tuple[str, dict[str, Any]]:
    if plan.full:
        return "TRUE", {}
    if aggregate.grain == "hour":
        return "hour IN UNNEST(@hours)", {"hours": plan.hours}
    return "day IN UNNEST(@days)", {"days": plan.days}


def _count_slice_rows(warehouse: Warehouse, plan: RebuildPlan) -> dict[str, int]:
    """Rows now in the rebuilt slices of each aggregate (one query for all)."""
    counts, params = [], {}
    for aggregate in AGGREGATES:
        where, slice_params = _slice_filter(aggregate, plan)
        counts.append(
            f"SELECT '{aggregate.name}' AS aggregate, COUNT(*) AS n FROM {aggregate.name} WHERE {where}"
        )
        params |= slice_params
    frame = warehouse.query("\nUNION ALL\n".join(counts), params)
    return {row.aggregate: int(row.n) for row in frame.itertuples()}


def publish_aggregate(
    warehouse: Warehouse, database: Database, aggregate: Aggregate, plan: RebuildPlan
) -> int:
    """Upsert the rebuilt slices of one aggregate into its MongoDB collection; returns documents."""
    where, params = _slice_filter(aggregate, plan)
    frame = warehouse.query(f"SELECT * FROM {aggregate.name} WHERE {where}", params)
    documents = [to_document(aggregate, row) for row in frame.to_dict("records")]
    collection = database[aggregate.name]
    collection.create_index([("project_hash", ASCENDING), (aggregate.grain, ASCENDING)])
    for batch in _batches([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents]):
        collection.bulk_write(batch, ordered=False)

    slice_query = {} if plan.full else {aggregate.grain: {"$in": _mongo_slots(aggregate, plan)}}
    existing = {d["_id"] for d in collection.find(slice_query, {"_id": 1})}
    stale = sorted(existing - {d["_id"] for d in documents})
    for batch in _batches(stale):
        collection.delete_many({"_id": {"$in": batch}})
    return len(documents)


def to_document(aggregate: Aggregate, row: dict[str, Any]) -> dict[str, Any]:
    """One aggregate row as a MongoDB document: `_id` is the key; hours are dates, days ISO strings."""
    document: dict[str, Any] = {}
    for column in aggregate.table.columns:
        value = row[column.name]
        if column.type == "TIMESTAMP":
            value = _utc(value)
        elif column.type == "DATE":
            value = _as_date(value).isoformat()
        elif column.type == "INT64":
            value = int(value)
        elif column.type == "FLOAT64":
            value = float(value)
        document[column.name] = value
    document["_id"] = "|".join(_key_text(document[name]) for name in aggregate.key)
    return document


def _key_text(value: Any) -> str:
    return f"{value:%Y-%m-%dT%H}" if isinstance(value, datetime) else str(value)


def _mongo_slots(aggregate: Aggregate, plan: RebuildPlan) -> list[Any]:
    if aggregate.grain == "hour":
        return list(plan.hours)
    return [day.isoformat() for day in plan.days]


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[start : start + MONGO_BATCH] for start in range(0, len(items), MONGO_BATCH)]


def _utc(value: Any) -> datetime:
    """A pandas/numpy/python timestamp as an aware UTC datetime."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def _as_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return pd.Timestamp(value).date()
