"""Isolation between requests: nothing one request contains can change another's answer or storage.

Each envelope is validated and serialised in its own request before it is queued, so a poison
body fails alone (400, kept under rejected/), never the batch it would have shared; and a failed
write fails exactly the requests of that write.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from deactivation.raw_store import LocalRawStore, RawStoreError
from deactivation.settings import Settings
from ingest_app import create_app
from ingest_app.fast_path import SdkFront

from .conftest import call_asgi, stored_files

HASH = "a4a8da5b-b419-4656-98e9-4a42e9044891"
JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "Appsero/abc;"}


def deep_json(levels: int) -> bytes:
    """A body whose `reason_info` nests `levels` arrays: orjson parses up to 1,024 levels but
    serialises only 254, so without a cap this body would fail only when written."""
    return b'{"hash":"' + HASH.encode() + b'","reason_info":' + b"[" * levels + b"]" * levels + b"}"


def valid_json(number: int) -> bytes:
    return json.dumps({"hash": HASH, "reason_id": "other", "reason_info": f"valid #{number}"}).encode()


class GatedStore(LocalRawStore):
    """Holds every commit until the gate opens, so concurrent requests share batches."""

    def __init__(self, url: str, gate: threading.Event) -> None:
        super().__init__(url)
        self.gate = gate
        self.batch_sizes: list[int] = []

    def write_lines(self, route, envelopes):
        envelopes = list(envelopes)
        self.gate.wait(5)
        self.batch_sizes.append(len(envelopes))
        return super().write_lines(route, envelopes)


def build_app(tmp_path: Path, **overrides):
    settings = Settings(
        RAW_STORE_URL=str(tmp_path / "raw"),
        INGEST_RATE_PER_IP=0,
        INGEST_RATE_PER_PROJECT=0,
        _env_file=None,
        **overrides,
    )
    app = create_app(settings)
    gate = threading.Event()
    state = app.extensions["ingest"]
    state.store = state.writer.store = GatedStore(settings.RAW_STORE_URL, gate)
    return app, gate


def stored_reason_infos(root: Path) -> list[str]:
    return sorted(
        json.loads(line)["body"]["reason_info"]
        for path in stored_files(root, "deactivate")
        for line in path.read_bytes().splitlines()
    )


def kept_codes(root: Path) -> list[str]:
    return sorted(json.loads(path.read_bytes())["code"] for path in stored_files(root, "rejected"))


@pytest.mark.parametrize(
    ("nesting_setting", "poison_levels", "poison_code"),
    [
        (32, 300, "json_too_deep"),  # refused by the depth cap
        (1000, 300, "unstorable_body"),  # cap lifted: refused when its own envelope is serialised
    ],
)
def test_poison_bodies_among_valid_ones_through_flask(tmp_path, nesting_setting, poison_levels, poison_code):
    app, gate = build_app(tmp_path, INGEST_MAX_NESTING=nesting_setting)
    bodies = [deep_json(poison_levels) if i % 4 == 0 else valid_json(i) for i in range(24)]
    statuses: list[int | None] = [None] * len(bodies)

    def post(index: int) -> None:
        response = app.test_client().post("/deactivate", data=bodies[index], headers=JSON_HEADERS)
        statuses[index] = response.status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(30)
    app.extensions["ingest"].writer.close()

    assert statuses == [400 if i % 4 == 0 else 202 for i in range(len(bodies))]
    assert stored_reason_infos(tmp_path / "raw") == sorted(f"valid #{i}" for i in range(24) if i % 4)
    assert kept_codes(tmp_path / "raw") == [poison_code] * 6


def test_poison_bodies_among_valid_ones_through_the_front(tmp_path):
    app, gate = build_app(tmp_path, INGEST_MAX_NESTING=1000)
    front = SdkFront(app)
    bodies = [deep_json(300) if i % 4 == 0 else valid_json(i) for i in range(24)]

    async def post_all() -> list[int]:
        loop = asyncio.get_running_loop()

        def post(body: bytes) -> int:
            return call_asgi(front, "POST", "/deactivate", body, JSON_HEADERS)[0]

        pending = [loop.run_in_executor(None, post, body) for body in bodies]
        await asyncio.sleep(0.2)  # let them queue behind the gate and share batches
        gate.set()
        return await asyncio.gather(*pending)

    statuses = asyncio.run(post_all())
    app.extensions["ingest"].writer.close()
    store = app.extensions["ingest"].store

    assert statuses == [400 if i % 4 == 0 else 202 for i in range(len(bodies))]
    assert stored_reason_infos(tmp_path / "raw") == sorted(f"valid #{i}" for i in range(24) if i % 4)
    assert kept_codes(tmp_path / "raw") == ["unstorable_body"] * 6
    assert max(store.batch_sizes) > 1  # valid requests did share commits


class FailsOneBatchStore(LocalRawStore):
    """Fails the commit that holds a marked envelope; every other commit is written."""

    def write_lines(self, route, envelopes):
        envelopes = list(envelopes)
        if any(b"fail this batch" in envelope.line for envelope in envelopes):
            raise RawStoreError("disk full")
        return super().write_lines(route, envelopes)


def test_a_failed_write_fails_only_the_requests_of_that_write(tmp_path):
    settings = Settings(RAW_STORE_URL=str(tmp_path / "raw"), INGEST_RATE_PER_IP=0, _env_file=None)
    app = create_app(settings)
    state = app.extensions["ingest"]
    state.store = state.writer.store = FailsOneBatchStore(settings.RAW_STORE_URL)
    client = app.test_client()
    marked = json.dumps({"hash": HASH, "reason_info": "fail this batch"}).encode()

    before = client.post("/deactivate", data=valid_json(1), headers=JSON_HEADERS)
    failed = client.post("/deactivate", data=marked, headers=JSON_HEADERS)
    after = client.post("/deactivate", data=valid_json(2), headers=JSON_HEADERS)
    state.writer.close()

    assert [before.status_code, failed.status_code, after.status_code] == [202, 503, 202]
    assert failed.json["code"] == "store_unavailable"
    assert stored_reason_infos(tmp_path / "raw") == ["valid #1", "valid #2"]
