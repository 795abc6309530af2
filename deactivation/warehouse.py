"""The history warehouse: DuckDB locally, BigQuery in production, one interface.

SQL is written once, in BigQuery dialect (named parameters as ``@name``, ``IN UNNEST(@list)``),
and transpiled by sqlglot for DuckDB. Which warehouse is used is decided by WAREHOUSE_URL only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd
import pyarrow as pa
import sqlglot

from deactivation.schemas import ALL_TABLES, DUCKDB_TYPES, Table
from deactivation.settings import Settings


class WarehouseError(RuntimeError):
    """The warehouse is unreachable, empty where data was expected, or refused a statement."""


class Warehouse(Protocol):
    kind: str

    def ensure_tables(self, tables: Sequence[Table] = ...) -> None: ...

    def replace_hours(self, hours: Sequence[datetime], frames: Mapping[str, pa.Table]) -> dict[str, int]:
        """Atomically replace the raw_hour slices `hours` of each table with the given rows."""
        ...

    def replace_hours_from_files(
        self, hours: Sequence[datetime], staged: Mapping[str, Sequence[str]]
    ) -> dict[str, int]:
        """As replace_hours, with each table's rows in Parquet files (local paths or gs:// URIs) of
        the warehouse schema, which the warehouse reads itself: the rows never pass through this
        process. Returns the rows loaded per table."""
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one BigQuery-dialect SELECT and return its rows."""
        ...

    def query_batches(
        self, sql: str, params: Mapping[str, Any] | None = None, rows_per_batch: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """Run one BigQuery-dialect SELECT and stream its rows as Arrow record batches."""
        ...

    def run_script(self, statements: Sequence[str], params: Mapping[str, Any] | None = None) -> None:
        """Run BigQuery-dialect statements in one transaction (all or nothing)."""
        ...

    def table_exists(self, name: str) -> bool: ...


@lru_cache(maxsize=512)
def to_duckdb_sql(sql: str) -> str:
    """Transpile one BigQuery-dialect statement to DuckDB."""
    statements = sqlglot.transpile(sql, read="bigquery", write="duckdb")
    if len(statements) != 1:
        raise WarehouseError(f"expected exactly one SQL statement, got {len(statements)}")
    return statements[0]


def arrow_schema(table: Table) -> pa.Schema:
    types = {
        "STRING": pa.string(),
        "INT64": pa.int64(),
        "BOOL": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "DATE": pa.date32(),
        "FLOAT64": pa.float64(),
    }
    return pa.schema([pa.field(c.name, types[c.type], nullable=not c.required) for c in table.columns])


def rows_to_arrow(table: Table, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Build an Arrow table with exactly the warehouse schema from row dicts."""
    schema = arrow_schema(table)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


def _sql_text(value: str) -> str:
    """A string literal (file paths go into read_parquet's list, which takes no parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _duckdb_param(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        return [_duckdb_param(v) for v in value]
    return value


class DuckDBWarehouse:
    """A DuckDB file. Connections are opened per operation so other processes can use the file too."""

    kind = "duckdb"
    _lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path

    def _connect(self, read_only: bool = False):
        try:
            connection = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {exc}") from exc
        connection.execute("SET TimeZone = 'UTC'")  # DATE(ts) and truncations in UTC, as on BigQuery
        return connection

    def ensure_tables(self, tables: Sequence[Table] = tuple(ALL_TABLES.values())) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self._connect() as connection:
            for table in tables:
                columns = ", ".join(
                    f'"{c.name}" {DUCKDB_TYPES[c.type]}{" NOT NULL" if c.required else ""}'
                    for c in table.columns
                )
                connection.execute(f'CREATE TABLE IF NOT EXISTS "{table.name}" ({columns})')

    def replace_hours(self, hours: Sequence[datetime], frames: Mapping[str, pa.Table]) -> dict[str, int]:
        def insert_frame(connection, name: str, column_list: str) -> int:
            connection.register("incoming_rows", frames[name])
            connection.execute(
                f'INSERT INTO "{name}" ({column_list}) SELECT {column_list} FROM incoming_rows'
            )
            connection.unregister("incoming_rows")
            return frames[name].num_rows

        return self._replace(hours, list(frames), insert_frame)

    def replace_hours_from_files(
        self, hours: Sequence[datetime], staged: Mapping[str, Sequence[str]]
    ) -> dict[str, int]:
        for name, paths in staged.items():
            remote = [p for p in paths if "://" in p]
            if remote:
                raise WarehouseError(
                    f"DuckDB loads staged {name} rows from local files, got {remote[0]}: "
                    "stage locally (--rows_staging_location) or use BigQuery"
                )

        def insert_files(connection, name: str, column_list: str) -> int:
            if not staged[name]:
                return 0
            files = ", ".join(_sql_text(path) for path in staged[name])
            inserted = connection.execute(
                f'INSERT INTO "{name}" ({column_list}) SELECT {column_list} FROM read_parquet([{files}])'
            ).fetchone()
            return int(inserted[0]) if inserted else 0

        return self._replace(hours, list(staged), insert_files)

    def _replace(self, hours: Sequence[datetime], names: Sequence[str], insert) -> dict[str, int]:
        """Delete the hours' slice of each table in `names` and `insert` its rows, in ONE transaction."""
        unknown = [name for name in names if name not in ALL_TABLES]
        if unknown:
            raise WarehouseError(f"unknown warehouse table {unknown[0]!r}")
        hour_values = [h.astimezone(UTC) for h in hours]
        written: dict[str, int] = {}
        with self._lock, self._connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                for name in names:
                    connection.execute(
                        f'DELETE FROM "{name}" WHERE raw_hour IN (SELECT UNNEST($hours))',
                        {"hours": hour_values},
                    )
                    column_list = ", ".join(f'"{c}"' for c in ALL_TABLES[name].column_names)
                    written[name] = insert(connection, name, column_list)
                connection.execute("COMMIT")
            except Exception as exc:
                connection.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise WarehouseError(f"the hour replacement failed, nothing changed: {exc}") from exc
                raise
        return written

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        translated = to_duckdb_sql(sql)
        with self._connect() as connection:
            try:
                bound = {k: _duckdb_param(v) for k, v in (params or {}).items()}
                return connection.execute(translated, bound or None).df()
            except duckdb.Error as exc:
                raise WarehouseError(f"query failed: {exc}") from exc

    def query_batches(
        self, sql: str, params: Mapping[str, Any] | None = None, rows_per_batch: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """The query's rows as Arrow record batches of at most `rows_per_batch`, streamed: memory
        holds one batch whatever the result's size (the connection stays open until exhausted)."""
        translated = to_duckdb_sql(sql)
        with self._connect() as connection:
            try:
                bound = {k: _duckdb_param(v) for k, v in (params or {}).items()}
                # A relation's reader streams; one over an executed DB-API result copies it first.
                yield from connection.sql(translated, params=bound or None).to_arrow_reader(rows_per_batch)
            except duckdb.Error as exc:
                raise WarehouseError(f"query failed: {exc}") from exc

    def run_script(self, statements: Sequence[str], params: Mapping[str, Any] | None = None) -> None:
        with self._lock, self._connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    translated = to_duckdb_sql(statement)
                    used = {k: _duckdb_param(v) for k, v in (params or {}).items() if f"${k}" in translated}
                    connection.execute(translated, used or None)
                connection.execute("COMMIT")
            except duckdb.Error as exc:
                connection.execute("ROLLBACK")
                raise WarehouseError(f"script failed, nothing changed: {exc}") from exc

    def table_exists(self, name: str) -> bool:
        if not Path(self.path).exists():
            return False
        with self._connect() as connection:
            found = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            ).fetchone()
        return bool(found and found[0])


def bigquery_param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    return "STRING"


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse WAREHOUSE_URL names."""
    if settings.warehouse_kind == "duckdb":
        return DuckDBWarehouse(str(settings.duckdb_path))
    # lazy: google-cloud-bigquery takes ~2 s to import and only a BigQuery warehouse needs it.
    from deactivation.bigquery_warehouse import BigQueryWarehouse

    project, dataset = settings.bigquery_project_dataset
    return BigQueryWarehouse(project, dataset, emulator_host=settings.BIGQUERY_EMULATOR_HOST)
