"""Fixtures of the command tests that run flows: one Prefect test server, started only when asked for."""

from __future__ import annotations

import pytest

from deactivation.settings import Settings, get_settings

#: Measured here: a new Prefect server answers after 30-35 s on an idle machine, and took over 120 s
#: while the 2 cores were shared with other test runs; the default 30 s wait is too short.
STARTUP_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def prefect_server():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_S))
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls from tests
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=STARTUP_TIMEOUT_S):
            yield


@pytest.fixture
def flow_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch, prefect_server) -> Settings:
    """The test's settings, exported so flows (and workers they start) read the same ones."""
    for name, value in settings.store_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
