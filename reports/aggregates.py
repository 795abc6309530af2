"""The aggregate tables analytics builds: their schemas, keys, grain and the SQL that fills them.

Each aggregate is filled by one BigQuery-dialect SELECT in `reports/sql/<name>.sql`, parameterised
by the slice it rebuilds: `@hours` (hour grain) or `@days` (day grain), plus `@start_day` and
`@end_day` bounding that slice (so BigQuery prunes partitions of `deactivations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deactivation.schemas import Column, Table

SQL_DIR = Path(__file__).parent / "sql"


def _c(name: str, type_: str, description: str = "") -> Column:
    return Column(name, type_, True, description)


_PROJECT = _c("project_hash", "STRING")
_HOUR = _c("hour", "TIMESTAMP", "Raw hour (UTC) the deactivations were received in.")
_DAY = _c("day", "DATE", "UTC day the deactivations were received on.")
_REASON = (_c("reason_id", "STRING"), _c("reason_label", "STRING"))
_COUNT = _c("deactivations", "INT64")
_SHARE = _c("share", "FLOAT64", "This reason's fraction of the project's deactivations in the slot.")
_VERSION = _c("project_version", "STRING", "Version of the plugin/theme being deactivated, or 'unknown'.")
_ENVIRONMENT = (
    _c("dimension", "STRING", "wp_version, php_version (major.minor), locale or server_software."),
    _c("value", "STRING", "The dimension's value, or 'unknown'."),
)


@dataclass(frozen=True)
class Aggregate:
    table: Table
    grain: Literal["hour", "day"]
    key: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.table.name

    def select_sql(self) -> str:
        return (SQL_DIR / f"{self.name}.sql").read_text()


def _aggregate(name: str, grain: Literal["hour", "day"], *columns: Column, description: str) -> Aggregate:
    slot = _HOUR if grain == "hour" else _DAY
    all_columns = (_PROJECT, slot, *columns)
    dimensions = tuple(c.name for c in columns if c.type == "STRING" and c.name != "reason_label")
    key = ("project_hash", grain, *dimensions)
    # Dashboards read one project over a range of hours/days: cluster on exactly that (BigQuery).
    table = Table(name, all_columns, cluster_by=("project_hash", grain), description=description)
    return Aggregate(table, grain, key)


#: In build order: an aggregate summed from another comes after it (daily from hourly, reasons from
#: versions by reason); they are rebuilt in this order inside one transaction.
AGGREGATES: tuple[Aggregate, ...] = (
    _aggregate(
        "hourly_version_reason_counts",
        "hour",
        _VERSION,
        *_REASON,
        _COUNT,
        description="Deactivations per project, hour, project version and reason.",
    ),
    _aggregate(
        "hourly_reason_counts",
        "hour",
        *_REASON,
        _COUNT,
        _SHARE,
        description="Deactivations per project, hour and reason.",
    ),
    _aggregate(
        "daily_reason_counts",
        "day",
        *_REASON,
        _COUNT,
        _SHARE,
        description="Deactivations per project, day and reason.",
    ),
    _aggregate(
        "daily_version_reason_counts",
        "day",
        _VERSION,
        *_REASON,
        _COUNT,
        description="Deactivations per project, day, project version and reason.",
    ),
    _aggregate(
        "hourly_environment_counts",
        "hour",
        *_ENVIRONMENT,
        _COUNT,
        description="Deactivations per project and hour by WordPress/PHP version, locale, server.",
    ),
    _aggregate(
        "daily_environment_counts",
        "day",
        *_ENVIRONMENT,
        _COUNT,
        description="Deactivations per project and day by WordPress/PHP version, locale, server.",
    ),
    _aggregate(
        "daily_reason_terms",
        "day",
        *_REASON,
        _c("term", "STRING"),
        _c("mentions", "INT64"),
        description="Word counts of free-text answers per project, day and reason.",
    ),
    _aggregate(
        "daily_free_text_counts",
        "day",
        _COUNT,
        _c("with_text", "INT64", "Deactivations whose free-text answer is not empty."),
        description="Deactivations per project and day, and how many carried a free-text answer "
        "(the dashboard's share-with-free-text tile).",
    ),
    _aggregate(
        "daily_dead_letter_counts",
        "day",
        _c("error_type", "STRING", "The dead-letter type (deactivation.dead_letters)."),
        _c("dead_letters", "INT64"),
        description="Rejected records per project (empty when none could be read) and day, by "
        "dead-letter type: the dashboard's data-quality panel.",
    ),
)

ANALYTICS_BUILDS = Table(
    "analytics_builds",
    (
        _c("built_at", "TIMESTAMP", "When this build ran."),
        _c("watermark", "TIMESTAMP", "Latest hour_loads.loaded_at this build had seen."),
        _c("full_rebuild", "BOOL"),
        _c("hours_rebuilt", "INT64"),
        _c("days_rebuilt", "INT64"),
    ),
    description="One row per analytics build; the latest watermark says what is already aggregated.",
)


def get_aggregate(name: str) -> Aggregate:
    for aggregate in AGGREGATES:
        if aggregate.name == name:
            return aggregate
    raise KeyError(f"no aggregate named {name!r}")
