"""The CSV export: constant memory however long the history, formula-safe cells, every row once."""

from __future__ import annotations

import csv
import io
import tracemalloc

import duckdb
import pytest

from dashboard_app import history
from dashboard_app.filters import ListFilters
from dashboard_app.history import csv_lines, safe_cell
from deactivation.mongo import get_database
from deactivation.warehouse import open_warehouse

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"


def fill_history(settings, rows: int, step_seconds: int = 1) -> None:
    """`rows` synthetic deactivations (and their site rows) of one project, one per `step_seconds`."""
    open_warehouse(settings).ensure_tables()
    with duckdb.connect(str(settings.duckdb_path)) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(
            f"""
            INSERT INTO deactivations (event_id, raw_hour, received_at, project_hash, project_kind, site_url,
                                       reason_id, reason_label, reason_info, project_version, wp_version,
                                       php_version, locale)
            SELECT printf('%032d', i), date_trunc('hour', t), t, '{PROJECT}', 'plugin',
                   'https://site-' || (i % 5000) || '.example.com', 'other', 'Other',
                   CASE WHEN i % 3 = 0 THEN '=HYPERLINK("http://evil")' ELSE 'fine' END,
                   '2.4.0', '6.5.3', '8.2.1', 'en_US'
            FROM (SELECT i, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL 1 SECOND * i * {step_seconds} AS t
                  FROM range({rows}) AS r(i))
            """
        )
        connection.execute(
            """
            INSERT INTO sites (event_id, raw_hour, received_at, project_hash, site_url, site_name)
            SELECT event_id, raw_hour, received_at, project_hash, site_url, '@' || site_url FROM deactivations
            """
        )


def peak_memory_of_export(settings, chunk_rows: int) -> tuple[int, int]:
    """(rows exported, peak Python memory in bytes) of streaming the whole export."""
    warehouse = open_warehouse(settings)
    database = get_database(settings)
    tracemalloc.start()
    rows = 0
    for piece in csv_lines(
        warehouse, database, PROJECT, ListFilters(), personal=False, chunk_rows=chunk_rows
    ):
        rows += piece.count("\r\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return rows - 1, peak


@pytest.mark.slow
def test_the_export_streams_in_memory_bounded_by_the_chunk_not_the_history(settings_under, tmp_path):
    small, large = settings_under(tmp_path / "small"), settings_under(tmp_path / "large")
    fill_history(small, 10_000)
    fill_history(large, 60_000)
    exported_small, peak_small = peak_memory_of_export(small, chunk_rows=5_000)
    exported_large, peak_large = peak_memory_of_export(large, chunk_rows=5_000)
    assert (exported_small, exported_large) == (10_000, 60_000)
    # Six times the rows, the same chunk: the peak must not grow with the history.
    assert peak_large < peak_small * 1.5, (peak_small, peak_large)


def test_every_row_is_exported_once_across_chunks_and_formulas_are_neutralised(settings):
    fill_history(settings, 2_345)
    text = "".join(
        csv_lines(
            open_warehouse(settings),
            get_database(settings),
            PROJECT,
            ListFilters(),
            personal=False,
            chunk_rows=1_000,
        )
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len({row["event_id"] for row in rows}) == 2_345
    assert rows[0]["received_at"] > rows[-1]["received_at"]
    assert {row["reason_info"] for row in rows} == {'\'=HYPERLINK("http://evil")', "fine"}
    assert all(row["site_name"].startswith("'@") for row in rows)


def test_an_export_over_several_day_slices_has_every_row_once_newest_first(settings, monkeypatch):
    monkeypatch.setattr(history, "SLICE_ROWS", 500)
    fill_history(settings, 2_345, step_seconds=137)  # about 3.7 days: several slices of whole days
    text = "".join(
        csv_lines(open_warehouse(settings), get_database(settings), PROJECT, ListFilters(), personal=False)
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["event_id"] for row in rows] == [f"{i:032d}" for i in reversed(range(2_345))]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (None, ""),
        ("a=b", "a=b"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_prefixed(value, expected):
    assert safe_cell(value) == expected
