"""Shared pieces of the pipeline tests: projects, envelopes, and a TestPipeline on the FnApiRunner.

Test modules get them through the `kit` fixture (with --import-mode=importlib they cannot import
this module).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline

from beam.elements import registry_rules
from deactivation.envelope import make_envelope
from deactivation.projects import MailIntegration, Project

HOUR = datetime(2026, 11, 28, 1, tzinfo=UTC)
HOUR_LABEL = "2026-11-28T01"

#: The hashes the shared SDK captures send.
PLUGIN_HASH = "a4a8da5b-b419-4656-98e9-4a42e9044891"
THEME_HASH = "b1b2c3d4-0000-4000-8000-000000000001"
UNREGISTERED_HASH = "0d0e0a0d-0000-4000-8000-00000000beef"

PROJECTS = [
    Project(
        hash=PLUGIN_HASH,
        name="Forms",
        custom_reasons={"too-expensive": "Too expensive"},
        custom_fields=["total_forms"],
        mail_integrations=[MailIntegration(provider="mailchimp", list_id="deactivated")],
    ),
    Project(hash=THEME_HASH, name="Theme", kind="theme"),
]


def fn_api_pipeline() -> TestPipeline:
    """A TestPipeline on the FnApiRunner (the default DirectRunner tries to download Prism first)."""
    return TestPipeline(runner=FnApiRunner())


def envelope(body: dict, *, minute: int = 0, hour: datetime = HOUR, event_id: str | None = None) -> dict:
    return make_envelope(
        route="deactivate",
        body=copy.deepcopy(body),
        content_type="application/x-www-form-urlencoded",
        received_at=hour + timedelta(minutes=minute),
        event_id=event_id,
    )


@pytest.fixture
def kit() -> SimpleNamespace:
    return SimpleNamespace(
        hour=HOUR,
        hour_label=HOUR_LABEL,
        plugin_hash=PLUGIN_HASH,
        theme_hash=THEME_HASH,
        unregistered_hash=UNREGISTERED_HASH,
        projects=PROJECTS,
        rules=registry_rules({p.hash: p for p in PROJECTS}),
        envelope=envelope,
        pipeline=fn_api_pipeline,
    )
