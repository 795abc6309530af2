"""Fault tests of a pipeline run: MongoDB going away, a failing warehouse write, two runs of the same
hours at once. Each is bounded in time and ends with the stores equal to one clean run's.

MongoDB here is a LocalMongoServer of the test's own (the session's server is shared by every test).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

import beam.pipeline
from beam.hour_lock import HoursLockedError
from beam.pipeline import PipelineError, StateWriteError, run_pipeline
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, PIPELINE_LOCKS, SITES, LocalMongoServer, connect
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store
from deactivation.schemas import ALL_TABLES
from deactivation.warehouse import DuckDBWarehouse, WarehouseError

TABLE_KEYS = {"deactivations": "event_id", "sites": "event_id", "deactivation_errors": "error_id"}
STATE = (DEACTIVATIONS, SITES, MAIL_OUTBOX)


def warehouse_rows(settings) -> dict[str, list[tuple]]:
    """Every history row, hour_loads without loaded_at (it is 'now'); {} before the first load."""
    if not settings.duckdb_path.exists():
        return {}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        listed = connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
        tables = {name for (name,) in listed}
        rows = {}
        for name, key in {**TABLE_KEYS, "hour_loads": "raw_hour"}.items():
            if name in tables:
                columns = ", ".join(c for c in ALL_TABLES[name].column_names if c != "loaded_at")
                rows[name] = connection.execute(f"SELECT {columns} FROM {name} ORDER BY {key}").fetchall()
        return rows


def mongo_state(settings) -> dict[str, list[dict]]:
    with connect(settings) as client:
        db = client[settings.MONGODB_DB]
        return {name: list(db[name].find().sort("_id", 1)) for name in STATE}


def seed(settings, kit, body) -> None:
    """Projects registered, and one hour of raw files: valid events of two sites, one dead letter."""
    with connect(settings) as client:
        for project in kit.projects:
            upsert_project(client[settings.MONGODB_DB], project)
    store = open_raw_store(settings)
    for minute in range(4):
        site = f"https://site-{minute % 2}.example"
        event = {**body, "url": site, "reason_info": f"text {minute}"}
        store.write_envelopes("deactivate", [kit.envelope(event, minute=minute)])
    store.write_envelopes("deactivate", [kit.envelope({**body, "reason_id": "made-up"}, minute=9)])


@pytest.fixture
def own_mongo(tmp_path: Path):
    """A MongoDB server of this test's own, which the test may stop and start again."""
    server = LocalMongoServer(tmp_path / "mongo", log_path=tmp_path / "mongo.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fault_settings(settings, own_mongo):
    """The test's settings on its own server, with short lock timings so a test stays short."""
    return settings.model_copy(
        update={
            "MONGODB_URI": own_mongo.uri,
            "PIPELINE_LOCK_LEASE_SECONDS": 6.0,
            "PIPELINE_LOCK_WAIT_SECONDS": 30.0,
        }
    )


@pytest.fixture
def reference(settings_under, tmp_path: Path, fault_settings, kit, sdk_captures):
    """What one clean run gives on the same raw files (session server, a database of its own)."""

    def run() -> tuple[dict, dict]:
        clean = settings_under(tmp_path / "reference").model_copy(
            update={"RAW_STORE_URL": fault_settings.RAW_STORE_URL}
        )
        with connect(clean) as client:
            for project in kit.projects:
                upsert_project(client[clean.MONGODB_DB], project)
        run_pipeline(clean, [kit.hour])
        result = warehouse_rows(clean), mongo_state(clean)
        with connect(clean) as client:
            client.drop_database(clean.MONGODB_DB)
        return result

    return run


def restart(server: LocalMongoServer) -> None:
    """The same server (port and data) back after a stop."""
    server.process = None
    server.start()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_mongodb_stopped_during_the_beam_job_commits_nothing_and_a_rerun_converges(
    fault_settings, own_mongo, kit, sdk_captures, monkeypatch, reference
):
    seed(fault_settings, kit, sdk_captures["004-v2x-found-better-plugin"]["body"])
    real_process = beam.pipeline._process

    def process_then_lose_mongodb(options, inputs):
        staged = real_process(options, inputs)
        own_mongo.stop()
        return staged

    monkeypatch.setattr(beam.pipeline, "_process", process_then_lose_mongodb)
    with pytest.raises(PipelineError, match=r"2026-11-28T01: not committed, nothing changed"):
        run_pipeline(fault_settings, [kit.hour])
    assert not warehouse_rows(fault_settings).get("deactivations")
    monkeypatch.undo()

    restart(own_mongo)
    assert mongo_state(fault_settings) == {name: [] for name in STATE}
    # The failed run could not give its lease back: the re-run waits for it to expire, then runs.
    started = time.monotonic()
    run_pipeline(fault_settings, [kit.hour])
    assert time.monotonic() - started < fault_settings.PIPELINE_LOCK_WAIT_SECONDS

    assert (warehouse_rows(fault_settings), mongo_state(fault_settings)) == reference()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_mongodb_stopped_after_the_commit_says_so_and_a_rerun_converges(
    fault_settings, own_mongo, kit, sdk_captures, monkeypatch, reference
):
    seed(fault_settings, kit, sdk_captures["004-v2x-found-better-plugin"]["body"])
    real_replace = DuckDBWarehouse.replace_hours_from_files

    def commit_then_lose_mongodb(self, hours, staged):
        written = real_replace(self, hours, staged)
        own_mongo.stop()
        return written

    monkeypatch.setattr(DuckDBWarehouse, "replace_hours_from_files", commit_then_lose_mongodb)
    with pytest.raises(StateWriteError, match=r"hours 2026-11-28T01: the warehouse holds them, but MongoDB"):
        run_pipeline(fault_settings, [kit.hour])
    monkeypatch.undo()
    committed = warehouse_rows(fault_settings)

    restart(own_mongo)
    run_pipeline(fault_settings, [kit.hour])

    expected_warehouse, expected_state = reference()
    assert committed == expected_warehouse  # the commit was whole, not half
    assert (warehouse_rows(fault_settings), mongo_state(fault_settings)) == (
        expected_warehouse,
        expected_state,
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_failed_warehouse_write_changes_no_mongodb_state_or_outbox(
    fault_settings, kit, sdk_captures, monkeypatch
):
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    seed(fault_settings, kit, body)
    run_pipeline(fault_settings, [kit.hour])
    before = warehouse_rows(fault_settings), mongo_state(fault_settings)
    # A late file of the same hour: a new site, a newer event of a known one, new mail requests.
    late = [
        {**body, "url": "https://late.example"},
        {**body, "url": "https://site-0.example", "reason_info": "x"},
    ]
    open_raw_store(fault_settings).write_envelopes("deactivate", [kit.envelope(e, minute=30) for e in late])
    real_replace = DuckDBWarehouse.replace_hours_from_files

    def fail_on_the_last_table(self, hours, staged):
        # A file that cannot be read: the load fails inside the transaction, after the deletes.
        return real_replace(
            self, hours, {**staged, "hour_loads": [*staged["hour_loads"], "/nonexistent.parquet"]}
        )

    monkeypatch.setattr(DuckDBWarehouse, "replace_hours_from_files", fail_on_the_last_table)
    with pytest.raises(WarehouseError, match="nothing changed"):
        run_pipeline(fault_settings, [kit.hour])

    assert (warehouse_rows(fault_settings), mongo_state(fault_settings)) == before
    assert not list(Path(fault_settings.DATA_DIR, "staging").glob("*")), "staging left behind"


def _run_in_thread(settings, hours, results: dict, name: str) -> threading.Thread:
    def target() -> None:
        try:
            results[name] = run_pipeline(settings, hours)
        except Exception as exc:  # the test inspects it
            results[name] = exc

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


@pytest.fixture
def slow_jobs(monkeypatch):
    """Each Beam job takes a second longer and records when it ran, so two runs certainly overlap."""
    real_process = beam.pipeline._process
    timeline: list[tuple[str, str]] = []
    inside = threading.Event()

    def slow_process(options, inputs):
        timeline.append(("start", threading.current_thread().name))
        inside.set()
        time.sleep(1.5)
        staged = real_process(options, inputs)
        timeline.append(("end", threading.current_thread().name))
        return staged

    monkeypatch.setattr(beam.pipeline, "_process", slow_process)
    return timeline, inside


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_runs_of_the_same_hours_take_turns_and_equal_one_run(
    fault_settings, kit, sdk_captures, slow_jobs, reference
):
    timeline, inside = slow_jobs
    seed(fault_settings, kit, sdk_captures["004-v2x-found-better-plugin"]["body"])
    results: dict = {}
    first = _run_in_thread(fault_settings, [kit.hour], results, "first")
    assert inside.wait(60)
    second = _run_in_thread(fault_settings, [kit.hour], results, "second")
    first.join(120)
    second.join(120)

    assert not [r for r in results.values() if isinstance(r, Exception)], results
    assert timeline == [("start", "first"), ("end", "first"), ("start", "second"), ("end", "second")]
    assert results["first"].model_dump(exclude={"seconds", "rows_written"}) == results["second"].model_dump(
        exclude={"seconds", "rows_written"}
    )
    assert (warehouse_rows(fault_settings), mongo_state(fault_settings)) == reference()
    with connect(fault_settings) as client:
        assert client[fault_settings.MONGODB_DB][PIPELINE_LOCKS].count_documents({}) == 0  # given back


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_second_run_that_may_not_wait_exits_naming_the_hours_and_the_holder(
    fault_settings, kit, sdk_captures, slow_jobs, reference
):
    _timeline, inside = slow_jobs
    seed(fault_settings, kit, sdk_captures["004-v2x-found-better-plugin"]["body"])
    impatient = fault_settings.model_copy(update={"PIPELINE_LOCK_WAIT_SECONDS": 0.0})
    results: dict = {}
    first = _run_in_thread(fault_settings, [kit.hour], results, "first")
    assert inside.wait(60)
    second = _run_in_thread(impatient, [kit.hour], results, "second")
    second.join(60)
    first.join(120)

    assert isinstance(results["second"], HoursLockedError)
    message = str(results["second"])
    assert "hours 2026-11-28T01 are being processed by another run" in message
    assert "held by " in message and ":" in message.split("held by ")[1]  # host:pid:nonce of the holder
    assert not isinstance(results["first"], Exception), results["first"]
    assert (warehouse_rows(fault_settings), mongo_state(fault_settings)) == reference()
