"""Demo data for the dashboard tests: generator → raw store → pipeline → analytics, once per module,
and the expectations computed in plain Python from the generator's own record (never from SQL or
MongoDB queries, so a wrong query cannot agree with itself)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deactivation.api_keys import create_key
from deactivation.generator import DEMO_PROJECTS, TruthEvent, generate_events, write_to_raw_store
from deactivation.mongo import connect, get_database
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.settings import Settings

START = datetime(2026, 11, 20, tzinfo=UTC)
HOURS = 72
EVENTS_PER_HOUR = 20
PLUGIN, OTHER_PLUGIN, THEME = (project.hash for project in DEMO_PROJECTS)


@dataclass(frozen=True)
class Demo:
    settings: Settings
    events: list[TruthEvent]
    rejected: Counter[str]

    def latest_per_site(self, project_hash: str) -> list[TruthEvent]:
        """The newest event of each site of a project (what the MongoDB list must hold)."""
        newest: dict[str, TruthEvent] = {}
        for event in self.events:
            if event.project_hash != project_hash:
                continue
            current = newest.get(event.site_url)
            if current is None or (event.received_at, event.event_id) > (
                current.received_at,
                current.event_id,
            ):
                newest[event.site_url] = event
        return list(newest.values())

    def history(self, project_hash: str) -> list[TruthEvent]:
        return [event for event in self.events if event.project_hash == project_hash]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, settings_under: Callable[[Path], Settings]) -> Demo:
    from beam.pipeline import run_pipeline
    from reports.analytics import build_analytics

    settings = settings_under(tmp_path_factory.mktemp("dashboard"))
    generated = generate_events(7, START, HOURS, EVENTS_PER_HOUR)
    write_to_raw_store(open_raw_store(settings), generated.envelopes)
    database = get_database(settings)
    for project in DEMO_PROJECTS:
        upsert_project(database, project)
    run_pipeline(settings, [START + timedelta(hours=h) for h in range(HOURS)])
    build_analytics(settings, full=True)
    yield Demo(settings, generated.truth.events, generated.truth.rejected)
    with connect(settings) as client:
        client.drop_database(settings.MONGODB_DB)


@pytest.fixture(scope="session")
def app(demo: Demo, tmp_path_factory: pytest.TempPathFactory):
    from dashboard_app import create_app

    application = create_app(demo.settings)
    application.config["TESTING"] = True
    application.extensions["dashboard"].review_dir = tmp_path_factory.mktemp("review")
    return application


@pytest.fixture(scope="session")
def keys(demo: Demo) -> dict[str, str]:
    """Full key texts: read and personal keys of the main plugin, one of the theme, an operator key."""
    database = get_database(demo.settings)
    return {
        "read": create_key(database, demo.settings, project_hash=PLUGIN, scope="read")[1],
        "personal": create_key(database, demo.settings, project_hash=PLUGIN, scope="personal")[1],
        "theme": create_key(database, demo.settings, project_hash=THEME, scope="personal")[1],
        "operator": create_key(database, demo.settings, project_hash=None, scope="personal")[1],
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
