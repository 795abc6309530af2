"""The warehouse adapters under one fixture, so each contract test runs on DuckDB and on BigQuery.

BigQuery is the local emulator (`bigquery_emulator` in tests/conftest.py, started once per session
from .venv-bq); each test gets a dataset of its own there and a DuckDB file of its own here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deactivation.warehouse import DuckDBWarehouse


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "duckdb":
        return DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    return request.getfixturevalue("bigquery_warehouse")
