"""The gs:// raw store through gcsfs, against fake-gcs-server started on a free port."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from deactivation.envelope import make_envelope, parse_timestamp
from deactivation.hours import hour_floor
from deactivation.raw_store import open_raw_store, raw_store_at, split_records
from deactivation.settings import Settings
from ingest_app import create_app

BUCKET = "deactivation-raw"  # created by the gcs_endpoint fixture (tests/conftest.py)


def test_raw_store_writes_lists_and_reads_on_gcs(gcs_endpoint):
    store = raw_store_at(f"gs://{BUCKET}/store-test", gcs_endpoint=gcs_endpoint)
    at = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
    single = make_envelope(
        route="deactivate", body={"hash": "h", "n": "1"}, content_type="application/json", received_at=at
    )
    batch = [
        make_envelope(
            route="deactivate",
            body={"hash": "h", "n": str(n)},
            content_type="application/json",
            received_at=at,
        )
        for n in (2, 3)
    ]

    store.write_envelopes("deactivate", [single])
    store.write_envelopes("deactivate", batch)
    store.write_rejected({"code": "invalid_hash", "body": "hash=x"}, at=at)
    store.check_writable()

    files = store.list_hour("deactivate", hour_floor(at))
    assert sorted(f.relative_path.rsplit(".", 1)[1] for f in files) == ["json", "ndjson"]
    assert all(f.url.startswith(f"gs://{BUCKET}/store-test/deactivate/2026/11/28/01/") for f in files)
    numbers = sorted(
        json.loads(line)["body"]["n"]
        for f in files
        for _, line in split_records(f.relative_path, store.read_bytes(f.relative_path))
    )
    assert numbers == ["1", "2", "3"]
    assert store.list_hour("deactivate", datetime(2026, 11, 28, 2, tzinfo=UTC)) == []
    assert len(store.list_hour("rejected", hour_floor(at))) == 1


def test_collector_stores_capture_on_gcs(gcs_endpoint, sdk_captures, tmp_path):
    settings = Settings(
        RAW_STORE_URL=f"gs://{BUCKET}/collector",
        STORAGE_EMULATOR_HOST=gcs_endpoint,
        DATA_DIR=tmp_path,
        _env_file=None,
    )
    app = create_app(settings)
    client = app.test_client()
    capture = sdk_captures["004-v2x-found-better-plugin"]

    before = datetime.now(UTC)
    response = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    after = datetime.now(UTC)
    assert response.status_code == 202
    assert client.get("/readyz").status_code == 200
    app.extensions["ingest"].writer.close()

    store = open_raw_store(settings)
    hours = sorted({hour_floor(before), hour_floor(after)})  # the post may straddle an hour
    [stored] = [f for hour in hours for f in store.list_hour("deactivate", hour)]
    [(_, line)] = list(split_records(stored.relative_path, store.read_bytes(stored.relative_path)))
    envelope = json.loads(line)
    assert envelope["event_id"] == response.json["event_id"]
    assert envelope["body"]["server"]["php_version"] == "8.2.36"
    assert hour_floor(parse_timestamp(envelope["received_at"])) in hours
