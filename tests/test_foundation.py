"""The shared package's foundations: settings, the local MongoDB fixture, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from deactivation.settings import Settings, describe_settings


def test_settings_defaults_are_the_embedded_stack():
    settings = Settings(_env_file=None)
    assert settings.RAW_STORE_URL == "data/raw"
    assert settings.WAREHOUSE_URL == "duckdb:///data/warehouse.duckdb"
    assert settings.MONGODB_DB == "deactivation"
    assert settings.warehouse_kind == "duckdb"
    assert str(settings.duckdb_path) == "data/warehouse.duckdb"


def test_settings_read_production_values_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAW_STORE_URL", "gs://acme-raw/prod")
    monkeypatch.setenv("WAREHOUSE_URL", "bigquery://acme-analytics/deactivation")
    settings = Settings(_env_file=None)
    assert settings.raw_store_is_gcs
    assert settings.bigquery_project_dataset == ("acme-analytics", "deactivation")


def test_settings_reject_an_unknown_warehouse(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", "postgres://x/y")
    with pytest.raises(ValueError, match="WAREHOUSE_URL"):
        Settings(_env_file=None)


def test_every_setting_is_documented():
    for name, _default, description in describe_settings():
        assert description, f"setting {name} has no description"


def test_local_mongo_fixture_starts_accepts_a_unique_index_and_stops(tmp_path):
    from deactivation.mongo import LocalMongoServer

    with LocalMongoServer(tmp_path / "mongo") as server:
        client = pymongo.MongoClient(server.uri)
        collection = client.check.sites
        collection.create_index([("project_hash", 1), ("site_url", 1)], unique=True)
        collection.insert_one({"project_hash": "p", "site_url": "https://a.example"})
        with pytest.raises(DuplicateKeyError):
            collection.insert_one({"project_hash": "p", "site_url": "https://a.example"})
        client.close()
        pid = server.process.pid
    assert server.process.poll() is not None, f"server {pid} still running after stop"


def test_cli_lists_its_commands():
    result = subprocess.run(
        [sys.executable, "-m", "deact", "--help"], capture_output=True, text=True, check=True
    )
    assert "mongo" in result.stdout
