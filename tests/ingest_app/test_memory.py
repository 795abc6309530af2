"""Bounded memory under any input: hundreds of hostile bodies leave a collector worker's RSS flat.

The bodies are built to fill every cache and buffer a client could size: each carries a new
field name of ~200 KiB (the form decoder caches parsed names), deep nesting and many fields.
"""

from __future__ import annotations

import http.client

import pytest

from .serving import rss_bytes, serve

WARM_UP = 50
HOSTILE = 300
#: Allowed growth over HOSTILE bodies; an unbounded name cache grows by ~200 KiB per body (~60 MB).
MAX_GROWTH_BYTES = 20 * 1024 * 1024


def hostile_body(number: int) -> bytes:
    name = b"n" * 200_000 + str(number).encode()
    nested = b"&".join(b"f%d[a][b][c]=%d" % (i, number) for i in range(200))
    # A valid hash: the body is decoded, accepted and stored by the async front.
    return b"hash=a4a8da5b-b419-4656-98e9-4a42e9044891&" + name + b"[x]=1&" + nested


def post_all(port: int, first: int, count: int) -> set[int]:
    statuses = set()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for number in range(first, first + count):
        body = hostile_body(number)
        connection.request(
            "POST", "/deactivate", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        response = connection.getresponse()
        response.read()
        statuses.add(response.status)
    connection.close()
    return statuses


@pytest.mark.timeout(180)
def test_rss_stays_flat_across_hundreds_of_hostile_bodies(tmp_path):
    settings = {"INGEST_RATE_PER_IP": "0", "INGEST_RATE_PER_PROJECT": "0"}
    with serve(tmp_path, workers=1, **settings) as served:
        [worker] = served.worker_pids()
        assert post_all(served.port, 0, WARM_UP) == {202}
        before = rss_bytes(worker)
        assert post_all(served.port, WARM_UP, HOSTILE) == {202}
        after = rss_bytes(worker)
    assert after - before < MAX_GROWTH_BYTES, f"RSS grew {(after - before) / 2**20:.1f} MiB"
