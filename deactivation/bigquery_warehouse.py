"""The BigQuery warehouse: the production side of deactivation.warehouse, same interface as DuckDB.

How an hour slice is replaced (``replace_hours`` from in-memory frames, ``replace_hours_from_files``
from Parquet files the pipeline's workers staged, which BigQuery reads itself: one load job from the
``gs://`` URIs, so the rows never pass through the caller): each table's incoming rows are loaded
(a Parquet load job) into a staging table (in dataset `<dataset>_staging`, whose tables expire after
6 hours should a run crash before dropping them), then ONE multi-statement transaction deletes the
``raw_hour`` slices of every table and inserts the staged rows, and commits. Either every table
shows the new hours or none does; an empty slice simply deletes.

Why not load jobs into the hour partition (``table$YYYYMMDDHH`` with WRITE_TRUNCATE): each load is
atomic for one partition of one table only, so a crash between tables would leave `deactivations`
replaced and `hour_loads` (not partitioned) stale, and a window of several hours would need one
job per hour and table. And the local emulator the tests run against (local-bigquery 0.4.0) does
not know decorators: it silently creates a table literally named ``table$2026110110``, so that path
could not be tested here. The DELETE filters on the partitioning column, so BigQuery only touches
the hour partitions being replaced.

Unqualified table names in our SQL resolve to the configured dataset (``default_dataset``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import GoogleAPIError, NotFound, RetryError
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import bigquery
from google.cloud.bigquery import DEFAULT_RETRY
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY
from requests.exceptions import RequestException

from deactivation.schemas import ALL_TABLES, Table
from deactivation.warehouse import WarehouseError, arrow_schema, bigquery_param_type

log = logging.getLogger(__name__)

STAGING_LIFETIME = timedelta(hours=6)  # then BigQuery drops a staging table a crashed run left
DEFAULT_RETRY_TIMEOUT = 600.0  # the client library's own default; tests shorten it
MAX_LOAD_URIS = 10_000  # BigQuery's limit of source URIs per load job


class BigQueryWarehouse:
    """A BigQuery dataset, or the same dataset on a local emulator when `emulator_host` is set."""

    kind = "bigquery"

    def __init__(
        self,
        project: str,
        dataset: str,
        *,
        emulator_host: str | None = None,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    ) -> None:
        self.project = project
        self.dataset = dataset
        self.endpoint = _emulator_url(emulator_host) if emulator_host else None
        self.retry_timeout = retry_timeout

    # --- Interface ------------------------------------------------------------------------------

    def ensure_tables(self, tables: Sequence[Table] = tuple(ALL_TABLES.values())) -> None:
        with self._errors("the creation of the dataset and tables"):
            self.client.create_dataset(self.dataset_id, exists_ok=True, retry=self._retry)
            for table in tables:
                self.client.create_table(
                    _table_definition(self._table_id(table.name), table), exists_ok=True, retry=self._retry
                )
        log.debug("ensured %d tables in %s", len(tables), self.dataset_id)

    def replace_hours(self, hours: Sequence[datetime], frames: Mapping[str, pa.Table]) -> dict[str, int]:
        loads = {
            name: functools.partial(self._load_frame, ALL_TABLES[name], frame)
            for name, frame in frames.items()
            if name in ALL_TABLES and frame.num_rows
        }
        self._replace(hours, list(frames), loads)
        return {name: frame.num_rows for name, frame in frames.items()}

    def replace_hours_from_files(
        self, hours: Sequence[datetime], staged: Mapping[str, Sequence[str]]
    ) -> dict[str, int]:
        loads = {
            name: functools.partial(self._load_files, ALL_TABLES[name], list(paths))
            for name, paths in staged.items()
            if name in ALL_TABLES and paths
        }
        return self._replace(hours, list(staged), loads)

    def _replace(
        self, hours: Sequence[datetime], names: Sequence[str], loads: Mapping[str, Callable[[str], int]]
    ) -> dict[str, int]:
        """Load each table's rows into a staging table, then ONE transaction deletes the hours'
        slices of every table in `names` and inserts the staged rows. Returns rows per table."""

        unknown = [name for name in names if name not in ALL_TABLES]
        if unknown:
            raise WarehouseError(f"unknown warehouse table {unknown[0]!r}")
        if not names:
            return {}
        hour_values = [hour.astimezone(UTC) for hour in hours]
        written = dict.fromkeys(names, 0)
        with self._staging_tables() as staged:
            for name, load in loads.items():
                staged[name] = f"{self._staging_dataset}.{name}_{uuid.uuid4().hex}"
                written[name] = load(staged[name])
            statements = []
            for name in names:
                statements.append(f"DELETE FROM `{name}` WHERE raw_hour IN UNNEST(@hours)")
                if name in staged:
                    columns = ", ".join(f"`{c}`" for c in ALL_TABLES[name].column_names)
                    statements.append(
                        f"INSERT INTO `{name}` ({columns}) SELECT {columns} FROM `{staged[name]}`"
                    )
            parameters = [bigquery.ArrayQueryParameter("hours", "TIMESTAMP", hour_values)]
            with self._errors("the hour replacement, nothing changed"):
                self._run(_transaction(statements), parameters)
        return written

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        with self._errors("the query"):
            rows = self._run(sql, _parameters(sql, params))
            with warnings.catch_warnings():
                # The client nudges towards pandas-gbq, which reaches an emulator only through an
                # environment variable; to_dataframe does the same download without it.
                warnings.filterwarnings("ignore", "Retrieving DataFrames", PendingDeprecationWarning)
                frame = rows.to_dataframe(create_bqstorage_client=False)
        return _like_duckdb(frame)

    def query_batches(
        self, sql: str, params: Mapping[str, Any] | None = None, rows_per_batch: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """The query's rows as Arrow record batches of at most `rows_per_batch`, page by page of
        the client's row iterator: memory holds about one page whatever the result's size."""
        with self._errors("the query"):
            rows = self._run(sql, _parameters(sql, params))
            for page in rows.to_arrow_iterable():
                for start in range(0, page.num_rows, rows_per_batch):
                    yield page.slice(start, rows_per_batch)

    def run_script(self, statements: Sequence[str], params: Mapping[str, Any] | None = None) -> None:
        script = _transaction(statements)
        with self._errors("the script, nothing changed"):
            self._run(script, _parameters(script, params))

    def table_exists(self, name: str) -> bool:
        with self._errors("a table lookup"):
            try:
                self.client.get_table(self._table_id(name), retry=self._retry)
            except NotFound:
                return False
        return True

    # --- Connection -----------------------------------------------------------------------------

    @cached_property
    def client(self):
        """The client, once the endpoint has answered a call.

        Starting a query job is retried by the client library for up to 10 minutes whatever
        `retry` says, so an unreachable endpoint is found here, by a call that honours it.
        """

        client = self._new_client()
        # NotFound means reachable: ensure_tables creates the dataset
        with self._errors("a first request"), contextlib.suppress(NotFound):
            client.get_dataset(self.dataset_id, retry=self._retry)
        return client

    def _new_client(self):
        if self.endpoint is None:  # production: application default credentials
            with self._errors("the client's creation"):
                return bigquery.Client(project=self.project)

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )

    @property
    def dataset_id(self) -> str:
        return f"{self.project}.{self.dataset}"

    @cached_property
    def _retry(self):
        """Retry of each API call (transient errors, unreachable endpoint) up to retry_timeout."""

        return DEFAULT_RETRY.with_timeout(self.retry_timeout)

    @cached_property
    def _job_retry(self):
        """Retry of a whole query job; the client wants it longer than one call's retry."""

        return DEFAULT_JOB_RETRY.with_timeout(2 * self.retry_timeout)

    def _table_id(self, name: str) -> str:
        return f"{self.dataset_id}.{name}"

    def _run(self, sql: str, parameters: list):
        """Run one query or script job in the configured dataset and wait for its rows."""

        config = bigquery.QueryJobConfig(default_dataset=self.dataset_id, query_parameters=parameters)
        job = self.client.query(sql, job_config=config, retry=self._retry, job_retry=self._job_retry)
        return job.result(retry=self._retry, job_retry=self._job_retry)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn the client's many exception types into one WarehouseError that says where and what."""

        where = f"BigQuery dataset {self.dataset_id}" + (f" at {self.endpoint}" if self.endpoint else "")
        try:
            yield
        except (RetryError, RequestException) as exc:
            raise WarehouseError(f"cannot reach {where}: {_cause(exc)}") from exc
        except GoogleAuthError as exc:
            raise WarehouseError(
                f"no Google Cloud credentials for {where}: {exc}; "
                "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from exc
        except GoogleAPIError as exc:
            raise WarehouseError(f"{where} refused {what}: {exc}") from exc

    # --- Staging --------------------------------------------------------------------------------

    @property
    def staging_dataset_id(self) -> str:
        return f"{self.dataset_id}_staging"

    @cached_property
    def _staging_dataset(self) -> str:
        """The dataset load jobs stage rows in, created once per instance. Its tables expire by
        themselves, so a crashed run leaves nothing behind for long, and none clutter the history."""

        dataset = bigquery.Dataset(self.staging_dataset_id)
        dataset.default_table_expiration_ms = int(STAGING_LIFETIME.total_seconds() * 1000)
        dataset.description = f"Staging tables of replace_hours into {self.dataset_id}; they expire."
        with self._errors("the creation of the staging dataset"):
            # One transaction reads both datasets, so they must share a location.
            dataset.location = self.client.get_dataset(self.dataset_id, retry=self._retry).location
            self.client.create_dataset(dataset, exists_ok=True, retry=self._retry)
        return self.staging_dataset_id

    @contextlib.contextmanager
    def _staging_tables(self) -> Iterator[dict[str, str]]:
        """A dict the caller fills with table name → staging table id; all dropped afterwards."""
        staged: dict[str, str] = {}
        try:
            yield staged
        finally:
            for staging in staged.values():
                with contextlib.suppress(Exception):  # it expires anyway; never hide the real error
                    self.client.delete_table(staging, not_found_ok=True)

    def _load_config(self, table: Table, write_disposition: str):
        return bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=write_disposition,
            schema=_schema(table, staging=True),
        )

    def _load_frame(self, table: Table, frame: pa.Table, staging: str) -> int:
        """Load one in-memory frame (as Parquet) into the staging table `staging`."""

        nullable = pa.schema([field.with_nullable(True) for field in arrow_schema(table)])
        parquet = io.BytesIO()
        pq.write_table(frame.select(table.column_names).cast(nullable), parquet)
        parquet.seek(0)
        config = self._load_config(table, bigquery.WriteDisposition.WRITE_TRUNCATE)
        with self._errors(f"the load of {table.name} rows, nothing changed"):
            job = self.client.load_table_from_file(parquet, staging, job_config=config)
            job.result(retry=self._retry)
        return frame.num_rows

    def _load_files(self, table: Table, paths: list[str], staging: str) -> int:
        """Load staged Parquet files into the staging table `staging` without reading them here.

        gs:// URIs: load jobs from the URIs (BigQuery reads them; at most MAX_LOAD_URIS per job).
        Local paths: on the emulator, which runs on this machine, as file:// URIs the same way; on
        BigQuery itself (a local run writing to a real dataset) one streamed upload per file.
        """

        loaded = 0
        with self._errors(f"the load of staged {table.name} files, nothing changed"):
            remote = all(path.startswith("gs://") for path in paths)
            if remote or self.endpoint is not None:
                uris = paths if remote else [f"file://{Path(path).resolve()}" for path in paths]
                for start in range(0, len(uris), MAX_LOAD_URIS):
                    disposition = "WRITE_TRUNCATE" if start == 0 else "WRITE_APPEND"
                    job = self.client.load_table_from_uri(
                        uris[start : start + MAX_LOAD_URIS],
                        staging,
                        job_config=self._load_config(table, disposition),
                    )
                    job.result(retry=self._retry)
                    loaded += job.output_rows or 0
                return loaded
            for number, path in enumerate(paths):
                disposition = bigquery.WriteDisposition.WRITE_TRUNCATE if number == 0 else "WRITE_APPEND"
                with open(path, "rb") as parquet:
                    job = self.client.load_table_from_file(
                        parquet, staging, job_config=self._load_config(table, disposition)
                    )
                    job.result(retry=self._retry)
                loaded += job.output_rows or 0
        return loaded


def _emulator_url(host: str) -> str:
    """BIGQUERY_EMULATOR_HOST may be `host:port` (like the other emulators' variables) or a URL."""
    return host if re.match(r"^https?://", host) else f"http://{host}"


def _schema(table: Table, *, staging: bool = False) -> list:
    """The table's BigQuery schema. Staging columns are all NULLABLE: the INSERT into the real
    table is what enforces REQUIRED, with BigQuery's own error naming the column."""

    return [
        bigquery.SchemaField(
            column.name,
            column.type,
            mode="REQUIRED" if column.required and not staging else "NULLABLE",
            description=column.description or None,
        )
        for column in table.columns
    ]


def _table_definition(table_id: str, table: Table):
    definition = bigquery.Table(table_id, schema=_schema(table))
    definition.description = table.description or None
    if table.partition_by:
        definition.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.HOUR, field=table.partition_by
        )
    if table.cluster_by:
        definition.clustering_fields = list(table.cluster_by)
    return definition


def _transaction(statements: Sequence[str]) -> str:
    body = "".join(f"{statement.strip().rstrip(';')};\n" for statement in statements)
    return f"BEGIN TRANSACTION;\n{body}COMMIT TRANSACTION;"


def _parameters(sql: str, params: Mapping[str, Any] | None) -> list:
    """Query parameters for the @names the SQL uses (as DuckDBWarehouse, unused ones are left out).

    A list becomes an ARRAY of its first element's type; an empty list is an ARRAY<STRING> and
    None a NULL STRING (BigQuery wants a type for every parameter).
    """

    parameters = []
    for name, value in (params or {}).items():
        if not re.search(rf"@{re.escape(name)}\b", sql):
            continue
        if isinstance(value, (list, tuple, set)):
            values = list(value)
            element_type = bigquery_param_type(values[0]) if values else "STRING"
            parameters.append(bigquery.ArrayQueryParameter(name, element_type, values))
        else:
            parameters.append(bigquery.ScalarQueryParameter(name, bigquery_param_type(value), value))
    return parameters


def _like_duckdb(frame: pd.DataFrame) -> pd.DataFrame:
    """DATE columns as datetime64 (DuckDB's .df() shape), not the db-dtypes `dbdate` extension type,
    so callers see the same frame from either warehouse."""
    for column in frame.columns:
        if str(frame[column].dtype) == "dbdate":
            frame[column] = frame[column].astype("datetime64[us]")
    return frame


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"
