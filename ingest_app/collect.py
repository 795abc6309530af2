"""The SDK's routes: POST /deactivate, /track and /tracking-skipped (also under any base path).

The request path stays thin: read the body, decode it, check the project hash, stamp the server's
event id and time, hand the envelope to the group-commit writer and answer only after it is
durable. Bad requests get a JSON error and are kept under `rejected/` (except oversized ones,
whose body was never read), so an SDK change is diagnosable; they are logged with their error
code and size only, never with their content.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import orjson
from flask import Blueprint, Response, request

from deactivation.envelope import ROUTES, make_envelope, utc_now
from deactivation.raw_store import RawStoreError
from ingest_app.bodies import decode_body, is_supported, media_type
from ingest_app.errors import ApiError, error_payload
from ingest_app.state import IngestState, ingest_state

log = logging.getLogger(__name__)

collect = Blueprint("collect", __name__)

# Other methods are routed here too, so that a wrong method is answered and kept like any other
# bad request of these routes.
_METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"]


def _register_routes() -> None:
    for route in ROUTES:
        options = {"view_func": receive, "methods": _METHODS, "defaults": {"route": route}}
        collect.add_url_rule(f"/{route}", route, **options)
        # The SDK posts to a configurable base URL, which may carry a path of its own.
        collect.add_url_rule(f"/<path:base>/{route}", f"{route}_under_base", **options)


def receive(route: str, base: str | None = None) -> Response:
    """Store one SDK request durably and answer 202 with its event id, or answer why not."""
    state = ingest_state()
    raw = b""
    try:
        if request.method != "POST":
            raise ApiError(
                405,
                "method_not_allowed",
                f"/{route} accepts POST only",
                headers={"Allow": "POST"},
                method=request.method,
            )
        raw = _read_body(state)
        media = media_type(request.headers.get("Content-Type", ""))
        if not is_supported(media):
            raise ApiError(
                415,
                "unsupported_content_type",
                "send application/x-www-form-urlencoded or application/json",
                content_type=media,
            )
        if not raw:
            raise ApiError(400, "empty_body", "the request body is empty")
        body = decode_body(media, raw)
    except ApiError as error:
        _keep_rejected(state, route, error, raw)
        return error.response()
    status, payload = store_event(
        state,
        route=route,
        media=media,
        body=body,
        user_agent=request.headers.get("User-Agent"),
        remote_addr=request.remote_addr,
    )
    return Response(payload, status=status, mimetype="application/json")


def store_event(
    state: IngestState,
    *,
    route: str,
    media: str,
    body: dict[str, Any],
    user_agent: str | None,
    remote_addr: str | None,
) -> tuple[int, bytes]:
    """Stamp the envelope and make it durable; the JSON answer: 202 with the event id, or 503.

    Shared by this view and the fast path (ingest_app.fast_path), so both answer alike.
    """
    envelope = make_envelope(
        route=route, body=body, content_type=media, user_agent=user_agent, remote_addr=remote_addr
    )
    try:
        state.writer.write(route, envelope)
    except RawStoreError:
        state.counters.store_failed()
        return 503, error_payload("store_unavailable", "the event could not be stored; retry later")
    state.counters.accepted(route)
    return 202, orjson.dumps({"event_id": envelope["event_id"]})


def _read_body(state: IngestState) -> bytes:
    """The whole body, refusing more than MAX_BODY_BYTES before reading past the limit.

    Read from the WSGI input directly: for a chunked body (no Content-Length), Werkzeug's own
    limit cuts the body silently at the limit instead of refusing it.
    """
    limit = state.settings.MAX_BODY_BYTES
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    stream = request.environ["wsgi.input"]
    if length is not None:
        raw = read_exactly(stream, length)
        if len(raw) < length:
            raise ApiError(
                400, "incomplete_body", "the body ended before its Content-Length", received=len(raw)
            )
        return raw
    if not request.environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: per WSGI there is no body to read
    chunks, size = [], 0
    while chunk := stream.read(min(65536, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
    return b"".join(chunks)


def read_exactly(stream: Any, length: int) -> bytes:
    chunks, remaining = [], length
    while remaining and (chunk := stream.read(remaining)):
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is larger than {limit} bytes", limit=limit)


def _keep_rejected(state: IngestState, route: str, error: ApiError, raw: bytes) -> None:
    state.counters.rejected(error.code)
    log.warning("rejected a /%s request: %s (%d bytes)", route, error.code, len(raw))
    if error.status == 413:
        return  # never read, and not worth keeping at any size
    try:
        state.store.write_rejected(_rejected_record(route, error, raw), at=utc_now())
    except RawStoreError as exc:
        log.error("could not keep a rejected request: %s", type(exc.__cause__ or exc).__name__)


def _rejected_record(route: str, error: ApiError, raw: bytes) -> dict[str, Any]:
    record: dict[str, Any] = {
        "route": route,
        "method": request.method,
        "status": error.status,
        "code": error.code,
        "message": error.message,
        "details": error.details,
        "content_type": request.headers.get("Content-Type"),
        "user_agent": request.headers.get("User-Agent"),
        "remote_addr": request.remote_addr,
        "body_bytes": len(raw),
    }
    try:
        record["body"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(raw).decode("ascii")
    return record


_register_routes()
