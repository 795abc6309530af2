"""The collector's good path: every SDK capture round-trips into a durable raw envelope."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from deactivation.envelope import SCHEMA_VERSION, parse_timestamp
from deactivation.raw_store import hour_path

from .conftest import stored_files

CAPTURES = sorted((Path(__file__).parents[1] / "fixtures" / "sdk_captures").glob("*.json"))
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def as_form_values(value: Any) -> Any:
    """What a PHP array looks like after the form encoding: strings, booleans as "1"/"0"."""
    if isinstance(value, dict):
        return {k: as_form_values(v) for k, v in value.items() if v is not None and v != {} and v != []}
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def only_envelope(raw_root: Path, route: str = "deactivate") -> tuple[dict, Path]:
    files = stored_files(raw_root, route)
    assert len(files) == 1, files
    lines = files[0].read_bytes().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0]), files[0]


def check_envelope(envelope: dict, response, raw_root: Path, path: Path, route: str, content_type: str):
    assert set(envelope) == {
        "schema_version",
        "event_id",
        "received_at",
        "route",
        "content_type",
        "user_agent",
        "remote_addr",
        "body",
    }
    assert envelope["schema_version"] == SCHEMA_VERSION
    assert response.json == {"event_id": envelope["event_id"]}
    assert uuid.UUID(envelope["event_id"]).version == 7
    assert TIMESTAMP.match(envelope["received_at"])
    assert envelope["route"] == route
    assert envelope["content_type"] == content_type
    assert envelope["remote_addr"] == "127.0.0.1"
    hour = parse_timestamp(envelope["received_at"])
    assert path.relative_to(raw_root).parent.as_posix() == hour_path(route, hour)
    assert path.name == f"{envelope['event_id']}.json"


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_every_capture_round_trips_form_encoded(client, raw_root, path):
    capture = json.loads(path.read_text())
    response = client.post(capture["route"], data=capture["body_encoded"], headers=capture["headers"])
    assert response.status_code == 202, response.json
    envelope, stored = only_envelope(raw_root)
    check_envelope(envelope, response, raw_root, stored, "deactivate", "application/x-www-form-urlencoded")
    assert envelope["body"] == as_form_values(capture["body"])
    assert envelope["user_agent"] == capture["headers"]["User-Agent"]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_every_capture_round_trips_as_json(client, raw_root, path):
    capture = json.loads(path.read_text())
    response = client.post(
        capture["route"], json=capture["body"], headers={"User-Agent": capture["headers"]["User-Agent"]}
    )
    assert response.status_code == 202, response.json
    envelope, stored = only_envelope(raw_root)
    check_envelope(envelope, response, raw_root, stored, "deactivate", "application/json")
    assert envelope["body"] == capture["body"]


def test_json_with_null_reason_info_and_numbers_as_strings(client, raw_root, sdk_captures):
    body = {**sdk_captures["004-v2x-found-better-plugin"]["body"], "reason_info": None, "active_plugins": "2"}
    assert client.post("/deactivate", json=body).status_code == 202
    assert only_envelope(raw_root)[0]["body"] == body


@pytest.mark.parametrize("route", ["track", "tracking-skipped"])
def test_other_sdk_routes_are_kept_under_their_own_prefix(client, raw_root, route, sdk_captures):
    capture = sdk_captures["004-v2x-found-better-plugin"]
    response = client.post(f"/{route}", data=capture["body_encoded"], headers=capture["headers"])
    assert response.status_code == 202
    envelope, stored = only_envelope(raw_root, route)
    check_envelope(envelope, response, raw_root, stored, route, "application/x-www-form-urlencoded")
    assert stored_files(raw_root, "deactivate") == []


def test_routes_also_answer_under_a_base_path(client, raw_root, sdk_captures):
    # The SDK's endpoint is a configurable base URL, which may carry a path.
    capture = sdk_captures["021-theme"]
    response = client.post(
        "/collector/v1/deactivate", data=capture["body_encoded"], headers=capture["headers"]
    )
    assert response.status_code == 202
    assert only_envelope(raw_root)[0]["route"] == "deactivate"


def test_content_type_parameters_and_case_are_accepted(client, raw_root, sdk_captures):
    capture = sdk_captures["022-v1-is-not-working"]
    headers = {"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=UTF-8"}
    assert client.post("/deactivate", data=capture["body_encoded"], headers=headers).status_code == 202
    assert only_envelope(raw_root)[0]["body"] == as_form_values(capture["body"])


def test_a_body_of_exactly_the_limit_is_accepted(client, raw_root, ingest_settings, sdk_captures):
    encoded = sdk_captures["004-v2x-found-better-plugin"]["body_encoded"] + "&reason_info="
    padded = encoded + "x" * (ingest_settings.MAX_BODY_BYTES - len(encoded))
    response = client.post("/deactivate", data=padded, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202
    assert len(only_envelope(raw_root)[0]["body"]["reason_info"]) > 200_000


def test_healthz_and_readyz(client, raw_root, sdk_captures):
    capture = sdk_captures["021-theme"]
    client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"])
    client.post("/deactivate", data="", content_type="application/x-www-form-urlencoded")
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json["status"] == "ok"
    assert health.json["counts"]["accepted"] == {"deactivate": 1}
    assert health.json["counts"]["rejected"] == {"empty_body": 1}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json == {"status": "ready"}
    assert not (raw_root / "_readyz").exists() or not any((raw_root / "_readyz").iterdir())


def test_unknown_paths_get_the_json_error_envelope(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert set(response.json) == {"code", "message", "details"}


def test_remote_addr_comes_from_the_trusted_proxy_hop(tmp_path, sdk_captures):
    from deactivation.settings import Settings
    from ingest_app import create_app

    settings = Settings(RAW_STORE_URL=str(tmp_path / "raw"), INGEST_PROXY_HOPS=1, _env_file=None)
    app = create_app(settings)
    capture = sdk_captures["021-theme"]
    headers = {**capture["headers"], "X-Forwarded-For": "198.51.100.9"}
    assert (
        app.test_client().post("/deactivate", data=capture["body_encoded"], headers=headers).status_code
        == 202
    )
    app.extensions["ingest"].writer.close()
    assert only_envelope(tmp_path / "raw")[0]["remote_addr"] == "198.51.100.9"
