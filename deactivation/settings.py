"""Every setting of the system, in one place.

This is the only module that reads the environment. Each field's name is the environment
variable that sets it (case-insensitive); a `.env` file in the working directory is read too.
The defaults are the embedded local stack; production on Google Cloud changes configuration
only (see README, "Running on Google Cloud").
"""

from __future__ import annotations

import re
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
        description="Threads per collector worker that run the Flask app for the requests the async "
        "front hands it (errors, probes, other paths); accepted SDK requests need no thread.",
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
    INGEST_BODY_TIMEOUT_S: float = Field(
        5.0,
        gt=0,
        description="Seconds a client has to send a request's headers and its whole body; a slower "
        "one is answered 408 (body_timeout) and its connection closed, so slow or idle clients "
        "cannot hold the collector.",
    )
    INGEST_MAX_NESTING: int = Field(
        32,
        ge=1,
        description="Deepest nesting a body may have: JSON objects/arrays inside each other, or "
        "bracket levels of a form field name (400 json_too_deep / form_too_deep above it; an SDK "
        "body nests 3 deep).",
    )
    INGEST_RATE_PER_IP: float = Field(
        10.0,
        ge=0,
        description="Requests per second one client address may send to the SDK routes, per "
        "collector worker, on average (0: no limit); above it 429 rate_limited with Retry-After. "
        "Behind a proxy set INGEST_PROXY_HOPS, or every client shares the proxy's address and limit.",
    )
    INGEST_BURST_PER_IP: int = Field(
        200,
        ge=1,
        description="Requests one client address may send at once before INGEST_RATE_PER_IP applies.",
    )
    INGEST_RATE_PER_PROJECT: float = Field(
        200.0,
        ge=0,
        description="Requests per second one project hash may send, per collector worker, on "
        "average (0: no limit); above it 429 rate_limited with Retry-After.",
    )
    INGEST_BURST_PER_PROJECT: int = Field(
        2000,
        ge=1,
        description="Requests one project hash may send at once before INGEST_RATE_PER_PROJECT applies.",
    )
    INGEST_RATE_TABLE_SIZE: int = Field(
        16384,
        ge=1,
        description="Client addresses and project hashes each collector worker remembers for its "
        "rate limits (least recently seen forgotten first): bounds their memory to a few MB.",
    )

    # --- Dashboard ------------------------------------------------------------------------------
    DASHBOARD_PORT: int = Field(
        8050, description="Port `deact dashboard serve` (and `make up`) runs the dashboard on."
    )
    DASHBOARD_WORKERS: int = Field(1, ge=1, description="Dashboard worker processes.")
    DASHBOARD_THREADS: int = Field(8, ge=1, description="Request threads per dashboard worker.")
    DASHBOARD_RATE_LIMIT: str = Field(
        "300 per minute",
        description="Requests one API key (or, before login, one client address) may make, in the "
        "`limits` notation (e.g. `300 per minute`); above it the dashboard answers 429 with Retry-After.",
    )
    DASHBOARD_RATE_LIMIT_STORAGE: str = Field(
        "memory://",
        description="Where rate-limit counters live: memory:// (per process) or a shared store such "
        "as redis://HOST:6379 when several dashboard instances must share one limit.",
    )
    DASHBOARD_SECURE_COOKIES: bool = Field(
        False,
        description="Mark the dashboard session cookie Secure (HTTPS only). Set true in production.",
    )

    # --- Secrets --------------------------------------------------------------------------------
    SECRET_KEY: str | None = Field(
        None,
        description="Secret every signed or keyed value derives from (dashboard sessions, unsubscribe "
        "links, keyed hashes of personal data in erasure and suppression lists). Set it in production "
        "(from a secret manager), identical on every instance. Unset: a random key is created once in "
        "DATA_DIR/secret_key (local use only).",
    )

    # --- Notifications --------------------------------------------------------------------------
    SMTP_URL: str = Field(
        "smtp://127.0.0.1:8025",
        description="Where mail is sent: smtp://[user:pass@]host[:port] (STARTTLS when the server "
        "offers it, required on 587) or smtps://[user:pass@]host[:465] (TLS from the start). "
        "The default is the local sink `deact mail sink` / `make up` runs.",
    )
    MAIL_FROM: str = Field(
        "Deactivation analytics <notifications@localhost>",
        description="From address of every notification mail.",
    )
    DASHBOARD_URL: str = Field(
        "http://127.0.0.1:8050",
        description="Base URL of the dashboard, for links in mails, alerts and unsubscribe pages.",
    )
    NOTIFY_CONCURRENCY: int = Field(
        4,
        ge=1,
        le=32,
        description="Messages a notification pass sends at once (one SMTP connection each): SMTP "
        "waits on round trips, so a few in parallel multiply throughput.",
    )
    MAILCHIMP_API_KEY: str | None = Field(
        None, description="Mailchimp Marketing API key (ends in -<dc>, e.g. -us6) for list sync."
    )
    MAILERLITE_API_TOKEN: str | None = Field(None, description="MailerLite API token for list sync.")
    BREVO_API_KEY: str | None = Field(
        None, description="Brevo (formerly Sendinblue) API v3 key for list sync (provider `sendinblue`)."
    )
    CONVERTKIT_API_KEY: str | None = Field(
        None, description="Kit (ConvertKit) API v4 key for list sync (provider `convertkit`)."
    )
    NOTIFY_PROVIDER_BASE_URLS: dict[str, str] = Field(
        {},
        description='Override of a list provider\'s API base URL, as JSON ({"mailchimp": '
        '"http://127.0.0.1:9000"}): for tests and sandboxes only.',
    )

    # --- Pipeline orchestration -----------------------------------------------------------------
    PIPELINE_LOCK_WAIT_SECONDS: float = Field(
        600.0,
        ge=0,
        description="How long a pipeline run waits for hours another run holds (a backfill and the "
        "hourly run over the same hours) before it exits naming the hours and the holder; 0: exit at once.",
    )
    PIPELINE_LOCK_LEASE_SECONDS: float = Field(
        300.0,
        ge=5,
        description="Lifetime of a run's lease on its hours (MongoDB `pipeline_locks`); the run renews "
        "it every third of this, so a crashed run frees its hours after at most this long.",
    )
    MONGODB_STATE_WRITERS: int = Field(
        4,
        ge=1,
        le=64,
        description="Parallel bulk writers per pipeline worker that write MongoDB latest state and "
        "mail_outbox after the warehouse commit.",
    )

    # --- Pipeline records -----------------------------------------------------------------------
    DUPLICATE_WINDOW_MINUTES: int = Field(
        10,
        ge=0,
        le=60,
        description="The same project + site + reason + free text received again within this many "
        "minutes (in the same hour) counts once; the later copies become `duplicate` dead letters. "
        "0: only exact re-sends (the same event_id) are dropped.",
    )

    # --- Retention (the daily `retention` flow; docs/privacy.md) ------------------------------------
    RETENTION_RAW_DAYS: int = Field(
        400,
        ge=1,
        description="Days the raw store keeps deactivate/ hour folders (an hour goes once all of it "
        "is older). Hours older than this can no longer be re-run or backfilled.",
    )
    RETENTION_TRACKING_DAYS: int = Field(
        90, ge=1, description="Days the raw store keeps track/ and tracking-skipped/ hour folders."
    )
    RETENTION_REJECTED_DAYS: int = Field(
        30, ge=1, description="Days the raw store keeps rejected/ requests (kept for diagnosis only)."
    )
    RETENTION_WAREHOUSE_DAYS: int = Field(
        400,
        ge=1,
        description="Days of warehouse history (deactivations, sites, deactivation_errors) by raw_hour. "
        "Aggregates hold counts only and are kept.",
    )
    RETENTION_LATEST_STATE_DAYS: int = Field(
        400,
        ge=1,
        description="Days MongoDB keeps a site's latest state (deactivations, sites: admin contact "
        "included) after its last event.",
    )
    RETENTION_OUTBOX_DAYS: int = Field(
        90, ge=1, description="Days MongoDB keeps mail_outbox requests (sent or not) after their event."
    )
    RETENTION_NOTIFICATION_DAYS: int = Field(
        90, ge=1, description="Days MongoDB keeps notification records (what was sent to whom, when)."
    )
    ERASURE_PIPELINE_WAIT_SECONDS: float = Field(
        1800,
        ge=0,
        description="How long `deact erase` waits for pipeline runs that started before it registered "
        "the site (they may still write its rows) before it stops, asking to be run again.",
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
        None,
        description="GCS emulator, host:port or base URL (tests and local experiments only; "
        "`deact stack up --emulators` prints it).",
    )
    BIGQUERY_EMULATOR_HOST: str | None = Field(
        None,
        description="BigQuery emulator, host:port or base URL (tests and local experiments only; "
        "`deact stack up --emulators` prints it).",
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

    @field_validator("STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")
    @classmethod
    def _emulator_base_url(cls, value: str | None) -> str | None:
        """Both forms of either variable, host:port and http://host:port, as one base URL."""
        if not value or not value.strip():
            return None
        value = value.strip().rstrip("/")
        return value if re.match(r"^https?://", value) else f"http://{value}"

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
