"""Shared fixtures: a real local MongoDB server for the session, and isolated settings per test."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from deactivation.mongo import LocalMongoServer, connect
from deactivation.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory):
    """One local MongoDB-compatible server (SecantusDB) for the test session, on a free port."""
    data_dir = tmp_path_factory.mktemp("mongo")
    server = LocalMongoServer(data_dir, log_path=data_dir.parent / "mongo.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, mongo_server: LocalMongoServer) -> Settings:
    """Settings for one test: its own raw store, DuckDB file and MongoDB database."""
    return Settings(
        RAW_STORE_URL=str(tmp_path / "raw"),
        WAREHOUSE_URL=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        MONGODB_URI=mongo_server.uri,
        MONGODB_DB=f"test_{uuid.uuid4().hex[:12]}",
        DATA_DIR=tmp_path / "data",
        _env_file=None,
    )


@pytest.fixture
def mongo_db(settings: Settings):
    client = connect(settings)
    yield client[settings.MONGODB_DB]
    client.drop_database(settings.MONGODB_DB)
    client.close()


def load_captures() -> dict[str, dict]:
    """The real SDK requests captured from the Appsero SDK, by file stem."""
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((FIXTURES / "sdk_captures").glob("*.json"))
    }


@pytest.fixture
def sdk_captures() -> dict[str, dict]:
    return load_captures()
