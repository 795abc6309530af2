"""The `retention` flow runs on a Prefect server: it applies the limits from the environment's
settings and publishes what it removed as an artifact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deactivation.envelope import make_envelope
from deactivation.raw_store import open_raw_store
from deactivation.settings import get_settings

#: A new Prefect server answers after 30-35 s here (tests/flows/conftest.py measured the same).
STARTUP_TIMEOUT_S = 120


@pytest.mark.slow
def test_the_retention_flow_removes_old_hours(settings, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    from flows.retention_flow import retention

    for name, value in {**settings.store_environment(), "RETENTION_REJECTED_DAYS": "30"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_S))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    get_settings.cache_clear()
    store = open_raw_store(settings)
    now = datetime.now(UTC)
    for age in (timedelta(days=31), timedelta(days=1)):
        store.write_rejected({"route": "deactivate", "code": "invalid_json"}, at=now - age)
    body = {"hash": "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "url": "https://a.example"}
    store.write_envelopes(
        "deactivate", [make_envelope(route="deactivate", body=body, content_type="application/json")]
    )
    try:
        with prefect_test_harness(server_startup_timeout=STARTUP_TIMEOUT_S):
            summary = retention(dry_run=False)
    finally:
        get_settings.cache_clear()

    assert summary.raw_files == {"deactivate": 0, "track": 0, "tracking-skipped": 0, "rejected": 1}
    assert len(list(store.iter_files("rejected"))) == 1 and len(list(store.iter_files("deactivate"))) == 1
