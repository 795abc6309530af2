"""Faults, each bounded in time: the collector killed under load, a full disk, an unwritable store.

Whatever happens, an event answered 2xx is on disk, nothing half-written is visible to readers
(complete files only; every line parses), the client gets 503 while the store cannot write, and
the service recovers by itself once it can.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deactivation import raw_store
from deactivation.raw_store import hour_path
from deactivation.sdk_client import post_deactivation
from deactivation.settings import Settings
from ingest_app import create_app

from .conftest import all_files, stored_files
from .serving import serve, stored_envelopes


@pytest.fixture
def capture(sdk_captures):
    return sdk_captures["004-v2x-found-better-plugin"]


@pytest.mark.timeout(120)
def test_kill_9_under_load_loses_no_acknowledged_event(tmp_path, capture):
    settings = {"INGEST_RATE_PER_IP": "0", "INGEST_RATE_PER_PROJECT": "0"}
    with serve(tmp_path, workers=2, **settings) as served:
        acknowledged: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(number: int) -> None:
            sent = 0
            while not stop.is_set():
                reason = f"client {number} event {sent}"
                sent += 1
                try:
                    status = post_deactivation(served.base_url, {**capture["body"], "reason_info": reason})
                except Exception:  # the server died mid-request: not acknowledged
                    return
                if status == 202:
                    with lock:
                        acknowledged.append(reason)

        clients = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(served.process.pid, signal.SIGKILL)  # the main process and every worker, at once
        served.process.wait()
        stop.set()
        for thread in clients:
            thread.join(30)

    assert len(acknowledged) >= 300
    stored = {envelope["body"]["reason_info"] for envelope in stored_envelopes(served.raw_root)}
    assert set(acknowledged) <= stored
    # Temporary dot-files may remain from the kill; readers never see them.
    visible = stored_files(served.raw_root, "deactivate")
    assert all(path.suffix in (".json", ".ndjson") for path in visible)


def failing_with_enospc(real_write):
    """os.write that fails with ENOSPC while `full` is set."""
    full = threading.Event()

    def write(fd: int, data) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    return write, full


def test_disk_full_gives_503_leaves_nothing_half_written_and_recovers(tmp_path, capture, monkeypatch):
    app = create_app(Settings(RAW_STORE_URL=str(tmp_path / "raw"), _env_file=None))
    client = app.test_client()
    write, full = failing_with_enospc(os.write)
    monkeypatch.setattr(raw_store.os, "write", write)

    full.set()
    refused = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    ready_when_full = client.get("/readyz")
    full.clear()
    accepted = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    ready_again = client.get("/readyz")
    app.extensions["ingest"].writer.close()

    assert refused.status_code == 503 and refused.json["code"] == "store_unavailable"
    assert ready_when_full.status_code == 503
    assert accepted.status_code == 202 and ready_again.status_code == 200
    # Exactly one file, complete, and no temporary file left behind by the failed write.
    assert [p.name for p in all_files(tmp_path / "raw")] == [f"{accepted.json['event_id']}.json"]


def test_hour_folder_parent_replaced_by_a_file_gives_503_and_recovers(tmp_path, capture):
    app = create_app(Settings(RAW_STORE_URL=str(tmp_path / "raw"), _env_file=None))
    client = app.test_client()
    assert (
        client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"]).status_code
        == 202
    )
    [first] = stored_files(tmp_path / "raw", "deactivate")

    # The day folder of this hour becomes a file: the writer's known folder is gone.
    day = tmp_path / "raw" / Path(hour_path("deactivate", datetime.now(UTC))).parent
    moved = tmp_path / "moved-day"
    day.rename(moved)
    day.write_text("not a folder")
    refused = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    not_ready = client.get("/readyz")

    day.unlink()
    moved.rename(day)
    recovered = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    ready = client.get("/readyz")
    app.extensions["ingest"].writer.close()

    assert refused.status_code == 503 and refused.json["code"] == "store_unavailable"
    assert not_ready.status_code == 503 and not_ready.json["code"] == "store_unavailable"
    assert recovered.status_code == 202 and ready.status_code == 200
    files = stored_files(tmp_path / "raw", "deactivate")
    assert first in files and len(files) == 2
    assert all(not p.name.startswith(".") for p in all_files(tmp_path / "raw" / "deactivate"))
    for path in files:
        assert json.loads(path.read_bytes())["body"]["hash"]


def test_readyz_probes_the_hour_folder_the_next_event_goes_to(tmp_path, capture):
    """Ready means writable where the next event goes: a store whose root is fine but whose
    route folder cannot take files is not ready."""
    root = tmp_path / "raw"
    root.mkdir()
    (root / "deactivate").write_text("a file where the route's folder should be")
    app = create_app(Settings(RAW_STORE_URL=str(root), _env_file=None))
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    (root / "deactivate").unlink()
    assert client.get("/readyz").status_code == 200
    assert all_files(root) == []  # the probe file was removed
    app.extensions["ingest"].writer.close()
