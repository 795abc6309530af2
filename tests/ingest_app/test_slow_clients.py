"""Slow or idle clients cannot occupy the collector: `deact serve` on its own (no proxy) answers
/healthz and valid POSTs within a second while a hundred connections trickle partial bodies, and
answers each trickler 408 `body_timeout` (then closes it) once its body is overdue."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time

import pytest

from deactivation.sdk_client import encode_form
from ingest_app.fast_path import Deadlines

from .serving import serve, stored_envelopes

TRICKLERS = 100
BODY_TIMEOUT_S = 3.0


def open_trickler(port: int, partial_headers: bool = False) -> socket.socket:
    """A connection that announces a 10,000-byte body and sends a few bytes of it (or stops in
    the middle of its headers)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    if partial_headers:
        connection.sendall(b"POST /deactivate HTTP/1.1\r\nHost: collector\r\nContent-Le")
    else:
        connection.sendall(
            b"POST /deactivate HTTP/1.1\r\nHost: collector\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nhash=a4a8"
        )
    return connection


def trickle(connections: list[socket.socket], stop: threading.Event) -> None:
    """One more byte on every connection every 200 ms, until told to stop or the server closes."""
    while not stop.wait(0.2):
        for connection in connections:
            with contextlib.suppress(OSError):  # the server answered and closed it
                connection.sendall(b"x")


def timed_request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, payload, time.monotonic() - started


@pytest.mark.timeout(120)
def test_tricklers_neither_block_others_nor_stay_connected(tmp_path, sdk_captures):
    capture = sdk_captures["004-v2x-found-better-plugin"]
    # One worker: the hardest case, every connection shares one event loop.
    with serve(
        tmp_path, workers=1, INGEST_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S), INGEST_RATE_PER_IP="0"
    ) as served:
        tricklers = [open_trickler(served.port) for _ in range(TRICKLERS - 5)]
        tricklers += [open_trickler(served.port, partial_headers=True) for _ in range(5)]
        stop = threading.Event()
        trickling = threading.Thread(target=trickle, args=(tricklers[:-5], stop))
        trickling.start()
        opened_at = time.monotonic()
        try:
            time.sleep(0.5)  # every trickler connected and sending
            health = timed_request(served.port, "GET", "/healthz")
            body = encode_form({**capture["body"], "reason_info": "sent while others trickle"}).encode()
            post = timed_request(served.port, "POST", "/deactivate", body, capture["headers"])

            assert health[0] == 200 and health[2] < 1.0, health
            assert post[0] == 202 and post[2] < 1.0, post
            assert time.monotonic() - opened_at < BODY_TIMEOUT_S  # answered while all still trickled

            # Each body trickler is answered 408 with the JSON error, then its connection closed.
            first = tricklers[0]
            first.settimeout(BODY_TIMEOUT_S + 10)
            answer = b""
            while chunk := first.recv(65536):
                answer += chunk
            head, _, payload = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), answer[:200]
            assert json.loads(payload)["code"] == "body_timeout"
            assert time.monotonic() - opened_at < BODY_TIMEOUT_S + 5
        finally:
            stop.set()
            trickling.join()
            for connection in tricklers:
                connection.close()
        # The server is still healthy afterwards, and only the real event was stored.
        assert timed_request(served.port, "GET", "/healthz")[0] == 200
        assert [e["body"]["reason_info"] for e in stored_envelopes(served.raw_root)] == [
            "sent while others trickle"
        ]


@pytest.mark.timeout(60)
def test_a_header_trickler_is_cut_off_too(tmp_path):
    with serve(tmp_path, workers=1, INGEST_BODY_TIMEOUT_S="2") as served:
        connection = open_trickler(served.port, partial_headers=True)
        connection.settimeout(15)
        started = time.monotonic()
        try:
            while connection.recv(65536):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 10  # closed by the header-read deadline
        connection.close()


def test_deadlines_time_out_overdue_awaits_only():
    deadlines = Deadlines()

    async def scenario() -> list[str]:
        outcomes = []
        never = asyncio.get_running_loop().create_future()
        try:
            await deadlines.within(0.3, never)
        except TimeoutError:
            outcomes.append("timed out")
        outcomes.append(await deadlines.within(5, asyncio.sleep(0.01, result="in time")))

        async def cancelled_by_someone_else() -> None:
            await deadlines.within(5, asyncio.get_running_loop().create_future())

        task = asyncio.create_task(cancelled_by_someone_else())
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            outcomes.append("cancelled")
        await asyncio.sleep(Deadlines.TICK_S * 2)
        outcomes.append("idle" if not deadlines._ticking and not deadlines._waiting else "busy")
        return outcomes

    assert asyncio.run(scenario()) == ["timed out", "in time", "cancelled", "idle"]
