"""The warehouse adapter contract, on DuckDB and on BigQuery (the local emulator), plus what only
BigQuery has: partitioning and clustering, and a gcp-marked run against a real project."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from deactivation.bigquery_warehouse import BigQueryWarehouse
from deactivation.schemas import ALL_TABLES, DEACTIVATIONS, HISTORY_TABLES, HOUR_LOADS, SITES
from deactivation.settings import Settings
from deactivation.warehouse import DuckDBWarehouse, WarehouseError, open_warehouse, rows_to_arrow

HOUR_A = datetime(2026, 11, 1, 10, tzinfo=UTC)
HOUR_B = HOUR_A + timedelta(hours=1)
PROJECT = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"


def deactivation_rows(hour: datetime, count: int, run: str = "first") -> list[dict]:
    reasons = [("could-not-understand", "I couldn't understand how to make it work"), ("none", "None")]
    return [
        {
            "event_id": f"{hour:%Y%m%d%H}-{run}-{i}",
            "raw_hour": hour,
            "received_at": hour + timedelta(minutes=i),
            "project_hash": PROJECT,
            "project_kind": "plugin",
            "site_url": f"https://site-{i}.example",
            "reason_id": reasons[i % 2][0],
            "reason_label": reasons[i % 2][1],
            "reason_info": "too slow" if i % 2 == 0 else None,
            "wp_version": "6.5.2",
            "wp_version_mm": "6.5",
            "is_local": i % 3 == 0,
        }
        for i in range(count)
    ]


def site_rows(hour: datetime, count: int) -> list[dict]:
    return [
        {
            "event_id": f"{hour:%Y%m%d%H}-first-{i}",
            "raw_hour": hour,
            "received_at": hour + timedelta(minutes=i),
            "project_hash": PROJECT,
            "site_url": f"https://site-{i}.example",
            "wp_memory_limit_bytes": 256 * 1024 * 1024,
            "php_curl": True,
            "custom_fields": '{"plan": "pro"}',
        }
        for i in range(count)
    ]


def hour_load(hour: datetime, deactivations: int) -> dict:
    return {
        "raw_hour": hour,
        "loaded_at": hour + timedelta(minutes=65),
        "files": 1,
        "records_read": deactivations,
        "deactivations": deactivations,
        "sites": deactivations,
        "errors": 0,
    }


def deactivations(hour: datetime, count: int, run: str = "first") -> dict:
    return {"deactivations": rows_to_arrow(DEACTIVATIONS, deactivation_rows(hour, count, run))}


def frames(hour: datetime, count: int, run: str = "first") -> dict:
    """Every table the pipeline writes for an hour."""
    return {
        "deactivations": rows_to_arrow(DEACTIVATIONS, deactivation_rows(hour, count, run)),
        "sites": rows_to_arrow(SITES, site_rows(hour, count)),
        "hour_loads": rows_to_arrow(HOUR_LOADS, [hour_load(hour, count)]),
    }


def contents(warehouse, table: str) -> list[tuple]:
    """Every row of a table, as sorted plain-Python tuples (so both warehouses compare equal)."""
    frame = warehouse.query(f"SELECT * FROM {table}")[ALL_TABLES[table].column_names]
    return sorted(tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False))


def event_ids(warehouse, hour: datetime) -> list[str]:
    frame = warehouse.query(
        "SELECT event_id FROM deactivations WHERE raw_hour = @hour ORDER BY event_id", {"hour": hour}
    )
    return list(frame["event_id"])


def test_ensure_tables_creates_every_table_and_is_repeatable(warehouse) -> None:
    assert not warehouse.table_exists("deactivations")
    warehouse.ensure_tables()
    warehouse.ensure_tables()
    assert all(warehouse.table_exists(name) for name in ALL_TABLES)
    assert not warehouse.table_exists("no_such_table")
    assert list(warehouse.query("SELECT * FROM sites").columns) == SITES.column_names


def test_replace_hours_twice_is_the_same_as_once(warehouse) -> None:
    warehouse.ensure_tables()
    written = warehouse.replace_hours([HOUR_A], frames(HOUR_A, 5))
    once = {name: contents(warehouse, name) for name in ("deactivations", "sites", "hour_loads")}
    warehouse.replace_hours([HOUR_A], frames(HOUR_A, 5))

    assert written == {"deactivations": 5, "sites": 5, "hour_loads": 1}
    assert {name: contents(warehouse, name) for name in once} == once
    assert len(once["deactivations"]) == 5


def test_replacing_an_hour_with_fewer_rows_removes_the_old_ones(warehouse) -> None:
    warehouse.ensure_tables()
    warehouse.replace_hours([HOUR_A], frames(HOUR_A, 4))
    warehouse.replace_hours([HOUR_A], frames(HOUR_A, 2, run="second"))

    assert event_ids(warehouse, HOUR_A) == ["2026110110-second-0", "2026110110-second-1"]
    assert len(contents(warehouse, "sites")) == 2
    assert contents(warehouse, "hour_loads")[0][4] == 2  # hour_loads.deactivations


def test_replacing_an_hour_leaves_other_hours_untouched(warehouse) -> None:
    warehouse.ensure_tables([DEACTIVATIONS])
    warehouse.replace_hours([HOUR_A, HOUR_B], _merged(deactivations(HOUR_A, 3), deactivations(HOUR_B, 2)))
    before_b = event_ids(warehouse, HOUR_B)
    warehouse.replace_hours([HOUR_A], deactivations(HOUR_A, 1, run="second"))

    assert event_ids(warehouse, HOUR_B) == before_b == ["2026110111-first-0", "2026110111-first-1"]
    assert event_ids(warehouse, HOUR_A) == ["2026110110-second-0"]


def test_an_empty_slice_clears_the_hour(warehouse) -> None:
    warehouse.ensure_tables([DEACTIVATIONS])
    warehouse.replace_hours([HOUR_A, HOUR_B], _merged(deactivations(HOUR_A, 3), deactivations(HOUR_B, 2)))
    warehouse.replace_hours([HOUR_A], deactivations(HOUR_A, 0))

    assert event_ids(warehouse, HOUR_A) == []
    assert len(event_ids(warehouse, HOUR_B)) == 2


def test_a_failing_replace_changes_no_table(warehouse) -> None:
    warehouse.ensure_tables([DEACTIVATIONS, SITES])
    warehouse.replace_hours(
        [HOUR_A],
        {
            "deactivations": deactivations(HOUR_A, 3)["deactivations"],
            "sites": rows_to_arrow(SITES, site_rows(HOUR_A, 3)),
        },
    )
    before = {name: contents(warehouse, name) for name in ("deactivations", "sites")}
    broken_sites = site_rows(HOUR_A, 1)
    broken_sites[0]["site_url"] = None  # a REQUIRED column: the warehouse refuses the row

    with pytest.raises((WarehouseError, duckdb.Error), match=r"(?i)null"):
        warehouse.replace_hours(
            [HOUR_A],
            {**deactivations(HOUR_A, 1, "second"), "sites": rows_to_arrow(SITES, broken_sites)},
        )
    assert {name: contents(warehouse, name) for name in before} == before


def test_query_binds_scalar_and_array_parameters(warehouse) -> None:
    warehouse.ensure_tables([DEACTIVATIONS])
    warehouse.replace_hours([HOUR_A, HOUR_B], _merged(deactivations(HOUR_A, 4), deactivations(HOUR_B, 3)))

    frame = warehouse.query(
        """
        SELECT DATE(raw_hour) AS day, reason_id, COUNT(*) AS deactivations, COUNTIF(is_local) AS local_sites
        FROM deactivations
        WHERE project_hash = @project_hash
          AND raw_hour IN UNNEST(@hours)
          AND reason_id IN UNNEST(@reasons)
          AND DATE(raw_hour) BETWEEN @start_day AND @end_day
          AND received_at >= TIMESTAMP_SUB(@since, INTERVAL @minutes MINUTE)
        GROUP BY day, reason_id
        ORDER BY reason_id
        """,
        {
            "project_hash": PROJECT,
            "hours": [HOUR_A, HOUR_B],
            "reasons": ["none", "could-not-understand"],
            "start_day": date(2026, 11, 1),
            "end_day": date(2026, 11, 1),
            "since": HOUR_B,
            "minutes": 60,
        },
    )

    assert list(frame["reason_id"]) == ["could-not-understand", "none"]
    assert list(frame["deactivations"]) == [4, 3]  # even i of both hours / odd i
    assert list(frame["local_sites"]) == [2, 1]  # i = 0 of both hours / i = 3 of HOUR_A
    assert list(frame["day"]) == [pd.Timestamp("2026-11-01")] * 2


def test_run_script_is_one_transaction(warehouse) -> None:
    warehouse.ensure_tables([DEACTIVATIONS, HOUR_LOADS])
    warehouse.replace_hours([HOUR_A], deactivations(HOUR_A, 3))
    before = contents(warehouse, "deactivations")
    statements = [
        "DELETE FROM deactivations WHERE raw_hour = @hour",
        "INSERT INTO hour_loads (raw_hour, loaded_at, files, records_read, deactivations, sites, errors) "
        "VALUES (@hour, @hour, 1, 1, 1, 1, 1)",
        "INSERT INTO no_such_table (x) VALUES (1)",
    ]

    with pytest.raises(WarehouseError, match="nothing changed"):
        warehouse.run_script(statements, {"hour": HOUR_A})
    assert contents(warehouse, "deactivations") == before
    assert contents(warehouse, "hour_loads") == []

    warehouse.run_script(statements[:2], {"hour": HOUR_A})
    assert event_ids(warehouse, HOUR_A) == []
    assert len(contents(warehouse, "hour_loads")) == 1


@pytest.mark.parametrize("kind", ["duckdb", "bigquery"])  # no emulator needed: nothing answers
def test_an_unreachable_warehouse_says_so(kind, tmp_path) -> None:
    if kind == "duckdb":
        (tmp_path / "a-directory.duckdb").mkdir()
        unreachable = DuckDBWarehouse(str(tmp_path / "a-directory.duckdb"))
        expected = "cannot open DuckDB warehouse"
    else:
        unreachable = BigQueryWarehouse("deact-test", "history", emulator_host="127.0.0.1:9", retry_timeout=1)
        expected = r"cannot reach BigQuery dataset deact-test\.history at http://127\.0\.0\.1:9"

    with pytest.raises(WarehouseError, match=expected):
        unreachable.ensure_tables()


def test_bigquery_history_tables_are_hour_partitioned_and_clustered(bigquery_warehouse) -> None:
    bigquery_warehouse.ensure_tables()

    for table in HISTORY_TABLES:
        created = bigquery_warehouse.client.get_table(bigquery_warehouse._table_id(table.name))
        assert (created.time_partitioning.type_, created.time_partitioning.field) == ("HOUR", "raw_hour")
        assert created.clustering_fields == list(table.cluster_by)
        required = [field.name for field in created.schema if field.mode == "REQUIRED"]
        assert required == [column.name for column in table.columns if column.required]
    assert (
        bigquery_warehouse.client.get_table(bigquery_warehouse._table_id("hour_loads")).time_partitioning
        is None
    )


def test_open_warehouse_reaches_the_emulator_from_settings(bigquery_emulator, tmp_path) -> None:
    dataset = f"test_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        WAREHOUSE_URL=f"bigquery://{bigquery_emulator.project}/{dataset}",
        BIGQUERY_EMULATOR_HOST=f"http://{bigquery_emulator.host}",
        DATA_DIR=tmp_path,
        _env_file=None,
    )
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables()

    assert warehouse.kind == "bigquery"
    assert warehouse.table_exists("deactivation_errors")


@pytest.mark.gcp
def test_real_bigquery_project_round_trip(gcp_project: str) -> None:
    warehouse = BigQueryWarehouse(gcp_project, f"deact_it_{uuid.uuid4().hex[:12]}")
    try:
        warehouse.ensure_tables()
        warehouse.replace_hours([HOUR_A], frames(HOUR_A, 3))
        warehouse.replace_hours([HOUR_A], frames(HOUR_A, 2, run="second"))
        assert event_ids(warehouse, HOUR_A) == ["2026110110-second-0", "2026110110-second-1"]
    finally:
        warehouse.client.delete_dataset(warehouse.dataset_id, delete_contents=True, not_found_ok=True)


def _merged(*parts: dict) -> dict:
    import pyarrow as pa

    return {name: pa.concat_tables([part[name] for part in parts]) for name in parts[0]}


# --- Loads from staged files (the pipeline's path: rows never pass through the caller) ------------


def staged_files(directory, table_frames: dict, parts: int = 2) -> dict[str, list[str]]:
    """Each frame written as `parts` Parquet files, the way pipeline workers stage them."""
    staged: dict[str, list[str]] = {}
    for name, frame in table_frames.items():
        paths = []
        size = -(-frame.num_rows // parts) or 1
        for number, start in enumerate(range(0, frame.num_rows, size)):
            path = directory / f"{name}-{number}.parquet"
            pq.write_table(frame.slice(start, size), path)
            paths.append(str(path))
        staged[name] = paths
    return staged


def test_replace_hours_from_files_equals_replace_hours_from_frames(warehouse, tmp_path) -> None:
    warehouse.ensure_tables()
    warehouse.replace_hours([HOUR_A], frames(HOUR_A, 5))
    from_frames = {name: contents(warehouse, name) for name in ("deactivations", "sites", "hour_loads")}
    warehouse.replace_hours([HOUR_A], frames(HOUR_A, 2, run="stale"))

    written = warehouse.replace_hours_from_files([HOUR_A], staged_files(tmp_path, frames(HOUR_A, 5)))

    assert written == {"deactivations": 5, "sites": 5, "hour_loads": 1}
    assert {name: contents(warehouse, name) for name in from_frames} == from_frames


def test_a_table_without_staged_files_has_its_hours_emptied(warehouse, tmp_path) -> None:
    warehouse.ensure_tables()
    warehouse.replace_hours([HOUR_A, HOUR_B], _merged(frames(HOUR_A, 3), frames(HOUR_B, 2)))

    written = warehouse.replace_hours_from_files(
        [HOUR_A], {**staged_files(tmp_path, deactivations(HOUR_A, 1, "second")), "sites": []}
    )

    assert written == {"deactivations": 1, "sites": 0}
    assert event_ids(warehouse, HOUR_A) == ["2026110110-second-0"]
    assert len(event_ids(warehouse, HOUR_B)) == 2
    assert len(contents(warehouse, "sites")) == 2  # HOUR_B's only


def test_a_failing_load_from_files_changes_no_table(warehouse, tmp_path) -> None:
    warehouse.ensure_tables()
    warehouse.replace_hours([HOUR_A], frames(HOUR_A, 3))
    before = {name: contents(warehouse, name) for name in ("deactivations", "sites", "hour_loads")}
    staged = staged_files(tmp_path, frames(HOUR_A, 4, run="second"))
    staged["hour_loads"].append(str(tmp_path / "missing.parquet"))  # the last table's load fails

    with pytest.raises(WarehouseError, match=r"missing\.parquet"):
        warehouse.replace_hours_from_files([HOUR_A], staged)
    assert {name: contents(warehouse, name) for name in before} == before


def test_duckdb_refuses_remote_staged_files_with_a_clear_error(tmp_path) -> None:
    warehouse = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables()
    with pytest.raises(WarehouseError, match=r"local files, got gs://bucket/run/deactivations/0\.parquet"):
        warehouse.replace_hours_from_files(
            [HOUR_A], {"deactivations": ["gs://bucket/run/deactivations/0.parquet"]}
        )
