"""The workbench's BigQuery path (through the warehouse adapter) against the local BigQuery emulator."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from deact import workbench
from deactivation.schemas import DEACTIVATIONS
from deactivation.settings import Settings
from deactivation.warehouse import rows_to_arrow

HOUR = datetime(2026, 11, 20, 9, tzinfo=UTC)


def _row(event_id: str, project_hash: str, reason_id: str) -> dict:
    return {
        "event_id": event_id,
        "raw_hour": HOUR,
        "received_at": HOUR,
        "project_hash": project_hash,
        "project_kind": "plugin",
        "site_url": "https://a.example",
        "reason_id": reason_id,
        "reason_label": reason_id,
    }


@pytest.fixture
def bigquery_settings(bigquery_emulator) -> Settings:
    """A fresh emulator dataset holding three deactivations, and settings that point at it."""
    dataset = f"test_{uuid.uuid4().hex[:12]}"
    warehouse = bigquery_emulator.warehouse(dataset)
    warehouse.ensure_tables([DEACTIVATIONS])
    rows = [_row("e1", "p1", "other"), _row("e2", "p1", "none"), _row("e3", "p2", "other")]
    warehouse.replace_hours([HOUR], {"deactivations": rows_to_arrow(DEACTIVATIONS, rows)})
    return Settings(
        WAREHOUSE_URL=f"bigquery://{bigquery_emulator.project}/{dataset}",
        BIGQUERY_EMULATOR_HOST=bigquery_emulator.host,
        _env_file=None,
    )


PERIOD = workbench.Period(date(2026, 11, 20), date(2026, 11, 20))


@pytest.mark.slow
def test_bigquery_sql_runs_through_pandas_gbq_with_parameters(bigquery_settings):
    frame = workbench.run_sql(
        """
        SELECT DATE(raw_hour) AS day, reason_id, COUNT(*) AS deactivations
        FROM deactivations
        WHERE project_hash = @project_hash AND DATE(raw_hour) BETWEEN @start_day AND @end_day
        GROUP BY day, reason_id
        ORDER BY reason_id
        """,
        workbench.chart_params("p1", PERIOD),
        settings=bigquery_settings,
    )

    assert frame["reason_id"].tolist() == ["none", "other"]
    assert frame["deactivations"].tolist() == [1, 1]
    assert str(frame["day"].dtype).startswith("datetime64")  # the same frame shape DuckDB gives


@pytest.mark.slow
def test_the_prototype_chart_sql_runs_unchanged_on_bigquery(bigquery_settings):
    from reports.promotion import read_prototype

    from .conftest import PROTOTYPE

    sql = read_prototype(PROTOTYPE).sql
    frame = workbench.run_sql(sql, workbench.chart_params("p1", PERIOD), settings=bigquery_settings)
    assert frame["reason_id"].tolist() == ["none", "other"]
    assert frame["share"].tolist() == [0.5, 0.5]
