"""The collector as it runs in production: `deact serve` (Granian) in its own process group."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections import Counter
from urllib.parse import urlsplit

import pytest

from deactivation.sdk_client import post_deactivation, post_many
from deactivation.settings import Settings

from .conftest import stored_files
from .serving import serve, stored_envelopes

WORKERS = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A real collector on a free port with its own raw store; yields (base_url, raw_root)."""
    settings = {
        "INGEST_THREADS": "16",
        # These tests post thousands of requests from one address and project as fast as they can.
        "INGEST_RATE_PER_IP": "0",
        "INGEST_RATE_PER_PROJECT": "0",
    }
    with serve(tmp_path_factory.mktemp("served"), workers=WORKERS, **settings) as collector:
        yield collector.base_url, collector.raw_root


@pytest.mark.slow
def test_concurrent_posts_store_exactly_the_acknowledged_envelopes(served, sdk_captures):
    base_url, raw_root = served
    template = sdk_captures["004-v2x-found-better-plugin"]["body"]
    bodies = [{**template, "reason_info": f"concurrent #{i}"} for i in range(2000)]

    statuses = post_many(base_url, bodies, concurrency=16)

    envelopes = [e for e in stored_envelopes(raw_root) if e["body"]["reason_info"].startswith("concurrent #")]
    acknowledged = [
        body["reason_info"] for body, status in zip(bodies, statuses, strict=True) if status == 202
    ]
    assert Counter(statuses) == {202: 2000}
    assert len(envelopes) == len(acknowledged)
    assert sorted(e["body"]["reason_info"] for e in envelopes) == sorted(acknowledged)
    assert len({e["event_id"] for e in envelopes}) == len(envelopes)
    # Group commit at work: fewer files than envelopes.
    assert len(stored_files(raw_root, "deactivate")) < len(envelopes)


def test_served_collector_answers_the_sdk_and_its_probes(served, sdk_captures):
    base_url, raw_root = served
    body = {**sdk_captures["022-v1-is-not-working"]["body"], "reason_info": "probe test"}
    assert post_deactivation(base_url, body) == 202
    assert post_deactivation(base_url, body, as_json=True) == 202
    assert post_deactivation(base_url, {"reason_id": "other"}) == 400
    with urllib.request.urlopen(f"{base_url}/healthz") as response:
        assert json.load(response)["status"] == "ok"
    assert [
        e["content_type"] for e in stored_envelopes(raw_root) if e["body"]["reason_info"] == "probe test"
    ] == [
        "application/x-www-form-urlencoded",
        "application/json",
    ]


def test_served_collector_refuses_an_oversized_chunked_body(served):
    base_url, raw_root = served
    stored_before = len(stored_envelopes(raw_root))
    limit = Settings(_env_file=None).MAX_BODY_BYTES
    head = b"hash=a4a8da5b-b419-4656-98e9-4a42e9044891&reason_info="
    # One byte over the limit, sent chunked (no Content-Length). The server reads all of it
    # before refusing, so the client is never cut off mid-send.
    body = head + b"x" * (limit + 1 - len(head))
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=30)
    connection.request(
        "POST",
        "/deactivate",
        body=iter([body[:100_000], body[100_000:]]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 413
    assert json.load(response)["code"] == "body_too_large"
    connection.close()
    assert len(stored_envelopes(raw_root)) == stored_before
