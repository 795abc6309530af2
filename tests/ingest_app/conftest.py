"""Collector test helpers: settings without MongoDB, and the app built on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from deactivation.settings import Settings
from ingest_app import create_app


def stored_files(root: Path, prefix: str) -> list[Path]:
    """Complete files under RAW_STORE_URL/<prefix> (readers skip dot-names)."""
    base = root / prefix
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def ingest_settings(tmp_path: Path) -> Settings:
    return Settings(RAW_STORE_URL=str(tmp_path / "raw"), DATA_DIR=tmp_path / "data", _env_file=None)


@pytest.fixture
def app(ingest_settings: Settings):
    app = create_app(ingest_settings)
    yield app
    app.extensions["ingest"].writer.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def raw_root(ingest_settings: Settings) -> Path:
    return Path(ingest_settings.RAW_STORE_URL)
