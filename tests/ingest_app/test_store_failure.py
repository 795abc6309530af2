"""A store that cannot write: 503 with a JSON error, never 2xx, and no file left behind."""

from __future__ import annotations

import os

import pytest

from deactivation import raw_store
from deactivation.settings import Settings
from ingest_app import create_app

from .conftest import all_files


@pytest.fixture
def capture(sdk_captures):
    return sdk_captures["004-v2x-found-better-plugin"]


def test_unwritable_store_gives_503_and_no_file(tmp_path, capture):
    blocked = tmp_path / "raw"
    blocked.write_text("a file where the store's directory should be")
    app = create_app(Settings(RAW_STORE_URL=str(blocked), _env_file=None))
    client = app.test_client()

    response = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])

    assert response.status_code == 503
    assert response.json["code"] == "store_unavailable"
    assert set(response.json) == {"code", "message", "details"}
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").json["counts"]["store_failures"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["raw"] and blocked.is_file()
    app.extensions["ingest"].writer.close()


def test_failed_fsync_gives_503_and_removes_the_partial_file(client, raw_root, capture, monkeypatch):
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(raw_store.os, "fsync", failing_fsync)
    response = client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.json["code"] == "store_unavailable"
    assert [p for p in all_files(raw_root) if "deactivate" in p.parts] == []
    # The store recovers: the next request is stored.
    assert (
        client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"]).status_code
        == 202
    )


def test_rejected_request_is_still_answered_when_it_cannot_be_kept(tmp_path):
    blocked = tmp_path / "raw"
    blocked.write_text("")
    app = create_app(Settings(RAW_STORE_URL=str(blocked), _env_file=None))
    response = app.test_client().post(
        "/deactivate", data="hash=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json["code"] == "invalid_hash"
    assert os.listdir(tmp_path) == ["raw"]
