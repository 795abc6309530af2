"""The async front `deact serve` runs (ASGI, on Granian): bodies read against a deadline, the
accepted SDK requests answered here, everything else handed to the Flask app.

Why a front: under a blocking (WSGI) server every request holds a thread while its body
arrives, so a few dozen clients trickling bytes hold every thread, and Granian has no body-read
deadline for WSGI. Here a request waiting for its body (or for its group commit) is a coroutine,
not a thread: any number of slow clients cost memory only, each is answered 408 `body_timeout`
(and its connection closed) once INGEST_BODY_TIMEOUT_S has passed without a whole body, and a
body is read no further than MAX_BODY_BYTES.

What is answered here is only the common case, and only what the Flask view does for it: a POST
to one of the SDK routes (also under a base path) with a body within MAX_BODY_BYTES, a form or
JSON content type, that decodes with a valid project hash. It is decoded by the same
`decode_body`, accepted by the same `accept_body` (hash, envelope, serialisation, rate limits)
and answered by the same `answer_write`; the envelope is made durable by the same group-commit
writer, awaited through an asyncio future instead of a blocked thread. Every other request
(other paths and methods, and every error answer, with its copy kept under `rejected/`) goes to
the Flask app with the body already read here, through a2wsgi's thread pool, so the blueprint in
`ingest_app.collect` stays the one definition of the routes' behaviour
(tests/ingest_app/test_fast_path.py checks the two give the same answers and stored files).
Rate-limit refusals (429) are answered here too: they cost no thread, which is their point.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask
from werkzeug.http import parse_list_header

from deactivation.envelope import ROUTES
from deactivation.raw_store import RawStoreError
from deactivation.settings import Settings
from ingest_app import create_app
from ingest_app.bodies import decode_body, is_supported, media_type
from ingest_app.collect import CLIENT_RATE_CHECKED, accept_body, answer_write
from ingest_app.errors import ApiError, error_payload
from ingest_app.state import EXTENSION, IngestState
from ingest_app.writer import ACK_TIMEOUT_S

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The paths the blueprint routes to its view: a route's name as the last segment, under any
#: base path (tests/ingest_app/test_fast_path.py checks this against Flask's URL map).
SDK_PATH = re.compile(r"(?:/.*)?/(" + "|".join(re.escape(route) for route in ROUTES) + ")")

_JSON_HEADER = (b"content-type", b"application/json")
_BODY_TIMEOUT_PAYLOAD = error_payload("body_timeout", "the request body did not arrive in time")


def create_asgi_app(settings: Settings | None = None) -> SdkFront:
    """The collector as an ASGI app: the front, with the Flask app behind it (Granian's factory)."""
    return SdkFront(create_app(settings))


class SdkFront:
    """ASGI app: reads every body with a deadline and a size limit, answers accepted SDK requests
    itself and hands everything else to the Flask app."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.state: IngestState = app.extensions[EXTENSION]
        settings = self.state.settings
        self.max_body = settings.MAX_BODY_BYTES
        self.body_timeout = settings.INGEST_BODY_TIMEOUT_S
        self.max_nesting = settings.INGEST_MAX_NESTING
        self.proxy_hops = settings.INGEST_PROXY_HOPS
        self.flask = WSGIMiddleware(app.wsgi_app, workers=settings.INGEST_THREADS)
        self.deadlines = Deadlines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # a websocket: a2wsgi closes it
            await self.flask(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_length = content_type = user_agent = forwarded_for = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
        declared = _declared_length(content_length)
        if declared is not None and declared > self.max_body:
            # Refused unread (by the view: 413): never spend time on a body that will not be kept.
            await self._to_flask(scope, b"", send, keep_headers=True)
            return
        match = SDK_PATH.fullmatch(scope["path"])
        sdk_post = match is not None and scope["method"] == "POST"
        remote_addr = self._remote_addr(scope, forwarded_for)
        if sdk_post:
            try:
                self.state.rate_limits.check_client(remote_addr)
            except ApiError as error:
                await self._refuse(error, send)
                return
            scope[CLIENT_RATE_CHECKED] = True
        try:
            raw = await self.deadlines.within(self.body_timeout, _read_body(receive, self.max_body))
        except TimeoutError:
            await self._body_timeout(send)
            return
        if raw is None:
            return  # the client went away: nobody to answer
        if len(raw) > self.max_body:  # a chunked body past the limit: the view answers 413
            await self._to_flask(scope, raw[: self.max_body + 1], send)
            return
        media = media_type(content_type.decode("latin-1")) if content_type else ""
        if not (sdk_post and raw and is_supported(media) and (declared is None or declared == len(raw))):
            await self._to_flask(scope, raw, send)
            return
        route = match.group(1)  # type: ignore[union-attr]
        try:
            body = decode_body(media, raw, self.max_nesting)
            envelope = accept_body(
                self.state,
                route=route,
                media=media,
                body=body,
                user_agent=user_agent.decode("latin-1") if user_agent is not None else None,
                remote_addr=remote_addr,
            )
        except ApiError as error:
            if error.status == 429:
                await self._refuse(error, send)
            else:  # the view answers it (and keeps it under rejected/) from the same bytes
                await self._to_flask(scope, raw, send)
            return
        except Exception:  # a decoder bug: the view answers it like any other request
            await self._to_flask(scope, raw, send)
            return
        try:
            await self.deadlines.within(ACK_TIMEOUT_S, self.state.writer.write_async(route, envelope))
        except (RawStoreError, TimeoutError):
            status, payload = answer_write(self.state, route, envelope, failed=True)
        else:
            status, payload = answer_write(self.state, route, envelope, failed=False)
        await _respond(send, status, payload)

    def _remote_addr(self, scope: Scope, forwarded_for: bytes | None) -> str | None:
        """The client's address as the Flask app sees it (werkzeug's ProxyFix with x_for=hops)."""
        client = scope.get("client")
        address = client[0] if client else None
        if self.proxy_hops and forwarded_for:
            values = parse_list_header(forwarded_for.decode("latin-1"))
            if len(values) >= self.proxy_hops:
                return values[-self.proxy_hops]
        return address

    async def _refuse(self, error: ApiError, send: Send) -> None:
        """A rate-limit refusal: counted, answered, not kept (as the view does)."""
        self.state.counters.rejected(error.code)
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()
        ]
        await _respond(send, error.status, error_payload(error.code, error.message, error.details), extra)

    async def _body_timeout(self, send: Send) -> None:
        self.state.counters.rejected("body_timeout")
        log.warning("closed a request: body_timeout")
        await _respond(send, 408, _BODY_TIMEOUT_PAYLOAD, [(b"connection", b"close")])

    async def _to_flask(self, scope: Scope, body: bytes, send: Send, *, keep_headers: bool = False) -> None:
        """Run the Flask app on this request, with `body` (already read) as its whole body."""
        if not keep_headers:
            headers = [h for h in scope["headers"] if h[0] not in (b"content-length", b"transfer-encoding")]
            headers.append((b"content-length", str(len(body)).encode()))
            scope = {**scope, "headers": headers}
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.flask(scope, replay, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Commit what is queued before the worker exits.
                await asyncio.get_running_loop().run_in_executor(None, self.state.writer.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


class Deadlines:
    """Deadlines for awaits, enforced by one timer per event loop instead of one per request.

    `asyncio.timeout` schedules and cancels a timer handle per use, ~10 µs on the loaded 2-core
    machine, and every request needs two (its body, its commit). Here a request only notes its
    deadline in a dict; a tick every TICK_S cancels the tasks past theirs, so a deadline is kept
    to within TICK_S. The tick runs only while something waits.
    """

    TICK_S = 0.25

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Task, float] = {}
        self._expired: set[asyncio.Task] = set()
        self._ticking = False

    async def within(self, seconds: float, awaitable: Awaitable[Any]) -> Any:
        """Await `awaitable`; TimeoutError once `seconds` have passed (to within TICK_S)."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._waiting[task] = loop.time() + seconds
        if not self._ticking:
            self._ticking = True
            loop.call_later(self.TICK_S, self._tick, loop)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # cancelled by someone else (the server shutting down)
            self._expired.discard(task)
            task.uncancel()
            raise TimeoutError from None
        finally:
            self._waiting.pop(task, None)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        overdue = [task for task, deadline in self._waiting.items() if deadline <= now]
        for task in overdue:
            del self._waiting[task]
            self._expired.add(task)
            task.cancel()
        if self._waiting:
            loop.call_later(self.TICK_S, self._tick, loop)
        else:
            self._ticking = False


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or its first bytes past `limit` (then longer than `limit`), or None if the
    client disconnected first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        if not message.get("more_body"):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)


def _declared_length(header: bytes | None) -> int | None:
    """The Content-Length, or None when absent or malformed (the server refuses malformed ones)."""
    if header is None:
        return None
    try:
        return int(header)
    except ValueError:
        return None


async def _respond(
    send: Send, status: int, payload: bytes, extra_headers: list[tuple[bytes, bytes]] = ()
) -> None:  # type: ignore[assignment]
    headers = [_JSON_HEADER, (b"content-length", str(len(payload)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
