"""Flow tests: one Prefect test server for the whole session, and settings through the environment.

Flows read their settings with `get_settings()` (the environment of the worker that runs them),
so each test exports its isolated `settings` fixture as environment variables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.settings import Settings, get_settings

#: The seeded hours the flow tests process.
DEMO_HOURS = [datetime(2026, 11, 20, 0, tzinfo=UTC) + timedelta(hours=i) for i in range(6)]

#: Measured here: a new Prefect server answers after 30-35 s; the default 30 s wait is too short.
STARTUP_TIMEOUT_S = 120


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_S))
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls from tests
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=STARTUP_TIMEOUT_S):
            yield


@pytest.fixture
def flow_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings, exported so flows (and workers they start) read the same ones."""
    for name, value in settings.store_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def demo_hours() -> list[datetime]:
    return list(DEMO_HOURS)


@pytest.fixture
def demo_data(flow_settings: Settings, mongo_db) -> Settings:
    """Six seeded hours (DEMO_HOURS) in the raw store and the demo projects registered."""
    for project in DEMO_PROJECTS:
        upsert_project(mongo_db, project)
    generated = generate_events(seed=11, start_hour=DEMO_HOURS[0], hours=len(DEMO_HOURS), events_per_hour=12)
    write_to_raw_store(open_raw_store(flow_settings), generated.envelopes)
    return flow_settings
