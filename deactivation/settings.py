"""Every setting of the system, in one place.

This is the only module that reads the environment. Each field's name is the environment
variable that sets it (case-insensitive); a `.env` file in the working directory is read too.
The defaults are the embedded local stack; production on Google Cloud changes configuration
only (see README, "Running on Google Cloud").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_MONGO_PORT = 27018

#: The settings that say where data lives; a child process given these sees the same data.
STORE_SETTINGS = ("RAW_STORE_URL", "WAREHOUSE_URL", "MONGODB_URI", "MONGODB_DB", "DATA_DIR")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- Stores -------------------------------------------------------------------------------
    RAW_STORE_URL: str = Field(
        "data/raw",
        description="Where the collector writes raw envelopes: a local directory, or gs://bucket[/prefix].",
    )
    WAREHOUSE_URL: str = Field(
        "duckdb:///data/warehouse.duckdb",
        description="History warehouse: duckdb:///PATH (relative) or duckdb:////ABS/PATH, "
        "or bigquery://PROJECT/DATASET.",
    )
    MONGODB_URI: str = Field(
        f"mongodb://127.0.0.1:{LOCAL_MONGO_PORT}/?directConnection=true",
        description="MongoDB connection string. The default is the local server `deact mongo serve` starts.",
    )
    MONGODB_DB: str = Field("deactivation", description="MongoDB database name.")

    # --- Local stack ----------------------------------------------------------------------------
    DATA_DIR: Path = Field(
        Path("data"), description="Local state: MongoDB files, logs, Prefect database, reports."
    )
    PREFECT_API_URL: str | None = Field(
        None,
        description="Prefect API the flows report to (Prefect's own variable). Unset: `deact demo` uses "
        "the `make up` server if it answers on PREFECT_PORT, else a temporary one with its database "
        "under DATA_DIR/prefect.",
    )
    PREFECT_PORT: int = Field(4200, description="Port of the local Prefect server `make up` starts.")

    # --- Collector ------------------------------------------------------------------------------
    MAX_BODY_BYTES: int = Field(
        256 * 1024, gt=0, description="Largest request body the collector accepts (413 above it)."
    )
    PORT: int = Field(8080, description="Port `deact serve` listens on (Cloud Run sets PORT).")
    INGEST_WORKERS: int = Field(2, ge=1, description="Collector worker processes.")
    INGEST_THREADS: int = Field(
        32,
        ge=1,
        description="Request threads per collector worker. Each waits for its group commit, so more "
        "threads mean bigger batches per fsync (CPU work stays bounded by the GIL).",
    )
    INGEST_BATCH_MAX: int = Field(
        256, ge=1, description="Most envelopes written and fsynced together in one group commit."
    )
    INGEST_COMMITTERS: int = Field(
        2,
        ge=1,
        description="Collector threads per worker that write batches: one can fsync while the "
        "next batch is written (on the 2-core machine 2 beat 1, 3 and 4).",
    )
    INGEST_PROXY_HOPS: int = Field(
        0,
        ge=0,
        description="Reverse proxies in front of the collector that append X-Forwarded-For "
        "(0: use the socket's address as remote_addr; behind Cloud Run or one load balancer: 1).",
    )

    # --- Secrets --------------------------------------------------------------------------------
    SECRET_KEY: str | None = Field(
        None,
        description="Secret every signed or keyed value derives from (dashboard sessions, unsubscribe "
        "links, keyed hashes of personal data in erasure and suppression lists). Set it in production "
        "(from a secret manager), identical on every instance. Unset: a random key is created once in "
        "DATA_DIR/secret_key (local use only).",
    )

    # --- Google Cloud ---------------------------------------------------------------------------
    GCP_PROJECT: str | None = Field(None, description="Google Cloud project for Dataflow and Cloud Run.")
    GCP_REGION: str = Field("us-central1", description="Region for Dataflow jobs and Cloud Run.")
    DATAFLOW_TEMP_LOCATION: str | None = Field(
        None, description="gs:// path Dataflow stages and temp files under."
    )
    BEAM_RUNNER: Literal["FnApiRunner", "DataflowRunner"] = Field(
        "FnApiRunner", description="Beam runner: local FnApiRunner, or DataflowRunner in production."
    )
    STORAGE_EMULATOR_HOST: str | None = Field(
        None, description="GCS emulator base URL (tests and local experiments only)."
    )
    BIGQUERY_EMULATOR_HOST: str | None = Field(
        None,
        description="BigQuery emulator, host:port or base URL (tests and local experiments only).",
    )
    DEACT_GCP_INTEGRATION: bool = Field(
        False,
        description="Run the tests marked `gcp` against the real GCP_PROJECT (application default "
        "credentials; they create and delete a scratch BigQuery dataset).",
    )

    # --- Observability --------------------------------------------------------------------------
    LOG_LEVEL: str = Field("INFO", description="Python logging level.")
    LOG_FORMAT: Literal["text", "json"] = Field(
        "text", description="`json` in production (Cloud Logging reads one JSON object per line)."
    )

    @field_validator("WAREHOUSE_URL")
    @classmethod
    def _known_warehouse(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in {"duckdb", "bigquery"}:
            raise ValueError(f"WAREHOUSE_URL must start with duckdb:// or bigquery://, got {value!r}")
        return value

    @property
    def raw_store_is_gcs(self) -> bool:
        return self.RAW_STORE_URL.startswith("gs://")

    @property
    def warehouse_kind(self) -> Literal["duckdb", "bigquery"]:
        return urlparse(self.WAREHOUSE_URL).scheme  # type: ignore[return-value]

    @property
    def duckdb_path(self) -> Path:
        """Path of the DuckDB file: duckdb:///rel/path or duckdb:////abs/path."""
        if self.warehouse_kind != "duckdb":
            raise ValueError("WAREHOUSE_URL is not a DuckDB URL")
        return Path(self.WAREHOUSE_URL.removeprefix("duckdb:///"))

    @property
    def bigquery_project_dataset(self) -> tuple[str, str]:
        parsed = urlparse(self.WAREHOUSE_URL)
        dataset = parsed.path.strip("/")
        if self.warehouse_kind != "bigquery" or not parsed.netloc or not dataset:
            raise ValueError("WAREHOUSE_URL must look like bigquery://PROJECT/DATASET")
        return parsed.netloc, dataset

    def store_environment(self) -> dict[str, str]:
        """The environment variables that point a child process (a CLI run, a notebook kernel, a
        Prefect worker) at the same stores as these settings."""
        return {name: str(getattr(self, name)) for name in STORE_SETTINGS}

    @property
    def reports_dir(self) -> Path:
        return self.DATA_DIR / "reports"

    @property
    def logs_dir(self) -> Path:
        return self.DATA_DIR / "logs"

    @property
    def mongo_data_dir(self) -> Path:
        return self.DATA_DIR / "mongo"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME of the local stack: the Prefect server's SQLite database lives here."""
        return self.DATA_DIR / "prefect"

    @property
    def run_dir(self) -> Path:
        """PID files of the processes `make up` started (read by `make down`)."""
        return self.DATA_DIR / "run"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def describe_settings() -> list[tuple[str, str, str]]:
    """(name, default, description) for every setting, for `deact settings` and the README."""
    rows = []
    for name, field in Settings.model_fields.items():
        rows.append((name, str(field.default), field.description or ""))
    return rows
