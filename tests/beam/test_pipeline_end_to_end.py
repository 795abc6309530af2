"""The whole pipeline on a real local MongoDB and DuckDB: captures in, both stores out, re-runs inert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pytest

from beam.pipeline import run_pipeline
from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.hours import hour_floor
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, SITES
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.schemas import ALL_TABLES

KEYS = {
    "deactivations": "event_id",
    "sites": "event_id",
    "deactivation_errors": "error_id",
    "hour_loads": "raw_hour",
}
PERSONAL_DATA = ("admin@example.com", "jane@shop.example.com", "Jane", "Doe", "203.0.113.7")


def register(mongo_db, projects):
    for project in projects:
        upsert_project(mongo_db, project)


def warehouse_snapshot(settings) -> dict[str, list[tuple]]:
    """Every row of every table, in key order; hour_loads without loaded_at (it is 'now')."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        snapshot = {}
        for name, key in KEYS.items():
            columns = [c for c in ALL_TABLES[name].column_names if c != "loaded_at"]
            column_list = ", ".join(columns)
            snapshot[name] = connection.execute(f"SELECT {column_list} FROM {name} ORDER BY {key}").fetchall()
        return snapshot


def mongo_snapshot(mongo_db) -> dict[str, list[dict]]:
    return {name: list(mongo_db[name].find().sort("_id", 1)) for name in (DEACTIVATIONS, SITES, MAIL_OUTBOX)}


def post_captures(settings, captures) -> tuple[list[datetime], list[int]]:
    """The captured SDK requests through the collector: form (v2, legacy, theme) and JSON."""
    from ingest_app import create_app

    client = create_app(settings).test_client()
    first_hour = hour_floor(datetime.now(UTC))
    statuses = []
    for name in ("004-v2x-found-better-plugin", "022-v1-is-not-working", "021-theme"):
        capture = captures[name]
        statuses.append(
            client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"]).status_code
        )
    capture = captures["004-v2x-found-better-plugin"]
    json_headers = {**capture["headers"], "Content-Type": "application/json"}
    # Another text: the same project + site + reason + text within minutes is a duplicate re-send.
    json_body = {**capture["body"], "reason_info": "sent as JSON"}
    statuses.append(
        client.post("/deactivate", data=orjson.dumps(json_body), headers=json_headers).status_code
    )
    hours = sorted({first_hour, hour_floor(datetime.now(UTC))})  # the posts may straddle an hour
    return hours, statuses


@pytest.mark.slow
def test_sdk_captures_end_to_end_then_a_rerun_changes_nothing(settings, mongo_db, sdk_captures, kit):
    register(mongo_db, kit.projects)
    hours, statuses = post_captures(settings, sdk_captures)
    assert all(200 <= status < 300 for status in statuses), statuses

    summary = run_pipeline(settings, hours)

    assert summary.read == summary.deactivations == summary.sites == 4
    assert summary.errors == dict.fromkeys(DEAD_LETTER_TYPES, 0)
    assert summary.rows_written["deactivations"] == summary.rows_written["sites"] == 4
    assert mongo_db[DEACTIVATIONS].count_documents({}) == mongo_db[SITES].count_documents({}) == 2
    assert summary.rows_written["mongo.mail_outbox"] == 3  # the plugin's three events carry a contact
    first_warehouse, first_mongo = warehouse_snapshot(settings), mongo_snapshot(mongo_db)

    history = {row[0]: row for row in first_warehouse["deactivations"]}
    columns = ALL_TABLES["deactivations"].column_names
    by_reason = sorted(
        (row[columns.index("reason_id")], row[columns.index("sdk_generation")]) for row in history.values()
    )
    assert by_reason == [
        ("found-better-plugin", "v2"),
        ("found-better-plugin", "v2"),
        ("is-not-working", "legacy"),
        ("theme-switch", "v2"),
    ]
    assert sum(row[-1] for row in first_warehouse["hour_loads"]) == 0  # errors column
    for table, rows in first_warehouse.items():
        text = repr(rows)
        assert not [p for p in PERSONAL_DATA if p in text], f"personal data in warehouse table {table}"

    plugin_events = sorted(
        (row[columns.index("received_at")], event_id)
        for event_id, row in history.items()
        if row[columns.index("project_hash")] == kit.plugin_hash
    )
    latest_plugin = mongo_db[DEACTIVATIONS].find_one({"project_hash": kit.plugin_hash})
    assert latest_plugin["event_id"] == plugin_events[-1][1]
    assert {"project_hash", "site_url", "reason_id", "reason_info", "received_at", "event_id"} <= set(
        latest_plugin
    )
    theme_site = mongo_db[SITES].find_one({"project_hash": kit.theme_hash})
    assert theme_site["admin_email"] == "admin@example.com"  # the dashboard's contact lives in MongoDB only
    assert theme_site["wp_memory_limit_bytes"] == 40 * 1024**2
    assert mongo_db[DEACTIVATIONS].find_one({"project_hash": kit.theme_hash})["reason_id"] == "theme-switch"
    outbox = first_mongo[MAIL_OUTBOX]
    assert {(r["provider"], r["list_id"], r["contact"]["email"]) for r in outbox} == {
        ("mailchimp", "deactivated", "admin@example.com")
    }
    assert sorted(r["event_id"] for r in outbox) == sorted(e for _, e in plugin_events)
    index_names = set(mongo_db[DEACTIVATIONS].index_information())
    assert {"project_time", "project_reason_time"} <= index_names
    assert not index_names & {"project_site_unique", "dashboard_project_time_id"}

    again = run_pipeline(settings, hours)

    assert warehouse_snapshot(settings) == first_warehouse
    assert mongo_snapshot(mongo_db) == first_mongo
    assert again.model_dump(exclude={"seconds", "rows_written"}) == summary.model_dump(
        exclude={"seconds", "rows_written"}
    )
    # A re-run rewrites the two sites' latest state (equal order keys replace) and queues no mail twice.
    assert {k: v for k, v in again.rows_written.items() if k.startswith("mongo.")} == {
        "mongo.deactivations": 2,
        "mongo.sites": 2,
        "mongo.mail_outbox": 0,
    }


@pytest.mark.slow
def test_a_rerun_repairs_latest_state_after_a_config_change_and_damage_by_hand(
    settings, mongo_db, sdk_captures, kit
):
    register(mongo_db, kit.projects)
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    store = open_raw_store(settings)
    events = [kit.envelope({**body, "reason_info": f"text {m}"}, minute=m) for m in (1, 2)]
    store.write_envelopes("deactivate", events)
    run_pipeline(settings, [kit.hour])
    site = mongo_db[SITES].find_one({"project_hash": kit.plugin_hash})
    assert orjson.loads(site["custom_fields"]) == {"total_forms": 12}

    # The project now also keeps "pro"; someone damaged and deleted state documents by hand.
    plugin = kit.projects[0]
    upsert_project(mongo_db, plugin.model_copy(update={"custom_fields": ["total_forms", "pro"]}))
    mongo_db[DEACTIVATIONS].update_one({"_id": site["_id"]}, {"$set": {"reason_id": "damaged"}})
    mongo_db[MAIL_OUTBOX].delete_many({})

    run_pipeline(settings, [kit.hour])

    repaired = mongo_snapshot(mongo_db)
    assert orjson.loads(repaired[SITES][0]["custom_fields"]) == {"pro": "no", "total_forms": 12}
    assert repaired[DEACTIVATIONS][0]["reason_id"] == "found-better-plugin"
    assert len(repaired[MAIL_OUTBOX]) == 2
    # What a first run on empty state gives under today's config: the re-run converged to history.
    for name in (DEACTIVATIONS, SITES, MAIL_OUTBOX):
        mongo_db[name].delete_many({})
    run_pipeline(settings, [kit.hour])
    assert mongo_snapshot(mongo_db) == repaired


@pytest.mark.slow
def test_out_of_order_hours_keep_the_newer_state(settings, mongo_db, sdk_captures, kit):
    register(mongo_db, kit.projects)
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    older_hour, newer_hour = kit.hour, kit.hour + timedelta(hours=1)
    store = open_raw_store(settings)
    older = kit.envelope({**body, "reason_id": "other"}, hour=older_hour, minute=59)
    newer = kit.envelope(
        {**body, "reason_id": "none", "wp": {**body["wp"], "version": "6.6.1"}}, hour=newer_hour
    )
    store.write_envelopes("deactivate", [older])
    store.write_envelopes("deactivate", [newer])

    run_pipeline(settings, [newer_hour])
    run_pipeline(settings, [older_hour])

    latest = mongo_db[DEACTIVATIONS].find_one({"project_hash": kit.plugin_hash})
    assert (latest["event_id"], latest["reason_id"]) == (newer["event_id"], "none")
    assert mongo_db[SITES].find_one({"project_hash": kit.plugin_hash})["wp_version"] == "6.6.1"
    assert mongo_db[DEACTIVATIONS].count_documents({}) == 1
    out_of_order = mongo_snapshot(mongo_db)
    # The same hours in order converge on the very same documents.
    for name in (DEACTIVATIONS, SITES, MAIL_OUTBOX):
        mongo_db[name].delete_many({})
    run_pipeline(settings, [older_hour, newer_hour])
    assert mongo_snapshot(mongo_db) == out_of_order


@pytest.mark.slow
def test_each_kind_of_bad_input_gives_exactly_one_typed_dead_letter_and_nothing_else(
    settings, mongo_db, sdk_captures, kit
):
    register(mongo_db, kit.projects)
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    store = open_raw_store(settings)
    bad = {
        "unknown_project": kit.envelope({**body, "hash": kit.unregistered_hash}, minute=1),
        "invalid_reason": kit.envelope({**body, "reason_id": "made-up"}, minute=2),
        "invalid_field": kit.envelope({**body, "wp": {**body["wp"], "memory_limit": "lots"}}, minute=3),
    }
    files = {kind: store.write_envelopes("deactivate", [envelope])[0] for kind, envelope in bad.items()}
    files["unparseable"] = "deactivate/2026/11/28/01/0000-truncated.json"
    store.write_bytes(
        files["unparseable"], b'{"schema_version": 1, "body": {"admin_email": "admin@example.com"'
    )

    summary = run_pipeline(settings, [kit.hour])

    assert summary.errors == {
        **dict.fromkeys(DEAD_LETTER_TYPES, 0),
        **dict.fromkeys(("unparseable", "unknown_project", "invalid_reason", "invalid_field"), 1),
    }
    assert (summary.read, summary.deactivations, summary.sites) == (4, 0, 0)
    snapshot = warehouse_snapshot(settings)
    assert snapshot["deactivations"] == snapshot["sites"] == []
    errors = {row[4]: row for row in snapshot["deactivation_errors"]}  # by raw_file
    assert {raw_file: row[2] for raw_file, row in errors.items()} == {f: kind for kind, f in files.items()}
    assert errors[files["invalid_field"]][3] == "wp.memory_limit: cannot read 'lots' as a size in bytes"
    assert orjson.loads(errors[files["invalid_reason"]][9])["event_id"] == bad["invalid_reason"]["event_id"]
    assert all(mongo_db[name].count_documents({}) == 0 for name in (DEACTIVATIONS, SITES, MAIL_OUTBOX))
    kept_envelopes = repr([row[9] for row in errors.values()])
    assert not [p for p in PERSONAL_DATA if p in kept_envelopes], "personal data in deactivation_errors"
    assert orjson.loads(errors[files["unknown_project"]][9])["body"]["admin_email"] == "<redacted>"

    run_pipeline(settings, [kit.hour])
    assert warehouse_snapshot(settings) == snapshot  # error ids are deterministic: no duplicates


def test_an_hour_without_files_is_recorded_as_loaded_and_empty(settings, mongo_db, kit):
    summary = run_pipeline(settings, [kit.hour])

    assert (summary.files, summary.read, summary.deactivations) == (0, 0, 0)
    assert summary.rows_written["hour_loads"] == 1
    hour_loads = warehouse_snapshot(settings)["hour_loads"]
    assert [row[1:] for row in hour_loads] == [(0, 0, 0, 0, 0)]
