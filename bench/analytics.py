"""Benchmark: analytics on a DuckDB warehouse with 10M deactivations.

Times a full rebuild of every aggregate, and an incremental build after the pipeline re-loaded one
hour (targets: full < 5 s, one hour < 1 s). MongoDB publishing is timed separately with --mongo,
since it depends on the document store, not on the SQL.

    .venv/bin/python bench/analytics.py [--rows 10000000] [--days 90] [--dir DIR] [--mongo]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deactivation.generator import ANSWERS, DEMO_PROJECTS, GENERIC_ANSWERS
from deactivation.reasons import reason_labels
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse
from reports.analytics import build_analytics

FIRST_HOUR = datetime(2026, 8, 1, tzinfo=UTC)
FIRST_LOAD = datetime(2026, 11, 1, tzinfo=UTC)  # older than any real load: reloads come after it


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


def fill_warehouse(settings: Settings, rows: int, days: int) -> None:
    """Insert `rows` synthetic deactivations spread over `days` days, and their hour_loads rows."""
    import duckdb

    warehouse = open_warehouse(settings)
    warehouse.ensure_tables()
    hours = days * 24
    plugin, simple, theme = DEMO_PROJECTS
    reasons = list(reason_labels(plugin.custom_reasons))
    reasons.remove("theme-switch")
    labels = reason_labels(plugin.custom_reasons)
    # Each reason's answers as the generator writes them ("" = no answer), as a DuckDB map.
    answers = (
        "map_from_entries(["
        + ", ".join(f"('{reason}', {_sql_list(ANSWERS.get(reason, GENERIC_ANSWERS))})" for reason in reasons)
        + "])"
    )
    with duckdb.connect(str(settings.duckdb_path)) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(
            f"""
            INSERT INTO deactivations
            WITH base AS (
              SELECT i,
                     TIMESTAMPTZ '{FIRST_HOUR.isoformat()}' + INTERVAL 1 HOUR * (i % {hours})
                       + to_microseconds(CAST(hash(i) % 3600000000 AS BIGINT)) AS received_at,
                     CAST(hash(i * 7 + 1) % 1000003 AS BIGINT) AS h1,
                     CAST(hash(i * 7 + 2) % 1000003 AS BIGINT) AS h2,
                     CAST(hash(i * 7 + 3) % 1000003 AS BIGINT) AS h3
              FROM range({rows}) AS t(i)
            ), shaped AS (
              SELECT *,
                     CASE WHEN h1 % 10 < 5 THEN '{plugin.hash}'
                          WHEN h1 % 10 < 8 THEN '{simple.hash}' ELSE '{theme.hash}' END AS project_hash,
                     {_sql_list(reasons)}[1 + (h2 % {len(reasons)})] AS plugin_reason
              FROM base
            )
            SELECT
              printf('%08x-bench-%d', i, i) AS event_id,
              date_trunc('hour', received_at) AS raw_hour,
              received_at,
              project_hash,
              CASE WHEN project_hash = '{theme.hash}' THEN 'theme' ELSE 'plugin' END AS project_kind,
              printf('https://site-%d.example.com', h3 % 200000) AS site_url,
              CASE WHEN project_hash = '{theme.hash}' THEN 'theme-switch' ELSE plugin_reason END AS reason_id,
              CASE WHEN project_hash = '{theme.hash}' THEN '{labels["theme-switch"]}'
                   ELSE map_from_entries({
                "["
                + ", ".join(f"('{k}', '{v.replace(chr(39), chr(39) * 2)}')" for k, v in labels.items())
                + "]"
            })[plugin_reason] END AS reason_label,
              CASE WHEN project_hash = '{theme.hash}' THEN NULL
                   ELSE list_extract({answers}[plugin_reason], 1 + (h3 % len({answers}[plugin_reason])))
              END AS reason_info,
              ['2.2.0', '2.3.1', '2.4.0'][1 + (h2 % 3)] AS project_version,
              ['6.6.1', '6.5.3', '6.4.3', '6.3', '5.9.10'][1 + (h1 % 5)] AS wp_version,
              ['6.6', '6.5', '6.4', '6.3', '5.9'][1 + (h1 % 5)] AS wp_version_mm,
              ['8.3.7', '8.2.36', '8.1.29', '7.4.33'][1 + (h3 % 4)] AS php_version,
              ['8.3', '8.2', '8.1', '7.4'][1 + (h3 % 4)] AS php_version_mm,
              '8.0.35' AS mysql_version,
              ['en_US', 'de_DE', 'fr_FR', 'es_ES', 'pt_BR', 'ja'][1 + (h2 % 6)] AS locale,
              ['nginx/1.24.0', 'Apache/2.4.57', 'LiteSpeed', NULL][1 + (h1 % 4)] AS server_software,
              '2.0.5' AS sdk_client,
              'v2' AS sdk_generation,
              FALSE AS is_local
            FROM shaped
            ORDER BY raw_hour  -- the pipeline loads hour by hour, so history is clustered by hour
            """
        )
        connection.execute(
            f"""
            INSERT INTO hour_loads
            SELECT raw_hour, TIMESTAMPTZ '{FIRST_LOAD.isoformat()}', 1, COUNT(*), COUNT(*), 0, 0
            FROM deactivations GROUP BY raw_hour
            """
        )


def reload_hour(settings: Settings, hour: datetime, loaded_at: datetime) -> None:
    """What a pipeline re-run of one hour does: replace its rows and stamp a new loaded_at."""
    import duckdb

    with duckdb.connect(str(settings.duckdb_path)) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("UPDATE hour_loads SET loaded_at = ? WHERE raw_hour = ?", [loaded_at, hour])


def timed(label: str, function, repeat: int, prepare=lambda: None) -> list[float]:
    seconds = []
    for _ in range(repeat):
        prepare()
        started = time.perf_counter()
        summary = function()
        seconds.append(time.perf_counter() - started)
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    print(
        f"{label:<42} median {statistics.median(seconds):6.3f} s   runs {runs}"
        f"   (hours {len(summary.hours_rebuilt)}, days {len(summary.days_rebuilt)},"
        f" rows {sum(summary.tables.values())}, published {sum(summary.published.values())})"
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=None, help="Where the DuckDB file goes (default: a temp dir)."
    )
    parser.add_argument("--mongo", action="store_true", help="Also time publishing to a local MongoDB.")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    directory.mkdir(parents=True, exist_ok=True)
    mongo = None
    if args.mongo:
        from deactivation.mongo import LocalMongoServer

        mongo = LocalMongoServer(directory / "mongo").start()
    try:
        settings = Settings(
            WAREHOUSE_URL=f"duckdb:///{(directory / 'warehouse.duckdb').resolve()}",
            RAW_STORE_URL=str(directory / "raw"),
            DATA_DIR=directory / "data",
            MONGODB_URI=mongo.uri if mongo else "mongodb://127.0.0.1:1/?directConnection=true",
            MONGODB_DB="bench_analytics",
            _env_file=None,
        )
        if settings.duckdb_path.exists():
            print(f"warehouse: reusing {settings.duckdb_path} (delete it to fill a new one)")
        else:
            started = time.perf_counter()
            fill_warehouse(settings, args.rows, args.days)
            print(
                f"warehouse: {args.rows:,} deactivations over {args.days} days in {directory}"
                f" (filled in {time.perf_counter() - started:.1f} s)"
            )

        timed(
            "full rebuild (SQL, no publishing)",
            lambda: build_analytics(settings, full=True, publish=False),
            args.repeat,
        )

        last_hour = FIRST_HOUR + timedelta(hours=args.days * 24 - 1)

        def pipeline_reloads_last_hour():
            reload_hour(settings, last_hour, datetime.now(UTC))

        timed(
            "incremental, one hour re-loaded (SQL)",
            lambda: build_analytics(settings, publish=False),
            args.repeat,
            prepare=pipeline_reloads_last_hour,
        )
        if mongo:
            timed(
                "incremental, one hour, with MongoDB publish",
                lambda: build_analytics(settings),
                args.repeat,
                prepare=pipeline_reloads_last_hour,
            )
    finally:
        if mongo:
            mongo.stop()


if __name__ == "__main__":
    main()
