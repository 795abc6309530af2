"""What only the warehouse has: every deactivation in history (CSV export) and one site's history.

The export is one query, newest first, streamed from the warehouse in Arrow record batches
(`Warehouse.query_batches`), so memory holds one batch whatever the range, and the same SQL runs
on DuckDB and BigQuery through the warehouse adapter.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pymongo.database import Database

from dashboard_app.filters import ListFilters, day_start
from dashboard_app.state import ITEM_FIELDS, PERSONAL_FIELDS
from deactivation.mongo import SITES
from deactivation.warehouse import Warehouse

#: Rows per record batch of the export (the memory bound of one download).
CSV_CHUNK_ROWS = 20_000
#: Rows per warehouse query of the export, about (whole days; one day may hold more).
SLICE_ROWS = 200_000
#: Most rows of one site's history the API returns (a site deactivating more often is a bot).
SITE_HISTORY_LIMIT = 1000
_CONTACT_BATCH = 1000
_ROWS_PER_PIECE = 2000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_COLUMNS = """d.event_id, d.site_url, s.site_name, d.reason_id, d.reason_label, d.reason_info,
  d.project_version, d.wp_version, d.php_version, d.locale, d.received_at"""
_FROM = """FROM deactivations AS d
LEFT JOIN sites AS s
  ON s.event_id = d.event_id AND s.raw_hour = d.raw_hour AND s.project_hash = d.project_hash"""


def history_where(project_hash: str, filters: ListFilters) -> tuple[list[str], dict[str, Any]]:
    """BigQuery-dialect conditions and parameters for `filters` over deactivations `d` + sites `s`."""
    conditions = ["d.project_hash = @project_hash"]
    params: dict[str, Any] = {"project_hash": project_hash}
    if filters.start_day:
        conditions.append("d.received_at >= @start_time")
        params["start_time"] = day_start(filters.start_day)
    if filters.end_day:
        conditions.append("d.received_at < @end_time")
        params["end_time"] = day_start(filters.end_day) + timedelta(days=1)
    for name, column in (
        ("reason", "reason_id"),
        ("version", "project_version"),
        ("wp", "wp_version_mm"),
        ("php", "php_version_mm"),
        ("locale", "locale"),
    ):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(f"d.{column} = @{name}")
            params[name] = value
    if filters.has_text is not None:
        present = "REGEXP_CONTAINS(COALESCE(d.reason_info, ''), r'\\S')"
        conditions.append(present if filters.has_text else f"NOT {present}")
    if filters.q:
        conditions.append(
            "(STRPOS(LOWER(d.site_url), @q) > 0 OR STRPOS(LOWER(COALESCE(s.site_name, '')), @q) > 0)"
        )
        params["q"] = filters.q.lower()
    return conditions, params


def iter_history(
    warehouse: Warehouse, project_hash: str, filters: ListFilters, chunk_rows: int = CSV_CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """Every matching deactivation in history, newest first, in Arrow record batches of at most
    `chunk_rows`, streamed from the warehouse (DuckDB's reader, BigQuery's result pages).

    One query per slice of whole days holding about SLICE_ROWS rows (from a per-day count), newest
    slice first: a warehouse sorts what one query returns before streaming it, so a slice bounds
    that sort's memory as the batches bound ours. The newest slice is open towards the future and
    the oldest towards the past, so rows written after the count are exported too."""
    conditions, params = history_where(project_hash, filters)
    where = " AND ".join(conditions)
    counts = warehouse.query(
        f"SELECT DATE(d.received_at) AS day, COUNT(*) AS n\n{_FROM}\nWHERE {where}\n"
        "GROUP BY day ORDER BY day DESC",
        params,
    )
    days = [(_as_date(row.day), int(row.n)) for row in counts.itertuples()]
    edges: list[datetime] = []  # slice edges, newest first: each slice is [next edge, this edge)
    total = 0
    for index, (day, rows) in enumerate(days):
        total += rows
        if total >= SLICE_ROWS and index < len(days) - 1:
            edges.append(day_start(day))
            total = 0
    upper: datetime | None = None
    for lower in [*edges, None]:
        bounds = list(conditions)
        slice_params = dict(params)
        if upper is not None:
            bounds.append("d.received_at < @slice_end")
            slice_params["slice_end"] = upper
        if lower is not None:
            bounds.append("d.received_at >= @slice_start")
            slice_params["slice_start"] = lower
        sql = (
            f"SELECT {_COLUMNS}\n{_FROM}\nWHERE {' AND '.join(bounds)}\n"
            "ORDER BY d.received_at DESC, d.event_id DESC"
        )
        for batch in warehouse.query_batches(sql, slice_params, chunk_rows):
            if batch.num_rows:
                yield batch
        upper = lower


def _as_date(value: Any) -> date:
    return (
        value if isinstance(value, date) and not isinstance(value, datetime) else pd.Timestamp(value).date()
    )


def csv_lines(
    warehouse: Warehouse,
    db: Database,
    project_hash: str,
    filters: ListFilters,
    *,
    personal: bool,
    chunk_rows: int = CSV_CHUNK_ROWS,
) -> Iterator[str]:
    """The export as CSV text, header first, a few thousand rows per yielded piece."""
    columns = [*ITEM_FIELDS, *(PERSONAL_FIELDS if personal else ())]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    yield buffer.getvalue()
    for batch in iter_history(warehouse, project_hash, filters, chunk_rows):
        cells = [safe_column(batch.column(name)) for name in ITEM_FIELDS if name != "received_at"]
        cells.insert(ITEM_FIELDS.index("received_at"), iso_times(batch.column("received_at")))
        if personal:
            urls = batch.column("site_url").to_pylist()
            contacts = _contacts(db, project_hash, sorted(set(urls)))
            found = [contacts.get(url, {}) for url in urls]
            cells += [[safe_cell(contact.get(name)) for contact in found] for name in PERSONAL_FIELDS]
        rows = zip(*cells, strict=True)
        while piece := list(itertools.islice(rows, _ROWS_PER_PIECE)):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(piece)
            yield buffer.getvalue()


def safe_column(column: pa.Array) -> list[str]:
    """A column as CSV cells, each neutralised like safe_cell (vectorised: a batch at a time)."""
    text = pc.fill_null(pc.cast(column, pa.string()), "")
    risky = pc.starts_with(text, _FORMULA_START[0])
    for start in _FORMULA_START[1:]:
        risky = pc.or_(risky, pc.starts_with(text, start))
    return pc.if_else(risky, pc.binary_join_element_wise("'", text, ""), text).to_pylist()


def iso_times(column: pa.Array) -> list[str]:
    """Timestamps as ISO 8601 UTC text with microseconds, vectorised (a batch at a time)."""
    stamps = pc.cast(column, pa.timestamp("us", tz="UTC"))
    # Arrow's %S of a microsecond timestamp carries the fraction: SS.ffffff.
    return pc.fill_null(pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ"), "").to_pylist()


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection: prefix with ')."""
    if value is None or value != value:  # None, or NaN for a missing value in a pandas column
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def site_history(warehouse: Warehouse, project_hash: str, site_url: str) -> list[dict[str, Any]]:
    frame = warehouse.query(
        f"SELECT {_COLUMNS}, d.server_software, d.mysql_version\n{_FROM}\n"
        "WHERE d.project_hash = @project_hash AND d.site_url = @site_url\n"
        f"ORDER BY d.received_at DESC, d.event_id DESC\nLIMIT {SITE_HISTORY_LIMIT}",
        {"project_hash": project_hash, "site_url": site_url},
    )
    frame["received_at"] = iso_times(pa.Array.from_pandas(frame["received_at"]))
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def _contacts(db: Database, project_hash: str, site_urls: list[str]) -> dict[str, dict[str, Any]]:
    """site_url → the admin contact MongoDB keeps for it (personal keys only)."""
    found: dict[str, dict[str, Any]] = {}
    projection = {"site_url": 1, **dict.fromkeys(PERSONAL_FIELDS, 1)}
    for start in range(0, len(site_urls), _CONTACT_BATCH):
        ids = [f"{project_hash}|{url}" for url in site_urls[start : start + _CONTACT_BATCH]]
        for site in db[SITES].find({"_id": {"$in": ids}}, projection):
            found[site["site_url"]] = site
    return found
