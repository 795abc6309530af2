"""A populated system to erase from: seeded generator events plus hand-made traces of one site in
every store, run through the real pipeline and analytics.

The site chosen (`world.site`) is the Form Builder Pro site with the most generated deactivations.
Besides its generated events it gets: a track/ and a tracking-skipped/ envelope, an invalid event
(a dead letter), a torn line in a shared NDJSON file, a rejected request, a notification record,
and a suppression entry. Around it are look-alikes that must survive: the same URL in another
project, URLs that merely start with it, another site with the same admin e-mail (for the e-mail
erasure), and the other sites' records in the same files.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import orjson
import pytest

from deactivation.envelope import make_envelope
from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
from deactivation.mongo import NOTIFICATIONS, connect
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.settings import Settings
from deactivation.suppression import suppress
from deactivation.warehouse import open_warehouse

pipeline = pytest.importorskip(
    "beam.pipeline", reason="the Beam pipeline (beam/pipeline.py) is not importable"
)
analytics = pytest.importorskip("reports.analytics", reason="reports/analytics.py is not importable")

START = datetime(2026, 10, 1, 22, tzinfo=UTC)
HOURS = [START + timedelta(hours=i) for i in range(3)]
FORM_BUILDER = DEMO_PROJECTS[0].hash  # has a mail integration: its events fill mail_outbox
SEO_META = DEMO_PROJECTS[1].hash
SECOND_SITE = "https://second-shop.example.net"
SECRET = "privacy-tests-secret"


@dataclass
class World:
    settings: Settings
    site: str
    email: str
    site_event_ids: set[str]
    generated: object
    hours: list[datetime] = field(default_factory=lambda: list(HOURS))


def _body(generated, url: str) -> dict:
    for envelope in generated.envelopes:
        if envelope["body"].get("url") == url and envelope["body"].get("hash") == FORM_BUILDER:
            return dict(envelope["body"])
    raise AssertionError(f"no envelope for {url}")


def _envelope(route: str, body: dict, at: datetime) -> dict:
    return make_envelope(
        route=route, body=body, content_type="application/x-www-form-urlencoded", received_at=at
    )


def populate(settings: Settings, *, events_per_hour: int = 60, hours: list[datetime] = HOURS) -> World:
    """Write the world into the stores `settings` name, run the pipeline and analytics over it."""
    generated = generate_events(
        seed=15, start_hour=hours[0], hours=len(hours), events_per_hour=events_per_hour
    )
    counts = Counter(e.site_url for e in generated.truth.events if e.project_hash == FORM_BUILDER)
    site = max(sorted(counts), key=lambda url: counts[url])
    body = _body(generated, site)
    email = body.get("admin_email") or body["user_email"]
    store = open_raw_store(settings)
    client = connect(settings)
    db = client[settings.MONGODB_DB]
    for project in DEMO_PROJECTS:
        upsert_project(db, project)
    write_to_raw_store(store, generated.envelopes)

    at = hours[0] + timedelta(minutes=7)
    extras = [
        # Dead letter of the site (an uncastable field).
        _envelope("deactivate", {**body, "wp": {**body["wp"], "memory_limit": "lots"}}, at),
        # The same URL in another project, URLs that only start with the site's: all stay.
        _envelope("deactivate", {**body, "hash": SEO_META, "reason_id": "other"}, at),
        _envelope("deactivate", {**body, "url": site + ".au", "admin_email": "owner@example.org"}, at),
        _envelope("deactivate", {**body, "url": site + "/shop", "admin_email": "owner@example.org"}, at),
        # Another site of the same admin (e-mail in other case): goes with --email, stays with --site.
        _envelope("deactivate", {**body, "url": SECOND_SITE, "admin_email": email.upper()}, at),
    ]
    write_to_raw_store(store, extras)
    other_body = _body(generated, sorted(url for url in counts if url != site)[0])
    for route in ("track", "tracking-skipped"):
        store.write_envelopes(route, [_envelope(route, body, at), _envelope(route, other_body, at)])
    # A torn line (unparseable) naming the site, between two other sites' records in one file.
    torn = b'{"body": {"hash": "' + FORM_BUILDER.encode() + b'", "url": "' + site.encode() + b'", "wp'
    lines = [
        orjson.dumps(_envelope("deactivate", other_body, at + timedelta(minutes=1))),
        torn,
        orjson.dumps(
            _envelope("deactivate", {**other_body, "url": site + "/shop"}, at + timedelta(minutes=2))
        ),
    ]
    store.write_bytes(f"deactivate/{at:%Y/%m/%d/%H}/{uuid.uuid4()}.ndjson", b"\n".join(lines) + b"\n")
    for url in (site, site + ".au"):
        form = urlencode({"hash": FORM_BUILDER, "url": url, "admin_email": "x@example.org", "wp[": "1"})
        store.write_rejected(
            {"route": "deactivate", "code": "invalid_form", "status": 400, "body": form}, at=at
        )

    summary = pipeline.run_pipeline(settings, hours)
    assert summary.deactivations > 0
    analytics.build_analytics(settings)

    db[NOTIFICATIONS].insert_many(
        [
            {"_id": f"forward:{n}", "project_hash": FORM_BUILDER, "kind": "forward", "created_at": at,
             "payload": {"site_url": url, "reason_id": "other"}}
            for n, url in enumerate((site, other_body["url"]))
        ]
    )  # fmt: skip
    suppress(db, settings, FORM_BUILDER, email, "unsubscribed")
    client.close()
    site_event_ids = {
        e.event_id for e in generated.truth.events if e.site_url == site and e.project_hash == FORM_BUILDER
    }
    return World(settings, site, email, site_event_ids, generated, list(hours))


# --- Snapshots: everything every store holds, to compare before and after -----------------------------
def raw_snapshot(settings: Settings) -> dict[str, bytes]:
    """Every raw file (every route and rejected/), path → bytes."""
    store = open_raw_store(settings)
    return {
        f.relative_path: store.read_bytes(f.relative_path)
        for prefix in ("deactivate", "track", "tracking-skipped", "rejected")
        for f in store.iter_files(prefix)
    }


HISTORY = ("deactivations", "sites", "deactivation_errors")
#: Every aggregate analytics builds (a new one is compared too, as soon as it exists).
AGGREGATES = tuple(aggregate.name for aggregate in pytest.importorskip("reports.aggregates").AGGREGATES)


def table_rows(settings: Settings, table: str) -> set[tuple]:
    frame = open_warehouse(settings).query(f"SELECT * FROM {table}")
    frame = frame.astype(object).where(frame.notna(), None)
    return {tuple((k, str(v)) for k, v in sorted(row.items())) for row in frame.to_dict("records")}


def mongo_snapshot(settings: Settings) -> dict[str, dict]:
    client = connect(settings)
    try:
        db = client[settings.MONGODB_DB]
        return {
            name: {str(d["_id"]): d for d in db[name].find()}
            for name in db.list_collection_names()
            if name not in ("erasures", "erasure_audit")
        }
    finally:
        client.close()


def clone(template: Settings, root: Path, settings_under) -> Settings:
    """A copy of a populated local system (raw directory, DuckDB file, MongoDB database)."""
    copy = settings_under(root).model_copy(update={"SECRET_KEY": SECRET})
    shutil.copytree(template.RAW_STORE_URL, copy.RAW_STORE_URL)
    shutil.copyfile(template.duckdb_path, copy.duckdb_path)
    client = connect(template)
    try:
        source, target = client[template.MONGODB_DB], client[copy.MONGODB_DB]
        for name in source.list_collection_names():
            documents = list(source[name].find())
            if documents:
                target[name].insert_many(documents)
    finally:
        client.close()
    return copy


@pytest.fixture(scope="module")
def template_world(tmp_path_factory, settings_under) -> World:
    """One populated local system per test module; tests work on clones of it."""
    root = tmp_path_factory.mktemp("privacy-template")
    settings = settings_under(root).model_copy(update={"SECRET_KEY": SECRET})
    return populate(settings)


@pytest.fixture
def world(template_world: World, tmp_path: Path, settings_under) -> World:
    """A fresh clone of the populated system for one test."""
    copy = clone(template_world.settings, tmp_path / "world", settings_under)
    return World(copy, template_world.site, template_world.email, template_world.site_event_ids,
                 template_world.generated, template_world.hours)  # fmt: skip


@pytest.fixture(scope="session")
def snapshots():
    """The snapshot helpers above (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        raw=raw_snapshot,
        table_rows=table_rows,
        mongo=mongo_snapshot,
        populate=populate,
        history=HISTORY,
        aggregates=AGGREGATES,
        form_builder=FORM_BUILDER,
        projects=DEMO_PROJECTS,
        hours=HOURS,
        seo_meta=SEO_META,
        second_site=SECOND_SITE,
        pipeline=pipeline,
        analytics=analytics,
    )
