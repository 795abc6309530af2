"""The workbench API: clear errors when there is nothing to look at, and the BigQuery path."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from deact import workbench
from deactivation.settings import Settings
from deactivation.warehouse import WarehouseError, open_warehouse


def test_a_missing_warehouse_says_to_run_make_demo(settings):
    with pytest.raises(workbench.WorkbenchError, match="run `make demo`"):
        workbench.run_sql("SELECT 1", settings=settings)
    assert not settings.duckdb_path.exists(), "the workbench must not create an empty warehouse"


def test_an_empty_warehouse_says_to_run_make_demo(settings, mongo_db):
    open_warehouse(settings).ensure_tables()
    with pytest.raises(workbench.WorkbenchError, match="no deactivations yet: run `make demo`"):
        workbench.resolve_project("", settings)


def test_a_missing_aggregate_says_how_to_build_it(settings):
    open_warehouse(settings).ensure_tables()
    with pytest.raises(workbench.WorkbenchError, match="deact analytics build"):
        workbench.run_sql("SELECT * FROM daily_reason_counts", settings=settings)


def test_an_unreachable_mongodb_says_how_to_start_it(settings):
    open_warehouse(settings).ensure_tables()
    unreachable = settings.model_copy(update={"MONGODB_URI": "mongodb://127.0.0.1:9/?directConnection=true"})
    with pytest.raises(workbench.WorkbenchError, match="deact mongo serve"):
        workbench.list_projects(unreachable)


def test_sql_errors_are_reported_as_they_are(settings):
    open_warehouse(settings).ensure_tables()
    with pytest.raises(workbench.WorkbenchError, match="no_such_column"):
        workbench.run_sql("SELECT no_such_column FROM deactivations", settings=settings)


class _RecordingWarehouse:
    """Stands in for the BigQuery adapter (whose typing of parameters its own tests check against
    the emulator, as tests/notebooks/test_workbench_bigquery.py does for the workbench)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.error = error

    def query(self, sql, params=None):
        self.calls.append((sql, dict(params or {})))
        if self.error:
            raise self.error
        return pd.DataFrame({"n": [1]})


def test_bigquery_queries_go_through_the_warehouse_adapter(monkeypatch):
    recording = _RecordingWarehouse()
    opened = []
    monkeypatch.setattr(workbench, "open_warehouse", lambda s: opened.append(s) or recording)
    settings = Settings(WAREHOUSE_URL="bigquery://acme-analytics/deactivation", _env_file=None)
    params = {"project_hash": "p", "start_day": date(2026, 11, 1), "versions": ["1.0", "1.1"]}
    sql = "SELECT 1 AS n WHERE @project_hash = 'p' AND @start_day > '2026' AND '1.0' IN UNNEST(@versions)"

    frame = workbench.run_sql(sql, params, settings=settings)

    assert frame["n"].tolist() == [1]
    assert recording.calls == [(sql, params)]
    assert opened == [settings]


def test_an_unreachable_bigquery_is_a_workbench_error(monkeypatch):
    refusing = _RecordingWarehouse(
        WarehouseError("BigQuery did not answer: no route to bigquery.googleapis.com")
    )
    monkeypatch.setattr(workbench, "open_warehouse", lambda s: refusing)
    settings = Settings(WAREHOUSE_URL="bigquery://acme-analytics/deactivation", _env_file=None)
    with pytest.raises(workbench.WorkbenchError, match="did not answer"):
        workbench.run_sql("SELECT 1", settings=settings)


def test_a_period_ends_on_the_given_day():
    period = workbench.resolve_period(7, "2026-11-28")
    assert (period.start_day, period.end_day) == (date(2026, 11, 22), date(2026, 11, 28))
    with pytest.raises(workbench.WorkbenchError, match="at least one day"):
        workbench.resolve_period(0, "2026-11-28")
    with pytest.raises(workbench.WorkbenchError, match="looks like"):
        workbench.resolve_period(7, "28/11/2026")


def test_free_text_is_shown_with_personal_data_masked():
    text = "Fatal error, mail jane.doe@example.com or see https://shop.example.com/x, call +47 912 34 567"
    assert workbench.redact_personal_data(text) == "Fatal error, mail [email] or see [url] call [phone]"
    assert workbench.redact_personal_data(None) == ""


def test_notebooks_work_from_the_repo_root_like_deact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # JupyterLab starts kernels in the notebook's directory
    root = workbench.use_project_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "notebooks").is_dir()
