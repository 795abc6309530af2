"""The collector as it runs in production: `deact serve` (Granian) in its own process group."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deactivation.mongo import free_port
from deactivation.sdk_client import post_deactivation, post_many
from deactivation.settings import Settings

from .conftest import stored_files

REPO = Path(__file__).resolve().parents[2]


WORKERS = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A real collector on a free port with its own raw store; yields (base_url, raw_root)."""
    tmp_path = tmp_path_factory.mktemp("served")
    port = free_port()
    raw_root = tmp_path / "raw"
    environment = {
        **os.environ,
        "RAW_STORE_URL": str(raw_root),
        "INGEST_WORKERS": str(WORKERS),
        "INGEST_THREADS": "16",
        "LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "deact", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, server, log_path)
        yield base_url, raw_root
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (its workers too), SIGKILL if it lingers."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def wait_until_ready(base_url: str, server: subprocess.Popen, log_path: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"deact serve exited: {log_path.read_text(errors='replace')[-2000:]}")
        # Every worker up, not just one: Granian ignores a SIGTERM that overtakes a starting worker.
        started = log_path.read_text(errors="replace").count("Started worker")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1) as response:
                if response.status == 200 and started >= WORKERS:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("deact serve did not become ready")


def stored_envelopes(raw_root: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in stored_files(raw_root, "deactivate")
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


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
