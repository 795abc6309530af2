"""Abuse limits: per-client-IP and per-project-hash token buckets, 429 with Retry-After, in a
table of bounded size."""

from __future__ import annotations

import json

import pytest

from deactivation.settings import Settings
from ingest_app import create_app
from ingest_app.fast_path import SdkFront
from ingest_app.rate_limits import MAX_KEY_CHARS, TokenBuckets

from .conftest import call_asgi, stored_files

HASH = "a4a8da5b-b419-4656-98e9-4a42e9044891"
OTHER_HASH = "0f6f2a7c-3d1e-4b7a-9c55-2e8d1b3a4c5d"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, capacity=10, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every 0.5 s
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 100
    assert [buckets.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled up to the burst only


def test_the_table_is_bounded_in_keys_and_key_length():
    buckets = TokenBuckets(rate=1.0, burst=1, capacity=100, clock=FakeClock())
    for number in range(10_000):
        buckets.take(f"{number}-" + "x" * 10_000)
    assert len(buckets) == 100
    assert all(len(key) <= MAX_KEY_CHARS for key in buckets._buckets)
    # The least recently seen key is the one forgotten; a recent one keeps its (empty) bucket.
    assert buckets.take("9999-" + "x" * 10_000) > 0


def limited_app(tmp_path, **limits):
    settings = Settings(
        RAW_STORE_URL=str(tmp_path / "raw"),
        INGEST_RATE_PER_IP=limits.get("ip_rate", 0),
        INGEST_BURST_PER_IP=limits.get("ip_burst", 1),
        INGEST_RATE_PER_PROJECT=limits.get("project_rate", 0),
        INGEST_BURST_PER_PROJECT=limits.get("project_burst", 1),
        _env_file=None,
    )
    return create_app(settings)


def body(project: str = HASH) -> bytes:
    return json.dumps({"hash": project, "reason_id": "other"}).encode()


JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize("variant", ["flask", "front"])
def test_a_client_over_its_limit_gets_429_with_retry_after(tmp_path, variant):
    app = limited_app(tmp_path, ip_rate=0.1, ip_burst=3)
    front = SdkFront(app)

    def post(client_ip: str) -> tuple[int, dict, dict]:
        if variant == "front":
            status, headers, payload = call_asgi(
                front, "POST", "/deactivate", body(), JSON_HEADERS, client=(client_ip, 40000)
            )
            return status, headers, json.loads(payload)
        response = app.test_client().post(
            "/deactivate", data=body(), headers=JSON_HEADERS, environ_base={"REMOTE_ADDR": client_ip}
        )
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.json

    answers = [post("203.0.113.7") for _ in range(4)]
    other_client = post("198.51.100.9")
    app.extensions["ingest"].writer.close()

    assert [status for status, _, _ in answers] == [202, 202, 202, 429]
    _, headers, payload = answers[3]
    assert headers["retry-after"] == "10"  # one request per 10 s
    assert headers["content-type"] == "application/json"
    assert payload == {
        "code": "rate_limited",
        "message": "too many requests for this client; retry after 10 s",
        "details": {"limit": "client", "retry_after": 10},
    }
    assert other_client[0] == 202
    assert stored_files(tmp_path / "raw", "rejected") == []  # a flood is not copied to disk
    counts = app.extensions["ingest"].counters.snapshot()
    assert counts["rejected"] == {"rate_limited": 1} and counts["accepted"] == {"deactivate": 4}


@pytest.mark.parametrize("variant", ["flask", "front"])
def test_a_project_over_its_limit_gets_429_from_any_client(tmp_path, variant):
    app = limited_app(tmp_path, project_rate=0.5, project_burst=2)
    front = SdkFront(app)

    def post(project: str, client_ip: str, payload: bytes | None = None) -> tuple[int, dict]:
        data = payload if payload is not None else body(project)
        if variant == "front":
            status, _, answer = call_asgi(
                front, "POST", "/deactivate", data, JSON_HEADERS, client=(client_ip, 1)
            )
            return status, json.loads(answer)
        response = app.test_client().post(
            "/deactivate", data=data, headers=JSON_HEADERS, environ_base={"REMOTE_ADDR": client_ip}
        )
        return response.status_code, response.json

    # Refused requests take no token from their project's bucket.
    invalid = post(
        HASH, "192.0.2.1", b'{"hash": "' + HASH.encode() + b'", "x": ' + b"[" * 40 + b"]" * 40 + b"}"
    )
    statuses = [post(HASH, f"192.0.2.{n}")[0] for n in range(2, 5)]
    other_project = post(OTHER_HASH, "192.0.2.9")
    limited = post(HASH.upper(), "192.0.2.10")  # the same project, however it is spelt
    app.extensions["ingest"].writer.close()

    assert invalid[0] == 400
    assert statuses == [202, 202, 429]
    assert other_project[0] == 202
    assert limited[0] == 429 and limited[1]["details"] == {"limit": "project", "retry_after": 2}


def test_limits_off_when_their_rate_is_zero(tmp_path):
    app = limited_app(tmp_path)
    client = app.test_client()
    assert {client.post("/deactivate", data=body(), headers=JSON_HEADERS).status_code for _ in range(50)} == {
        202
    }
    app.extensions["ingest"].writer.close()


def test_a_request_the_front_hands_to_flask_takes_one_client_token_not_two(tmp_path):
    app = limited_app(tmp_path, ip_rate=0.01, ip_burst=3)
    front = SdkFront(app)
    bad_hash = json.dumps({"hash": "nope"}).encode()
    client = ("203.0.113.7", 40000)
    statuses = [call_asgi(front, "POST", "/deactivate", bad_hash, JSON_HEADERS, client)[0] for _ in range(2)]
    statuses += [call_asgi(front, "POST", "/deactivate", body(), JSON_HEADERS, client)[0] for _ in range(2)]
    app.extensions["ingest"].writer.close()
    assert statuses == [400, 400, 202, 429]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1"])
def test_loopback_clients_are_not_limited_per_address(tmp_path, address):
    app = limited_app(tmp_path, ip_rate=0.01, ip_burst=1)
    client = app.test_client()
    statuses = [
        client.post("/deactivate", data=body(), headers=JSON_HEADERS, environ_base={"REMOTE_ADDR": address})
        for _ in range(5)
    ]
    app.extensions["ingest"].writer.close()
    assert [response.status_code for response in statuses] == [202] * 5
