"""Erasing one site among many: gone from every store, every other site untouched, aggregates equal
a rebuild without it, nothing brings it back, an interrupted erasure finishes when run again."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from deactivation.erasure import (
    ERASURE_AUDIT,
    ERASURE_JOURNAL,
    ERASURES,
    erasure_key,
    load_erasure_register,
    site_key,
)
from deactivation.mongo import ANALYTICS_PUBLISHED, PIPELINE_LOCKS, connect
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store, split_records
from deactivation.suppression import is_suppressed
from privacy import erase as erase_module
from privacy.erase import ErasureRequest, PipelineInFlight, erase
from privacy.matching import RequestError

pytestmark = pytest.mark.slow


def run_erase(world, snapshots, **request):
    return erase(world.settings, ErasureRequest.build(snapshots.form_builder, **request))


def is_site_record(text: bytes, project_hash: str, urls: set[str]) -> bool:
    """The test's own view of "a record of these sites" (parsed by hand, torn lines by prefix)."""
    try:
        body = orjson.loads(text)["body"]
    except orjson.JSONDecodeError:
        return any(f'"url": "{url}"'.encode() in text for url in urls)
    return body.get("hash") == project_hash and body.get("url", "").strip().rstrip("/") in urls


def everything(world, snapshots) -> dict:
    settings = world.settings
    tables = (*snapshots.history, *snapshots.aggregates)
    return {
        "raw": snapshots.raw(settings),
        "tables": {table: snapshots.table_rows(settings, table) for table in tables},
        "mongo": snapshots.mongo(settings),
    }


def assert_erased(world, snapshots, before: dict, urls: set[str]) -> None:
    """The sites `urls` are gone from every store and everything else is exactly as it was."""
    after = everything(world, snapshots)
    project = snapshots.form_builder
    # Raw store: every other record byte for byte on its own line; the sites' records are gone.
    for path, data in before["raw"].items():
        if path.startswith("rejected/"):
            text = data.decode().replace("%3A", ":").replace("%2F", "/")
            mentions = any(re.search(re.escape(u) + r"(&|$)", text) for u in urls)
            assert (path not in after["raw"]) == mentions, path
            continue
        old_lines = data.split(b"\n") if path.endswith(".ndjson") else [data.rstrip(b"\n")]
        if path not in after["raw"]:
            assert all(is_site_record(line, project, urls) for line in old_lines if line.strip()), path
            continue
        new_lines = (
            after["raw"][path].split(b"\n")
            if path.endswith(".ndjson")
            else [after["raw"][path].rstrip(b"\n")]
        )
        assert len(new_lines) == len(old_lines), path
        for old, new in zip(old_lines, new_lines, strict=True):
            if old.strip() and is_site_record(old, project, urls):
                assert new == b"", path
            else:
                assert new == old, path
    assert set(after["raw"]) <= set(before["raw"])
    # Warehouse history: only the sites' rows went.
    for table in snapshots.history:
        gone = before["tables"][table] - after["tables"][table]
        assert after["tables"][table] <= before["tables"][table], table
        for row in map(dict, gone):
            if table == "deactivation_errors":
                assert any(u in row["raw_envelope"] for u in urls) or row["error_type"] == "unparseable"
            else:
                assert (row["project_hash"], row["site_url"]) in {(project, u) for u in urls}, table
    for table in ("deactivations", "sites"):
        left = {
            dict(row)["site_url"] for row in after["tables"][table] if dict(row)["project_hash"] == project
        }
        assert not left & urls, table
    # MongoDB: the sites' documents went, every other document is unchanged.
    for name, documents in before["mongo"].items():
        kept = after["mongo"].get(name, {})
        for key, document in documents.items():
            site = document.get("site_url") or (document.get("payload") or {}).get("site_url")
            if document.get("project_hash") == project and site in urls and name != "suppressions":
                assert key not in kept, (name, key)
            elif name not in snapshots.aggregates and name != ANALYTICS_PUBLISHED:
                # (published aggregates and the build's publish marker change with the rebuild)
                assert kept.get(key) == document, (name, key)


def assert_aggregates_equal_a_rebuild(world, snapshots, tmp_path, settings_under) -> None:
    """A fresh warehouse built from the erased raw store holds exactly the same history and aggregates."""
    rebuilt = settings_under(tmp_path / "rebuild").model_copy(
        update={"RAW_STORE_URL": world.settings.RAW_STORE_URL, "SECRET_KEY": "another"}
    )
    client = connect(rebuilt)
    for project in snapshots.projects:
        upsert_project(client[rebuilt.MONGODB_DB], project)
    client.close()
    snapshots.pipeline.run_pipeline(rebuilt, world.hours)
    snapshots.analytics.build_analytics(rebuilt)
    for table in (*snapshots.history, *snapshots.aggregates):
        assert snapshots.table_rows(world.settings, table) == snapshots.table_rows(rebuilt, table), table


def test_erasing_a_site_removes_every_trace_and_nothing_else(world, snapshots, tmp_path, settings_under):
    before = everything(world, snapshots)

    summary = run_erase(world, snapshots, site_url=world.site + "/")

    assert_erased(world, snapshots, before, {world.site})
    site_events = len(world.site_event_ids)
    # generated events + the dead letter + the torn line; one each on track/, tracking-skipped/, rejected/
    assert summary.raw["deactivate"].records == site_events + 2
    assert (summary.raw["track"].records, summary.raw["tracking-skipped"].records, summary.rejected) == (
        1,
        1,
        1,
    )
    assert summary.warehouse == {"deactivations": site_events, "sites": site_events, "deactivation_errors": 2}
    assert summary.mongo["deactivations"] == summary.mongo["sites"] == summary.mongo["notifications"] == 1
    assert summary.mongo["mail_outbox"] == site_events  # Form Builder Pro syncs every contact to one list
    assert summary.analytics_hours_rebuilt >= 1
    # The look-alikes stay: same URL in another project, longer URLs, the admin's other site.
    raw = b"".join(snapshots.raw(world.settings).values())
    for survivor in (world.site + ".au", world.site + "/shop", snapshots.second_site):
        assert f'"url":"{survivor}"'.encode() in raw
    assert f'"hash":"{snapshots.seo_meta}"'.encode() in raw

    assert_aggregates_equal_a_rebuild(world, snapshots, tmp_path, settings_under)

    client = connect(world.settings)
    db = client[world.settings.MONGODB_DB]
    try:
        # The register holds the keyed hash only; the pipeline's view of it sees the site as erased.
        register = list(db[ERASURES].find())
        key = site_key(erasure_key(world.settings), snapshots.form_builder, world.site)
        assert [d["_id"] for d in register] == [key]
        assert world.site not in str(register) and world.email not in str(register)
        assert load_erasure_register(db, world.settings).is_erased(snapshots.form_builder, world.site, None)
        # The suppression entry keeps working.
        assert is_suppressed(db, world.settings, snapshots.form_builder, world.email)
        # One audit entry: counts, who, no personal data.
        (audit,) = db[ERASURE_AUDIT].find()
        assert audit["_id"] == summary.audit_id and audit["operator"]
        assert audit["counts"]["warehouse"] == summary.warehouse
        assert world.site not in str(audit) and world.email not in str(audit)
    finally:
        client.close()


def test_erasing_by_email_removes_every_site_of_that_admin(world, snapshots):
    before = everything(world, snapshots)

    summary = run_erase(world, snapshots, email=f"  {world.email.title()} ")

    assert summary.sites == 2 and summary.subject == "email"
    assert_erased(world, snapshots, before, {world.site, snapshots.second_site})


def test_rerunning_every_hour_does_not_bring_the_site_back(world, snapshots, tmp_path, settings_under):
    run_erase(world, snapshots, site_url=world.site)
    erased = everything(world, snapshots)

    snapshots.pipeline.run_pipeline(world.settings, world.hours)
    snapshots.analytics.build_analytics(world.settings)

    again = everything(world, snapshots)
    assert again["raw"] == erased["raw"]
    for table in (*snapshots.history, *snapshots.aggregates):
        assert again["tables"][table] == erased["tables"][table], table
    for name in ("deactivations", "sites", "mail_outbox"):
        assert again["mongo"][name].keys() == erased["mongo"][name].keys(), name


def test_a_late_copy_of_its_envelopes_becomes_erased_dead_letters(world, snapshots):
    """A file restored from a backup (or a late upload) still holding the site: the register stops it."""
    late = [e for e in world.generated.envelopes if e["event_id"] in world.site_event_ids]
    run_erase(world, snapshots, site_url=world.site)
    store = open_raw_store(world.settings)
    for envelope in late:  # under names of their own, next to the hour's other files
        hour = envelope["received_at"]
        folder = f"deactivate/{hour[0:4]}/{hour[5:7]}/{hour[8:10]}/{hour[11:13]}"
        store.write_bytes(f"{folder}/late-{envelope['event_id']}.json", orjson.dumps(envelope) + b"\n")

    summary = snapshots.pipeline.run_pipeline(world.settings, world.hours)

    if not summary.errors.get("erased"):
        pytest.skip("the pipeline does not consult the erasure register yet (the `erased` dead letter step)")
    assert summary.errors["erased"] == len(late)
    history = snapshots.table_rows(world.settings, "deactivations")
    assert not {dict(row)["event_id"] for row in history} & world.site_event_ids
    dead_letters = [dict(row) for row in snapshots.table_rows(world.settings, "deactivation_errors")]
    erased = [row for row in dead_letters if row["error_type"] == "erased"]
    assert len(erased) == len(late) and world.site not in str(erased) and world.email not in str(erased)


def test_an_interrupted_erasure_finishes_when_run_again(
    world, snapshots, monkeypatch, tmp_path, settings_under
):
    """Interrupted right after the file holding the site's torn line was rewritten: that record's
    dead letter (its URL masked) is known only from the journal, and still goes on the second run."""
    before = everything(world, snapshots)
    real_scrub_file = erase_module._scrub_file

    def crash_after_the_torn_line(store, relative, subjects, needles, dry_run, journal=None):
        torn = b'", "wp' in store.read_bytes(relative)
        result = real_scrub_file(store, relative, subjects, needles, dry_run, journal)
        if torn and not dry_run:
            raise OSError("simulated crash")
        return result

    monkeypatch.setattr(erase_module, "_scrub_file", crash_after_the_torn_line)
    with pytest.raises(OSError, match="simulated crash"):
        run_erase(world, snapshots, site_url=world.site)
    assert snapshots.raw(world.settings) != before["raw"]  # it did get halfway
    monkeypatch.setattr(erase_module, "_scrub_file", real_scrub_file)

    run_erase(world, snapshots, site_url=world.site)

    assert_erased(world, snapshots, before, {world.site})
    assert_aggregates_equal_a_rebuild(world, snapshots, tmp_path, settings_under)
    client = connect(world.settings)
    assert client[world.settings.MONGODB_DB][ERASURE_JOURNAL].count_documents({}) == 0
    client.close()


def test_an_email_erasure_interrupted_after_the_raw_store_finds_its_sites_again(
    world, snapshots, monkeypatch
):
    """Once the raw store is scrubbed the address is nowhere in it; the register's `via` and the
    warehouse's URLs still lead the second run to both sites."""
    before = everything(world, snapshots)
    real_scrub_warehouse = erase_module.scrub_warehouse

    def crash(*args, **kwargs):
        raise OSError("simulated crash before the warehouse")

    monkeypatch.setattr(erase_module, "scrub_warehouse", crash)
    with pytest.raises(OSError):
        run_erase(world, snapshots, email=world.email)
    lines = b"\n".join(snapshots.raw(world.settings).values()).lower().split(b"\n")
    assert not [
        line for line in lines if world.email.encode() in line and snapshots.form_builder.encode() in line
    ]
    monkeypatch.setattr(erase_module, "scrub_warehouse", real_scrub_warehouse)
    client = connect(world.settings)  # the MongoDB `sites` documents still name the address: hide them
    client[world.settings.MONGODB_DB].sites.update_many({}, {"$unset": {"admin_email": ""}})
    client[world.settings.MONGODB_DB].mail_outbox.update_many({}, {"$unset": {"contact": ""}})
    client.close()

    summary = run_erase(world, snapshots, email=world.email)

    assert summary.sites == 2
    assert summary.warehouse["deactivations"] == len(world.site_event_ids) + 1  # + the second site's event
    after = everything(world, snapshots)
    for table in ("deactivations", "sites"):
        rows = [dict(row) for row in after["tables"][table]]
        urls = {row["site_url"] for row in rows if row["project_hash"] == snapshots.form_builder}
        assert world.site not in urls and snapshots.second_site not in urls
        assert after["tables"][table] <= before["tables"][table]


def test_a_dry_run_changes_nothing_and_counts_what_a_real_run_removes(world, snapshots):
    before = everything(world, snapshots)

    dry = erase(
        world.settings, ErasureRequest.build(snapshots.form_builder, site_url=world.site), dry_run=True
    )

    assert dry.dry_run and dry.audit_id is None
    after = everything(world, snapshots)
    assert after["raw"] == before["raw"] and after["tables"] == before["tables"]
    assert after["mongo"] == before["mongo"]
    client = connect(world.settings)
    db = client[world.settings.MONGODB_DB]
    assert db[ERASURES].count_documents({}) == 0 and db[ERASURE_AUDIT].count_documents({}) == 0
    client.close()
    real = run_erase(world, snapshots, site_url=world.site)
    assert (dry.raw, dry.rejected, dry.warehouse, dry.mongo) == (
        real.raw,
        real.rejected,
        real.warehouse,
        real.mongo,
    )


def test_erasing_twice_finds_nothing_the_second_time(world, snapshots):
    run_erase(world, snapshots, site_url=world.site)
    erased = everything(world, snapshots)

    second = run_erase(world, snapshots, site_url=world.site)

    assert sum(c.records for c in second.raw.values()) == 0 and second.rejected == 0
    assert sum(second.warehouse.values()) == 0 and sum(second.mongo.values()) == 0
    assert everything(world, snapshots)["raw"] == erased["raw"]


@pytest.mark.parametrize(
    ("project", "site", "email", "message"),
    [
        ("not-a-uuid", "https://a.example", None, "--project"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", None, None, "exactly one"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "https://a.example", "a@b.example", "exactly one"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "  /// ", None, "--site"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "https://a.example/" + "x" * 2000, None, "--site"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", "https://a b.example", None, "--site"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", None, "not-an-address", "--email"),
        ("6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c", None, "a@" + "b" * 300, "--email"),
    ],
)
def test_a_malformed_request_is_refused_before_anything_is_read(project, site, email, message):
    with pytest.raises(RequestError, match=message):
        ErasureRequest.build(project, site_url=site, email=email)


def test_a_raw_store_on_gcs_and_a_bigquery_warehouse_are_erased_alike(
    tmp_path, settings_under, gcs_endpoint, bigquery_emulator, snapshots
):
    settings = settings_under(tmp_path).model_copy(
        update={
            "RAW_STORE_URL": f"gs://deactivation-raw/privacy-{tmp_path.name}",
            "STORAGE_EMULATOR_HOST": gcs_endpoint,
            "WAREHOUSE_URL": f"bigquery://{bigquery_emulator.project}/privacy_{uuid.uuid4().hex[:12]}",
            "BIGQUERY_EMULATOR_HOST": bigquery_emulator.host,
            "SECRET_KEY": "gcs-and-bigquery",
        }
    )
    world = snapshots.populate(settings, events_per_hour=25, hours=snapshots.hours[:2])
    before = everything(world, snapshots)

    summary = run_erase(world, snapshots, site_url=world.site)

    assert summary.warehouse["deactivations"] == len(world.site_event_ids) > 0
    assert summary.raw["track"].records == 1 and summary.rejected == 1
    assert_erased(world, snapshots, before, {world.site})
    # Aggregates equal a rebuild (into DuckDB) from the erased gs:// store.
    local = settings_under(tmp_path / "rebuild").model_copy(
        update={"RAW_STORE_URL": settings.RAW_STORE_URL, "STORAGE_EMULATOR_HOST": gcs_endpoint}
    )
    client = connect(local)
    for project in snapshots.projects:
        upsert_project(client[local.MONGODB_DB], project)
    client.close()
    snapshots.pipeline.run_pipeline(local, world.hours)
    snapshots.analytics.build_analytics(local)
    for table in ("deactivations", "daily_reason_counts", "hourly_reason_counts"):
        keys = [("event_id",)] if table == "deactivations" else None
        assert _comparable(snapshots, settings, table, keys) == _comparable(snapshots, local, table, keys), (
            table
        )


def _comparable(snapshots, settings, table, keys):
    rows = [dict(row) for row in snapshots.table_rows(settings, table)]
    if keys:
        return sorted(row["event_id"] for row in rows)
    return sorted((row["project_hash"], row["reason_id"], row["deactivations"]) for row in rows)


def test_unparseable_lines_keep_their_place_so_dead_letter_ids_stay(world, snapshots):
    store = open_raw_store(world.settings)
    run_erase(world, snapshots, site_url=world.site)
    torn_files = [
        path
        for path, data in snapshots.raw(world.settings).items()
        if path.endswith(".ndjson") and b"\n\n" in data and data.count(b"\n") == 3
    ]
    assert torn_files, "the file that held the torn line keeps three lines"
    lines = [number for number, _ in split_records(torn_files[0], store.read_bytes(torn_files[0]))]
    assert lines == [1, 3]


def test_the_rebuild_fixture_itself_is_sensitive(world, snapshots, tmp_path, settings_under):
    """Without the erasure a rebuild from a raw store lacking the site differs: the comparison bites."""
    store = open_raw_store(world.settings)
    held = snapshots.raw(world.settings).items()
    store.delete(next(p for p, d in held if world.site.encode() in d and p.startswith("deactivate/")))
    with pytest.raises(AssertionError):
        assert_aggregates_equal_a_rebuild(world, snapshots, tmp_path, settings_under)


def test_hour_loads_are_recounted_and_moved_on_for_the_touched_hours(world, snapshots):
    loads_before = {dict(r)["raw_hour"]: dict(r) for r in snapshots.table_rows(world.settings, "hour_loads")}

    summary = run_erase(world, snapshots, site_url=world.site)

    loads = {dict(r)["raw_hour"]: dict(r) for r in snapshots.table_rows(world.settings, "hour_loads")}
    removed = summary.warehouse["deactivations"] + summary.warehouse["deactivation_errors"]
    read_before = sum(int(r["records_read"]) for r in loads_before.values())
    assert sum(int(r["records_read"]) for r in loads.values()) == read_before - removed
    assert any(loads[h]["loaded_at"] != loads_before[h]["loaded_at"] for h in loads)


def test_an_erasure_waits_for_pipeline_runs_that_started_before_it(world, snapshots):
    """Such a run may not know the site is erased; the warehouse waits for it (here: not at all)."""
    before = everything(world, snapshots)
    now = datetime.now(UTC)
    client = connect(world.settings)
    locks = client[world.settings.MONGODB_DB][PIPELINE_LOCKS]
    locks.insert_one({"_id": "2026-10-01T22", "owner": "run", "acquired_at": now - timedelta(minutes=1),
                      "expires_at": now + timedelta(minutes=10)})  # fmt: skip
    impatient = world.settings.model_copy(update={"ERASURE_PIPELINE_WAIT_SECONDS": 0})
    request = ErasureRequest.build(snapshots.form_builder, site_url=world.site)

    with pytest.raises(PipelineInFlight, match="run the same erase again"):
        erase(impatient, request)
    assert everything(world, snapshots)["tables"] == before["tables"]
    locks.delete_many({})
    client.close()
    erase(impatient, request)

    assert_erased(world, snapshots, before, {world.site})
