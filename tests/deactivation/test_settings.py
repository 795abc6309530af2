"""Settings: the embedded defaults, production values from the environment, every one documented."""

from __future__ import annotations

import pytest

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


def test_emulator_and_secret_settings_are_optional(monkeypatch):
    settings = Settings(_env_file=None)
    assert settings.SECRET_KEY is None and settings.STORAGE_EMULATOR_HOST is None
