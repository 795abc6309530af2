"""Every reports/sql/*.sql file gives the same rows on DuckDB (sqlglot's transpilation) as on
BigQuery (the local emulator), over the same small seeded history.

Generic on purpose: the files are discovered, and the tables each one reads are found by parsing
it. History tables are seeded through `replace_hours`; any other table a file reads is an
aggregate, filled on both warehouses from its own file the way analytics fills it (INSERT … SELECT
in one `run_script`, in dependency order). Then each file runs on both with the parameters it uses
(@project_hash, @start_day, @end_day, @days, @hours) and the sorted frames must be equal.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.schemas import ALL_TABLES, DEACTIVATION_ERRORS, DEACTIVATIONS, SITES
from deactivation.warehouse import DuckDBWarehouse, rows_to_arrow

SQL_DIR = Path(__file__).parents[2] / "reports" / "sql"
SQL_FILES = sorted(SQL_DIR.glob("*.sql"))

FIRST_DAY = date(2026, 11, 1)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(3)]
HOURS = [datetime(d.year, d.month, d.day, h, tzinfo=UTC) for d in DAYS for h in (0, 9, 17, 23)]
PLUGIN, PLAIN_PLUGIN, THEME = (
    "11111111-2222-4333-8444-555555555555",
    "66666666-7777-4888-9999-aaaaaaaaaaaa",
    "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff",
)
NO_DATA_PROJECT = "00000000-0000-4000-8000-000000000000"
REASONS = {
    PLUGIN: [
        ("could-not-understand", "I couldn't understand how to make it work"),
        ("found-better-plugin", "I found a better plugin"),
        ("too-pricey", "Too expensive"),
        ("none", "None"),
    ],
    PLAIN_PLUGIN: [("temporary-deactivation", "It's a temporary deactivation"), ("other", "Other")],
    THEME: [("theme-switch", "Theme switched")],
}
ANSWERS = [
    "Too expensive for my small site, too expensive",
    "found another plugin that is faster and cheaper",
    "broke my checkout page, checkout broken after update 2.1",
    "mail me at someone@example.com or see https://example.com/page",
    "",
    None,
    "faster alternative found, cheaper alternative",
]


def history_rows() -> tuple[list[dict], list[dict]]:
    """A deterministic few hundred deactivations over three days, three projects, nulls included."""
    pick = random.Random(20261101)
    deactivations, sites = [], []
    for hour in HOURS:
        for project, reasons in REASONS.items():
            for n in range(pick.randint(0, 7)):
                reason_id, reason_label = pick.choice(reasons)
                common = {
                    "event_id": f"{project[:8]}-{hour:%Y%m%d%H}-{n}",
                    "raw_hour": hour,
                    "received_at": hour + timedelta(minutes=pick.randint(0, 59), seconds=n),
                    "project_hash": project,
                    "site_url": f"https://site-{pick.randint(1, 40)}.example",
                    "project_version": pick.choice(["1.2.0", "1.3.1", "2.0.0-beta.1", None]),
                    "wp_version": (wp := pick.choice(["6.4.3", "6.5.2", "6.5", None])),
                    "wp_version_mm": ".".join(wp.split(".")[:2]) if wp else None,
                    "php_version": (php := pick.choice(["8.1.27", "8.2.10", "7.4.33", None])),
                    "php_version_mm": ".".join(php.split(".")[:2]) if php else None,
                    "locale": pick.choice(["en_US", "de_DE", "pt_BR", None]),
                    "server_software": pick.choice(["Apache/2.4.58", "nginx/1.25.3", "LiteSpeed", None]),
                    "is_local": pick.random() < 0.2,
                }
                deactivations.append(
                    common
                    | {
                        "project_kind": "theme" if project == THEME else "plugin",
                        "reason_id": reason_id,
                        "reason_label": reason_label,
                        "reason_info": None if project == THEME else pick.choice(ANSWERS),
                        "sdk_generation": "v2",
                    }
                )
                site = {
                    "wp_memory_limit_bytes": pick.choice([None, 268435456]),
                    "php_curl": pick.random() < 0.9,
                }
                sites.append(common | site)
    return deactivations, sites


def dead_letter_rows() -> list[dict]:
    """A few rejected records of every type over the same hours, some without a readable project."""
    pick = random.Random(20261102)
    rows = []
    for hour in HOURS:
        for n in range(pick.randint(0, 4)):
            project = pick.choice([*REASONS, None])
            rows.append(
                {
                    "error_id": f"err-{hour:%Y%m%d%H}-{n}",
                    "raw_hour": hour,
                    "error_type": pick.choice(DEAD_LETTER_TYPES),
                    "detail": "seeded",
                    "raw_file": f"deactivate/{hour:%Y/%m/%d/%H}/seed.ndjson",
                    "raw_line": n + 1,
                    "event_id": None,
                    "project_hash": project,
                    "received_at": hour if project else None,
                    "raw_envelope": "",
                }
            )
    return rows


def tables_read(sql: str) -> set[str]:
    """Names of the tables a statement reads (its own CTEs left out)."""
    tree = sqlglot.parse_one(sql, read="bigquery")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {table.name for table in tree.find_all(exp.Table) if table.name and table.name not in ctes}


def fill_order(derived: set[str], reads: dict[str, set[str]]) -> list[str]:
    """The derived tables, each after the derived tables its own file reads."""
    ordered: list[str] = []
    while len(ordered) < len(derived):
        ready = sorted(t for t in derived - set(ordered) if reads[t] & derived <= set(ordered))
        if not ready:
            raise AssertionError(f"circular reads among {sorted(derived - set(ordered))}")
        ordered.extend(ready)
    return ordered


def aggregate_table(name: str):
    from reports.aggregates import get_aggregate

    try:
        return get_aggregate(name).table
    except KeyError:
        raise AssertionError(
            f"{name} is read by a reports/sql file but is neither a history table "
            "nor an aggregate in reports/aggregates.py"
        ) from None


def reads_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


SLICE_PARAMS = {"days": DAYS, "hours": HOURS, "start_day": DAYS[0], "end_day": DAYS[-1]}


def seed(warehouse, reads: dict[str, set[str]]) -> None:
    deactivations, sites = history_rows()
    warehouse.ensure_tables()
    warehouse.replace_hours(
        HOURS,
        {
            "deactivations": rows_to_arrow(DEACTIVATIONS, deactivations),
            "sites": rows_to_arrow(SITES, sites),
            "deactivation_errors": rows_to_arrow(DEACTIVATION_ERRORS, dead_letter_rows()),
        },
    )
    derived = {table for read in reads.values() for table in read} - set(ALL_TABLES)
    missing = derived - set(reads)
    assert not missing, f"tables read but made by no reports/sql file: {sorted(missing)}"
    tables = {name: aggregate_table(name) for name in derived}
    warehouse.ensure_tables(list(tables.values()))
    statements = [
        f"INSERT INTO {name} ({', '.join(tables[name].column_names)})\n{reads_sql(name)}"
        for name in fill_order(derived, reads)
    ]
    if statements:
        warehouse.run_script(statements, SLICE_PARAMS)


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory, bigquery_emulator):
    """DuckDB and the emulator, seeded alike; built once for all files (the emulator is slow)."""
    reads = {path.stem: tables_read(path.read_text()) for path in SQL_FILES}
    duckdb = DuckDBWarehouse(str(tmp_path_factory.mktemp("dialects") / "warehouse.duckdb"))
    bigquery = bigquery_emulator.warehouse()
    for warehouse in (duckdb, bigquery):
        seed(warehouse, reads)
    return duckdb, bigquery


def parameter_sets(sql: str) -> list[dict]:
    """The parameters a file uses: the whole seeded slice for aggregates; for a chart, each kind of
    project (custom reasons, plain, theme, none at all) over a period with data before it."""
    used = set(re.findall(r"@(\w+)", sql))
    period = {"start_day": DAYS[1], "end_day": DAYS[-1]}
    if "project_hash" in used:
        candidates = [{"project_hash": project} | period for project in (*REASONS, NO_DATA_PROJECT)]
    else:
        candidates = [SLICE_PARAMS]
    return [{name: value for name, value in params.items() if name in used} for params in candidates]


def normalised(frame: pd.DataFrame) -> tuple[list[str], list[tuple]]:
    """Column names and rows, sorted, with each warehouse's value types made plain and comparable."""

    def plain(value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
        if isinstance(value, float) or hasattr(value, "dtype"):
            number = float(value)
            return int(number) if number.is_integer() else round(number, 9)
        return value

    rows = [tuple(plain(v) for v in row) for row in frame.astype(object).itertuples(index=False)]
    return list(frame.columns), sorted(rows, key=repr)


def test_sql_files_exist() -> None:
    if not SQL_FILES:
        pytest.skip(f"no SQL files under {SQL_DIR} yet: nothing to compare")
    assert all(path.read_text().strip() for path in SQL_FILES)


@pytest.mark.slow
@pytest.mark.parametrize("path", SQL_FILES, ids=[path.stem for path in SQL_FILES])
def test_sql_file_gives_the_same_rows_on_duckdb_and_bigquery(path: Path, warehouses) -> None:
    duckdb, bigquery = warehouses
    sql = path.read_text()
    compared = 0
    for params in parameter_sets(sql):
        on_duckdb = normalised(duckdb.query(sql, params))
        on_bigquery = normalised(bigquery.query(sql, params))
        assert on_duckdb == on_bigquery, f"{path.name} differs with {params}"
        compared += len(on_duckdb[1])
    assert compared, f"{path.name} returned no rows on the seeded history"
