"""Warehouse table schemas, written once in BigQuery types and used for DuckDB too.

History tables are plural nouns; every history table carries ``raw_hour``, the hour folder of the
raw store a row came from. The pipeline replaces a whole ``raw_hour`` slice at a time, so a re-run
of an hour changes nothing (BigQuery: tables partitioned by HOUR on raw_hour).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # BigQuery type: STRING, INT64, BOOL, TIMESTAMP, DATE, FLOAT64
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    partition_by: str | None = None  # TIMESTAMP column, hourly partitions on BigQuery
    cluster_by: tuple[str, ...] = ()
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _c(name: str, type_: str, required: bool = False, description: str = "") -> Column:
    return Column(name, type_, required, description)


_VERSIONS = (
    _c("project_version", "STRING", description="Version of the plugin/theme being deactivated."),
    _c("wp_version", "STRING"),
    _c("wp_version_mm", "STRING", description="WordPress major.minor, e.g. 6.5."),
    _c("php_version", "STRING"),
    _c("php_version_mm", "STRING", description="PHP major.minor, e.g. 8.2."),
    _c("mysql_version", "STRING"),
)

DEACTIVATIONS = Table(
    "deactivations",
    (
        _c("event_id", "STRING", True, "UUIDv7 stamped by the collector; unique."),
        _c("raw_hour", "TIMESTAMP", True, "Hour folder of the raw store this row came from."),
        _c("received_at", "TIMESTAMP", True, "When the collector received the request (UTC)."),
        _c("project_hash", "STRING", True),
        _c("project_kind", "STRING", True, "plugin or theme."),
        _c("site_url", "STRING", True),
        _c("reason_id", "STRING", True, "Built-in, custom, 'none', or 'theme-switch'."),
        _c("reason_label", "STRING", True),
        _c("reason_info", "STRING", description="Free text the admin typed; may be empty."),
        *_VERSIONS,
        _c("locale", "STRING"),
        _c("server_software", "STRING"),
        _c("sdk_client", "STRING", description="SDK version string (client)."),
        _c("sdk_generation", "STRING", description="v2 or legacy (SDK v1.1 and earlier)."),
        _c("is_local", "BOOL"),
    ),
    partition_by="raw_hour",
    cluster_by=("project_hash", "reason_id"),
    description="Every valid deactivation, one row per event.",
)

SITES = Table(
    "sites",
    (
        _c("event_id", "STRING", True),
        _c("raw_hour", "TIMESTAMP", True),
        _c("received_at", "TIMESTAMP", True),
        _c("project_hash", "STRING", True),
        _c("site_url", "STRING", True),
        _c("site_name", "STRING"),
        *_VERSIONS,
        _c("locale", "STRING"),
        _c("server_software", "STRING"),
        _c("php_max_upload_size_bytes", "INT64"),
        _c("php_default_timezone", "STRING"),
        _c("php_soap", "BOOL"),
        _c("php_fsockopen", "BOOL"),
        _c("php_curl", "BOOL"),
        _c("wp_memory_limit_bytes", "INT64"),
        _c("wp_debug_mode", "BOOL"),
        _c("wp_multisite", "BOOL"),
        _c("theme_slug", "STRING"),
        _c("theme_name", "STRING"),
        _c("theme_version", "STRING"),
        _c("users_total", "INT64"),
        _c("active_plugins", "INT64"),
        _c("inactive_plugins", "INT64"),
        _c("is_local", "BOOL"),
        _c("tracking_skipped", "BOOL"),
        _c("custom_fields", "STRING", description="Whitelisted extra[...] fields as a JSON object."),
        _c("sdk_client", "STRING"),
    ),
    partition_by="raw_hour",
    cluster_by=("project_hash",),
    description="Site state at each deactivation, one row per valid event (no personal data).",
)

DEACTIVATION_ERRORS = Table(
    "deactivation_errors",
    (
        _c("error_id", "STRING", True, "Deterministic: the same bad input gives the same id."),
        _c("raw_hour", "TIMESTAMP", True),
        _c("error_type", "STRING", True, "unparseable, unknown_project, invalid_reason, invalid_field."),
        _c("detail", "STRING", True, "What was wrong, e.g. the field that could not be cast."),
        _c("raw_file", "STRING", True, "Path of the raw file, relative to RAW_STORE_URL."),
        _c("raw_line", "INT64", True, "1-based line in the raw file (1 for a .json file)."),
        _c("event_id", "STRING"),
        _c("project_hash", "STRING"),
        _c("received_at", "TIMESTAMP"),
        _c("raw_envelope", "STRING", True, "The raw envelope (or the raw text when unparseable)."),
    ),
    partition_by="raw_hour",
    cluster_by=("error_type",),
    description="Every rejected record, with a typed reason.",
)

HOUR_LOADS = Table(
    "hour_loads",
    (
        _c("raw_hour", "TIMESTAMP", True),
        _c("loaded_at", "TIMESTAMP", True, "When this hour was last (re)loaded; analytics' watermark."),
        _c("files", "INT64", True),
        _c("records_read", "INT64", True),
        _c("deactivations", "INT64", True),
        _c("sites", "INT64", True),
        _c("errors", "INT64", True),
    ),
    description="One row per processed raw hour (replaced on re-run).",
)

HISTORY_TABLES: tuple[Table, ...] = (DEACTIVATIONS, SITES, DEACTIVATION_ERRORS)
ALL_TABLES: dict[str, Table] = {t.name: t for t in (*HISTORY_TABLES, HOUR_LOADS)}

DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
    "FLOAT64": "DOUBLE",
}
