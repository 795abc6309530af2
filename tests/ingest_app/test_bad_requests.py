"""Bad input: a clear JSON error, nothing under deactivate/, the request kept (redacted) under rejected/."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from .conftest import all_files, stored_files

BAD_REQUESTS = sorted((Path(__file__).parents[1] / "fixtures" / "bad_requests").glob("*.json"))


def request_body(case: dict) -> bytes:
    if "body_base64" in case:
        return base64.b64decode(case["body_base64"])
    return case["body"].encode()


@pytest.mark.parametrize("path", BAD_REQUESTS, ids=lambda p: p.stem)
def test_bad_request_is_answered_and_kept_but_not_stored(client, raw_root, path):
    case = json.loads(path.read_text())
    headers = {"User-Agent": "Appsero/9cb0e7e1db448383bb45e93e98180690;"}
    if case["content_type"]:
        headers["Content-Type"] = case["content_type"]
    response = client.open(case["route"], method=case["method"], data=request_body(case), headers=headers)

    assert response.status_code == case["status"], response.json
    assert response.json["code"] == case["code"]
    assert set(response.json) == {"code", "message", "details"} and response.json["message"]
    assert stored_files(raw_root, "deactivate") == []
    [kept] = stored_files(raw_root, "rejected")
    record = json.loads(kept.read_text())
    assert record["code"] == case["code"] and record["status"] == case["status"]
    assert record["route"] == "deactivate" and record["method"] == case["method"]
    # Kept for diagnosis, without personal data: a decoded body as a redacted object, other
    # bytes as redacted text, never raw bytes and never the client's address.
    assert "body_base64" not in record and "remote_addr" not in record
    assert record["body_bytes"] == len(request_body(case))
    if "body" in record:
        assert isinstance(record["body"], dict)
    elif request_body(case):
        assert record["body_text"]
    if case["status"] == 405:
        assert response.headers["Allow"] == "POST"


def test_oversized_body_is_413_and_not_kept(client, raw_root, ingest_settings, sdk_captures):
    encoded = sdk_captures["004-v2x-found-better-plugin"]["body_encoded"]
    oversized = encoded + "&reason_info=" + "x" * ingest_settings.MAX_BODY_BYTES
    response = client.post("/deactivate", data=oversized, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.json["code"] == "body_too_large"
    assert response.json["details"] == {"limit": ingest_settings.MAX_BODY_BYTES}
    assert all_files(raw_root) == []


@pytest.mark.parametrize("extra", [0, 1, 100_000])
def test_chunked_body_over_the_limit_is_413_not_truncated(client, raw_root, ingest_settings, extra):
    limit = ingest_settings.MAX_BODY_BYTES
    body = b"hash=a4a8da5b-b419-4656-98e9-4a42e9044891&reason_info=" + b"x" * limit
    response = client.post(
        "/deactivate",
        input_stream=io.BytesIO(body[: limit + extra]),
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"wsgi.input_terminated": True},  # chunked: no Content-Length
    )
    if extra == 0:
        assert response.status_code == 202
        [stored] = stored_files(raw_root, "deactivate")
        assert len(json.loads(stored.read_bytes())["body"]["reason_info"]) == limit - 54
    else:
        assert response.status_code == 413 and response.json["code"] == "body_too_large"
        assert all_files(raw_root) == []


def test_a_body_shorter_than_its_content_length_is_refused(client, raw_root):
    response = client.post(
        "/deactivate",
        input_stream=io.BytesIO(b"hash=a4a8da5b-b419-4656-98e9-4a42e9044891&reason_id=other"),
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"CONTENT_LENGTH": "500"},  # the client stopped sending early
    )
    assert response.status_code == 400 and response.json["code"] == "incomplete_body"
    assert stored_files(raw_root, "deactivate") == []


def test_rejections_are_counted_and_logged_without_personal_data(client, caplog, sdk_captures):
    capture = sdk_captures["004-v2x-found-better-plugin"]
    bad = capture["body_encoded"].replace("hash=a4a8da5b-b419-4656-98e9-4a42e9044891", "hash=nope")
    with caplog.at_level("INFO"):
        response = client.post("/deactivate", data=bad, headers=capture["headers"])
    assert response.status_code == 400
    assert client.get("/healthz").json["counts"]["rejected"] == {"invalid_hash": 1}
    logged = caplog.text
    assert "invalid_hash" in logged
    for personal in ("admin@example.com", "Jane", "shop.example.com", "Appsero/", "127.0.0.1"):
        assert personal not in logged
