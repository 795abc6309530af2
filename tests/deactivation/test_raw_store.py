"""The raw store's layout on a local directory (the GCS store runs the same checks in
tests/ingest_app/test_gcs.py against the emulator)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import orjson
import pytest

from deactivation.envelope import make_envelope
from deactivation.raw_store import (
    LocalRawStore,
    RawStoreError,
    open_raw_store,
    serialise_envelope,
    split_records,
)
from deactivation.settings import Settings

AT = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)


def _envelope(n: int, at: datetime = AT) -> dict:
    return make_envelope(
        route="deactivate", body={"hash": "h", "n": str(n)}, content_type="x", received_at=at
    )


def test_one_file_per_hour_json_for_one_ndjson_for_several(tmp_path):
    store = LocalRawStore(str(tmp_path))
    later = datetime(2026, 11, 28, 2, 0, 1, tzinfo=UTC)
    written = store.write_envelopes("deactivate", [_envelope(1), _envelope(2), _envelope(3, later)])
    assert [path.rsplit(".", 1)[1] for path in written] == ["ndjson", "json"]
    [first_hour] = store.list_hour("deactivate", AT)
    records = list(split_records(first_hour.relative_path, store.read_bytes(first_hour.relative_path)))
    assert [(line, orjson.loads(text)["body"]["n"]) for line, text in records] == [(1, "1"), (2, "2")]
    assert first_hour.relative_path.startswith("deactivate/2026/11/28/01/")


def test_serialised_lines_are_what_is_stored(tmp_path):
    store = LocalRawStore(str(tmp_path))
    line = serialise_envelope(_envelope(7))
    [path] = store.write_lines("track", [line])
    assert store.read_bytes(path) == line.line + b"\n"


def test_a_json_file_is_one_record_even_when_pretty_printed():
    data = b'{\n  "a": 1\n}\n'
    assert list(split_records("x/y.json", data)) == [(1, data)]
    assert list(split_records("x/y.ndjson", b'{"a":1}\n\n{"a":2}\n')) == [(1, b'{"a":1}'), (3, b'{"a":2}')]


def test_listing_skips_temporary_and_foreign_files(tmp_path):
    store = LocalRawStore(str(tmp_path))
    store.write_envelopes("deactivate", [_envelope(1)])
    folder = tmp_path / "deactivate/2026/11/28/01"
    (folder / ".half-written.ndjson.tmp").write_bytes(b"{")
    (folder / "notes.txt").write_text("x")
    assert [
        f.relative_path.rsplit("/", 1)[1].rsplit(".", 1)[1] for f in store.list_hour("deactivate", AT)
    ] == ["json"]
    assert store.list_hour("deactivate", datetime(2026, 1, 1, tzinfo=UTC)) == []


def test_readiness_probe_writes_where_the_next_event_goes_and_leaves_nothing(tmp_path):
    store = LocalRawStore(str(tmp_path))
    store.check_writable("deactivate")
    folder = tmp_path / f"deactivate/{datetime.now(UTC):%Y/%m/%d/%H}"
    assert folder.is_dir() and os.listdir(folder) == []


def test_an_unwritable_store_raises_and_leaves_no_partial_file(tmp_path):
    (tmp_path / "deactivate").write_text("a file where the route's folder should be")
    store = LocalRawStore(str(tmp_path))
    with pytest.raises(RawStoreError):
        store.write_envelopes("deactivate", [_envelope(1)])
    with pytest.raises(RawStoreError):
        store.check_writable("deactivate")


def test_a_folder_removed_after_a_write_is_made_again(tmp_path):
    store = LocalRawStore(str(tmp_path))
    store.write_envelopes("deactivate", [_envelope(1)])
    for name in os.listdir(tmp_path / "deactivate/2026/11/28/01"):
        store.delete(f"deactivate/2026/11/28/01/{name}")
    os.rmdir(tmp_path / "deactivate/2026/11/28/01")
    store.write_envelopes("deactivate", [_envelope(2)])
    assert len(store.list_hour("deactivate", AT)) == 1


def test_settings_choose_the_store(tmp_path):
    local = open_raw_store(Settings(RAW_STORE_URL=str(tmp_path), _env_file=None))
    assert isinstance(local, LocalRawStore) and local.url_for("a/b") == str(tmp_path / "a/b")
