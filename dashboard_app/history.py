"""What only the warehouse has: every deactivation in history (CSV export) and one site's history.

The export walks the history newest first in fixed-size chunks, each chunk a keyset query that
starts strictly after the previous chunk's last row, so memory holds one chunk whatever the range
and the same SQL runs on DuckDB and BigQuery through the warehouse adapter.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
from pymongo.database import Database

from dashboard_app.filters import ListFilters, day_start
from dashboard_app.state import ISO_FORMAT, ITEM_FIELDS, PERSONAL_FIELDS
from deactivation.mongo import SITES
from deactivation.warehouse import Warehouse

#: Rows per warehouse query of the export (the memory bound of one download).
CSV_CHUNK_ROWS = 50_000
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
) -> Iterator[pd.DataFrame]:
    """Every matching deactivation in history, newest first, one bounded frame at a time."""
    conditions, params = history_where(project_hash, filters)
    position: tuple[Any, str] | None = None
    while True:
        where = list(conditions)
        chunk_params = dict(params)
        if position is not None:
            where.append(
                "(d.received_at < @after_time OR (d.received_at = @after_time AND d.event_id < @after_id))"
            )
            chunk_params |= {"after_time": position[0], "after_id": position[1]}
        sql = (
            f"SELECT {_COLUMNS}\n{_FROM}\nWHERE {' AND '.join(where)}\n"
            f"ORDER BY d.received_at DESC, d.event_id DESC\nLIMIT {int(chunk_rows)}"
        )
        frame = warehouse.query(sql, chunk_params)
        if frame.empty:
            return
        yield frame
        if len(frame) < chunk_rows:
            return
        last = frame.iloc[-1]
        position = (pd.Timestamp(last["received_at"]).to_pydatetime(), str(last["event_id"]))


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
    for frame in iter_history(warehouse, project_hash, filters, chunk_rows):
        frame["received_at"] = iso_times(frame["received_at"])
        cells = [safe_column(frame[name]) for name in ITEM_FIELDS]
        if personal:
            contacts = _contacts(db, project_hash, frame["site_url"].unique().tolist())
            found = [contacts.get(url, {}) for url in frame["site_url"].tolist()]
            cells += [[safe_cell(contact.get(name)) for contact in found] for name in PERSONAL_FIELDS]
        rows = zip(*cells, strict=True)
        while piece := list(itertools.islice(rows, _ROWS_PER_PIECE)):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(piece)
            yield buffer.getvalue()


def safe_column(column: pd.Series) -> list[str]:
    """A column as CSV cells, each neutralised like safe_cell (vectorised: a chunk at a time)."""
    text = column.astype("string").fillna("")
    return text.where(~text.str.startswith(_FORMULA_START), "'" + text).tolist()


def iso_times(column: pd.Series) -> pd.Series:
    """Timestamps as ISO 8601 UTC text with microseconds, vectorised (a chunk at a time)."""
    return pd.to_datetime(column, utc=True).dt.strftime(ISO_FORMAT)


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
    frame["received_at"] = iso_times(frame["received_at"])
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
