"""The warehouse step of an erasure, on DuckDB and on the BigQuery emulator: the same SQL deletes the
site's rows and dead letters and recounts the touched hours' hour_loads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from deactivation.schemas import DEACTIVATION_ERRORS, DEACTIVATIONS, HOUR_LOADS, SITES
from deactivation.warehouse import DuckDBWarehouse, rows_to_arrow
from privacy.erase import ScrubbedRoute, scrub_warehouse
from privacy.matching import Subjects

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
SITE, OTHER = "https://shop.example", "https://shop.example.org"
HOURS = [datetime(2026, 5, 1, 10, tzinfo=UTC), datetime(2026, 5, 1, 11, tzinfo=UTC)]
LOADED_AT = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "duckdb":
        return DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    return request.getfixturevalue("bigquery_warehouse")


def _rows(hour: datetime, site: str, n: int) -> tuple[dict, dict]:
    shared = {
        "event_id": f"{site[-3:]}-{hour:%H}-{n}",
        "raw_hour": hour,
        "received_at": hour + timedelta(minutes=n),
        "project_hash": PROJECT,
        "site_url": site,
    }
    return {**shared, "project_kind": "plugin", "reason_id": "other", "reason_label": "Other"}, shared


def _error(hour: datetime, n: int, raw_envelope: str, project_hash: str | None = PROJECT) -> dict:
    return {
        "error_id": f"e-{hour:%H}-{n}",
        "raw_hour": hour,
        "error_type": "invalid_field" if project_hash else "unparseable",
        "detail": "d",
        "raw_file": f"deactivate/{hour:%Y/%m/%d/%H}/f.ndjson",
        "raw_line": n,
        "project_hash": project_hash,
        "raw_envelope": raw_envelope,
    }


def _load(warehouse) -> None:
    warehouse.ensure_tables()
    deactivations, sites, errors, loads = [], [], [], []
    for hour in HOURS:
        for n, site in enumerate((SITE, OTHER, SITE)):
            deactivation, site_row = _rows(hour, site, n)
            deactivations.append(deactivation)
            sites.append(site_row)
        errors += [
            _error(hour, 7, orjson.dumps({"body": {"hash": PROJECT, "url": SITE + "/"}}).decode()),
            _error(hour, 8, orjson.dumps({"body": {"hash": PROJECT, "url": OTHER}}).decode()),
            _error(hour, 9, '{"body": {"url": "[url]", "wp', project_hash=None),  # torn, URL masked
        ]
        loads.append(
            {"raw_hour": hour, "loaded_at": LOADED_AT, "files": 5, "records_read": 6, "deactivations": 3,
             "sites": 3, "errors": 3}
        )  # fmt: skip
    warehouse.replace_hours(
        HOURS,
        {
            DEACTIVATIONS.name: rows_to_arrow(DEACTIVATIONS, deactivations),
            SITES.name: rows_to_arrow(SITES, sites),
            DEACTIVATION_ERRORS.name: rows_to_arrow(DEACTIVATION_ERRORS, errors),
            HOUR_LOADS.name: rows_to_arrow(HOUR_LOADS, loads),
        },
    )


def test_the_site_s_rows_go_and_hour_loads_are_recounted(warehouse):
    _load(warehouse)
    subjects = Subjects(PROJECT, b"k" * 32)
    subjects.add_site(SITE)
    torn = f"deactivate/{HOURS[1]:%Y/%m/%d/%H}/f.ndjson#9"
    scrubbed = ScrubbedRoute(deleted_file_hours=[HOURS[0], HOURS[0]], removed_records=[torn])

    dry = scrub_warehouse(warehouse, subjects, scrubbed, dry_run=True)
    assert warehouse.query("SELECT COUNT(*) AS n FROM deactivations")["n"][0] == 6
    counts = scrub_warehouse(warehouse, subjects, scrubbed, dry_run=False)

    assert counts == dry == {"deactivations": 4, "sites": 4, "deactivation_errors": 3}
    left = warehouse.query(
        "SELECT DISTINCT site_url FROM deactivations UNION ALL SELECT DISTINCT site_url FROM sites"
    )
    assert set(left["site_url"]) == {OTHER}
    errors = warehouse.query("SELECT error_id FROM deactivation_errors ORDER BY error_id")
    assert list(errors["error_id"]) == ["e-10-8", "e-10-9", "e-11-8"]
    loads = warehouse.query("SELECT * FROM hour_loads ORDER BY raw_hour").to_dict("records")
    assert [(r["files"], r["records_read"], r["deactivations"], r["sites"], r["errors"]) for r in loads] == [
        (3, 3, 1, 1, 2),
        (5, 2, 1, 1, 1),
    ]
    assert all(r["loaded_at"].to_pydatetime() > LOADED_AT for r in loads)
