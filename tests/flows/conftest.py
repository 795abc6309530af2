"""Flow tests: one Prefect test server for the whole session, and settings through the environment.

Flows read their settings with `get_settings()` (the environment of the worker that runs them),
so each test exports its isolated `settings` fixture as environment variables.
"""

from __future__ import annotations

import pytest

from deactivation.settings import Settings, get_settings

#: Measured here: a new Prefect server answers after 30-35 s; the default 30 s wait is too short.
STARTUP_TIMEOUT_S = 120


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_S))
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=STARTUP_TIMEOUT_S):
            yield


@pytest.fixture
def flow_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings, exported so flows (and workers they start) read the same ones."""
    for name in ("RAW_STORE_URL", "WAREHOUSE_URL", "MONGODB_URI", "MONGODB_DB", "DATA_DIR"):
        monkeypatch.setenv(name, str(getattr(settings, name)))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
