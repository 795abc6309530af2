"""The pipeline reading its hour folders from a gs:// raw store (fake-gcs-server on a free port)."""

from __future__ import annotations

import pytest

from beam.pipeline import run_pipeline
from deactivation.mongo import DEACTIVATIONS
from deactivation.projects import upsert_project
from deactivation.raw_store import open_raw_store

BUCKET = "deactivation-raw"  # created by the gcs_endpoint fixture (tests/conftest.py)


@pytest.mark.slow
def test_pipeline_reads_hour_folders_from_gcs(settings, mongo_db, sdk_captures, kit, gcs_endpoint):
    gcs_settings = settings.model_copy(
        update={"RAW_STORE_URL": f"gs://{BUCKET}/raw", "STORAGE_EMULATOR_HOST": gcs_endpoint}
    )
    for project in kit.projects:
        upsert_project(mongo_db, project)
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    store = open_raw_store(gcs_settings)
    events = [kit.envelope({**body, "reason_info": f"text {m}"}, minute=m) for m in range(3)]
    store.write_envelopes("deactivate", events)
    store.write_envelopes("deactivate", [kit.envelope({**body, "reason_id": "made-up"}, minute=5)])

    summary = run_pipeline(gcs_settings, [kit.hour])

    assert (summary.files, summary.read, summary.deactivations) == (2, 4, 3)
    assert summary.errors["invalid_reason"] == 1
    assert mongo_db[DEACTIVATIONS].count_documents({"project_hash": kit.plugin_hash}) == 1
