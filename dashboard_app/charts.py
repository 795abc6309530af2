"""Charts for the dashboard, drawn from published aggregates: no warehouse query per view.

A registered chart's SQL (BigQuery dialect, reading aggregate tables) runs transpiled on an
in-process DuckDB holding that project's rows of the aggregates it reads, loaded from MongoDB (the
analytics build publishes every aggregate to a collection of the same name). So one chart
definition serves the HTML report, the notebooks and the dashboard, and a newly promoted chart
shows up here with no other change. Charts in review (`deact chart preview`) are drawn the same
way and marked. A chart that reads history tables cannot be served from aggregates: it is listed
with a note instead of querying the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import sqlglot
from pymongo.database import Database
from sqlglot import exp

from dashboard_app.filters import day_start
from deactivation.mongo import ANALYTICS_PUBLISHED, PUBLISHED_MARKER_ID
from deactivation.warehouse import rows_to_arrow, to_duckdb_sql
from reports.aggregates import AGGREGATES, Aggregate
from reports.promotion import DEFAULT_REVIEW_DIR, load_review_charts
from reports.registry import Chart, load_charts

log = logging.getLogger(__name__)

_AGGREGATES = {aggregate.name: aggregate for aggregate in AGGREGATES}
#: Hour-grain aggregates are loaded from this long before the period (for trailing windows).
_HOUR_LOOKBACK = timedelta(days=7)
#: Loaded rows are cached per (project, period, the watermark the analytics build recorded with
#: what it published); before any build recorded one, per (project, period, minute): a view is at
#: most this stale.
UNMARKED_CACHE_SECONDS = 60


@dataclass(frozen=True)
class DashboardChart:
    chart: Chart
    in_review: bool

    @property
    def id(self) -> str:
        return self.chart.id


def dashboard_charts(review_dir: Path = DEFAULT_REVIEW_DIR) -> list[DashboardChart]:
    """The registered charts, then those in review (a broken review module is logged, not fatal)."""
    charts = [DashboardChart(chart, False) for chart in load_charts()]
    registered = {c.id for c in charts}
    try:
        reviews = load_review_charts(review_dir)
    except Exception:
        log.exception("charts in review could not be loaded; showing the registered charts only")
        reviews = []
    charts += [DashboardChart(chart, True) for chart in reviews if chart.id not in registered]
    return charts


@lru_cache(maxsize=512)
def tables_read(sql: str) -> frozenset[str]:
    """The tables a chart's SQL reads (CTE names excluded; cached by text: parsing costs ~4 ms)."""
    tree = sqlglot.parse_one(sql, read="bigquery")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return frozenset(
        table.name for table in tree.find_all(exp.Table) if table.name and table.name not in ctes
    )


class PublishedAggregates:
    """An in-memory DuckDB with one project's published aggregate rows, loaded on first use."""

    def __init__(self, db: Database, project_hash: str, start_day: date, end_day: date) -> None:
        self.db = db
        self.project_hash = project_hash
        self.start_day = start_day
        self.end_day = end_day
        self.connection = duckdb.connect(":memory:")
        self.connection.execute("SET TimeZone = 'UTC'")
        self._loaded: set[str] = set()

    def close(self) -> None:
        self.connection.close()

    def load(self, names: set[str]) -> None:
        version = None
        for name in sorted(names - self._loaded):
            if version is None:
                version = published_version(self.db)
            key = (self.db.name, name, self.project_hash, self.start_day, self.end_day, version)
            rows = _LOADED.get(key)
            if rows is None:
                rows = self._rows(_AGGREGATES[name])
                _LOADED.put(key, rows)
            self.connection.register(name, rows)
            self._loaded.add(name)

    def _rows(self, aggregate: Aggregate) -> pa.Table:
        query: dict[str, Any] = {"project_hash": self.project_hash}
        lower = day_start(self.start_day) - _HOUR_LOOKBACK
        upper = day_start(self.end_day) + timedelta(days=1)
        if aggregate.grain == "hour":  # day-grain rows are few: all of them (charts look at first days)
            query["hour"] = {"$gte": lower, "$lt": upper}
        collection = self.db[aggregate.name]
        documents = {document["_id"]: document for document in collection.find(query)}
        if aggregate.grain == "hour":
            # Charts ask for the project's first and last hour ever (whether a day is complete):
            # the period's rows plus those two answer it as the whole history would. Each is
            # looked for outside the period only (a range on the (project_hash, hour) index, so
            # SecantusDB too reads only rows outside it); inside, the period's rows hold it.
            for outside, direction in (({"$lt": lower}, 1), ({"$gte": upper}, -1)):
                edge = collection.find_one(
                    {"project_hash": self.project_hash, "hour": outside}, sort=[("hour", direction)]
                )
                if edge is not None:
                    documents.setdefault(edge["_id"], edge)
        for document in documents.values():
            if aggregate.grain == "day":
                document["day"] = date.fromisoformat(document["day"])
        return rows_to_arrow(aggregate.table, list(documents.values()))

    def run(self, sql: str) -> Any:
        translated = to_duckdb_sql(sql)
        params = {"project_hash": self.project_hash, "start_day": self.start_day, "end_day": self.end_day}
        used = {name: value for name, value in params.items() if f"${name}" in translated}
        return self.connection.execute(translated, used or None).df()


def published_version(db: Database) -> str:
    """What identifies the published aggregates' state: the build's recorded watermark, or the
    current minute when no build recorded one (then a cached load lives at most a minute)."""
    marker = db[ANALYTICS_PUBLISHED].find_one({"_id": PUBLISHED_MARKER_ID}, {"watermark": 1})
    if marker is not None and marker.get("watermark") is not None:
        return f"watermark:{marker['watermark']}"
    return f"minute:{int(time.time() // UNMARKED_CACHE_SECONDS)}"


class LoadedAggregates:
    """Loaded aggregate rows (Arrow tables; the summary's answers) by a key holding database,
    project, period and published version: the overview's cost is loading them from MongoDB, so
    a repeated view reloads nothing, and a new build is never hidden. Bounded, least recently
    used out."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._tables: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple) -> Any:
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    def put(self, key: tuple, table: Any) -> None:
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)


_LOADED = LoadedAggregates()


def render_chart(source: PublishedAggregates, view: DashboardChart) -> dict[str, Any]:
    """The chart's rows and plotly figure, or why it cannot be drawn here."""
    chart = view.chart
    answer: dict[str, Any] = {
        "id": chart.id,
        "title": chart.title,
        "description": chart.description,
        "in_review": view.in_review,
        "rows": [],
        "figure": None,
        "note": None,
    }
    sql = chart.sql_text()
    needed = tables_read(sql)
    missing = sorted(needed - set(_AGGREGATES))
    if missing:
        answer["note"] = (
            f"reads {', '.join(missing)} (history, not a published aggregate): see it in the HTML report; "
            "the dashboard draws only charts over aggregates"
        )
        return answer
    source.load(needed)
    frame = source.run(sql)
    rows_json = frame.to_json(orient="records", date_format="iso")
    answer["rows"] = json.loads(rows_json)
    answer["figure"] = json.loads(_FIGURES.figure_json(chart, frame, rows_json))
    return answer


class FigureCache:
    """Figure JSON by (chart, its rows): building a plotly figure costs ~20-40 ms, running the SQL
    on the loaded aggregates ~1 ms, so an unchanged chart is only drawn once. Keyed by the rows
    themselves, so new data can never show an old figure; bounded, least recently used out first."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._figures: OrderedDict[tuple, str] = OrderedDict()
        self._lock = Lock()

    def figure_json(self, chart: Chart, frame: pd.DataFrame, rows_json: str) -> str:
        key = (chart.id, chart.figure, hashlib.sha256(rows_json.encode()).hexdigest())
        with self._lock:
            if key in self._figures:
                self._figures.move_to_end(key)
                return self._figures[key]
        figure = chart.figure(frame.copy()).to_json()
        with self._lock:
            self._figures[key] = figure
            while len(self._figures) > self.size:
                self._figures.popitem(last=False)
        return figure


_FIGURES = FigureCache()
