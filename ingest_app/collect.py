"""The SDK's routes: POST /deactivate, /track and /tracking-skipped (also under any base path).

The request path stays thin: read the body, decode it, check the project hash, stamp the server's
event id and time, serialise the envelope (here, in its own request, so nothing it contains can
fail another request's write), hand it to the group-commit writer and answer only after it is
durable. Bad requests get a JSON error and are kept under `rejected/` with their personal data
redacted (except oversized and rate-limited ones, which are not worth keeping at any rate), so
an SDK change is diagnosable; they are logged with their error code and size only, never with
their content.

`accept_body` and `answer_write` are shared with the async front (`ingest_app.fast_path`),
which answers the accepted case itself and hands every other request to this view.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, request

from deactivation.envelope import ROUTES, make_envelope, utc_now
from deactivation.raw_store import RawStoreError, SerialisedEnvelope, serialise_envelope
from deactivation.redaction import (
    mask_free_text,
    redacted_text,
    redacted_value,
)
from ingest_app.bodies import FORM, decode_body, is_supported, media_type, project_hash
from ingest_app.errors import ApiError, error_payload
from ingest_app.php_form import percent_decode
from ingest_app.state import IngestState, ingest_state

log = logging.getLogger(__name__)

collect = Blueprint("collect", __name__)

# Other methods are routed here too, so that a wrong method is answered and kept like any other
# bad request of these routes.
_METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"]

#: Set in the request (ASGI scope, seen as environ["asgi.scope"]) by the async front once it has
#: taken this request's token from the client's rate limit, so the view does not take a second.
CLIENT_RATE_CHECKED = "ingest.client_rate_checked"

#: How much of a rejected body is kept (an SDK body is 2-10 KiB): bounds both the disk a flood of
#: bad requests fills and the time redaction takes.
KEPT_BODY_CHARS = 16 * 1024
#: Runs of characters no e-mail address, IP address or phone number is that long: kept as their
#: length only, so a kept copy shows the shape of what was sent without its filler.
_LONG_RUN = re.compile(r"[\w.+-]{65,}|[\d ()-]{65,}")

#: Rejections not kept under rejected/: a body never read, or a flood that would be copied to disk.
_NOT_KEPT = frozenset({413, 429})


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
    body: dict[str, Any] | None = None
    try:
        if request.method != "POST":
            raise ApiError(
                405,
                "method_not_allowed",
                f"/{route} accepts POST only",
                headers={"Allow": "POST"},
                method=request.method,
            )
        if not request.environ.get("asgi.scope", {}).get(CLIENT_RATE_CHECKED):
            state.rate_limits.check_client(request.remote_addr)
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
        body = decode_body(media, raw, state.settings.INGEST_MAX_NESTING)
        envelope = accept_body(
            state,
            route=route,
            media=media,
            body=body,
            user_agent=request.headers.get("User-Agent"),
            remote_addr=request.remote_addr,
        )
    except ApiError as error:
        _keep_rejected(state, route, error, raw, body)
        return error.response()
    try:
        state.writer.write(route, envelope)
    except RawStoreError:
        status, payload = answer_write(state, route, envelope, failed=True)
    else:
        status, payload = answer_write(state, route, envelope, failed=False)
    return Response(payload, status=status, mimetype="application/json")


def accept_body(
    state: IngestState,
    *,
    route: str,
    media: str,
    body: dict[str, Any],
    user_agent: str | None,
    remote_addr: str | None,
) -> SerialisedEnvelope:
    """The stored form of a decoded body's envelope, or the ApiError why it is not accepted.

    Checks the project hash, stamps and serialises the envelope, then takes the request's token
    from its project's rate limit (last, so a request refused for any other reason takes none).
    """
    project = project_hash(body)
    envelope = make_envelope(
        route=route, body=body, content_type=media, user_agent=user_agent, remote_addr=remote_addr
    )
    try:
        serialised = serialise_envelope(envelope)
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise ApiError(
            400, "unstorable_body", "the body cannot be stored as JSON", error=type(exc).__name__
        ) from None
    state.rate_limits.check_project(project)
    return serialised


def answer_write(
    state: IngestState, route: str, envelope: SerialisedEnvelope, *, failed: bool
) -> tuple[int, bytes]:
    """The answer once the writer is done: 202 with the event id, or 503 if it failed."""
    if failed:
        state.counters.store_failed()
        return 503, error_payload("store_unavailable", "the event could not be stored; retry later")
    state.counters.accepted(route)
    return 202, b'{"event_id":"' + envelope.event_id.encode() + b'"}'


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


def _keep_rejected(
    state: IngestState, route: str, error: ApiError, raw: bytes, body: dict[str, Any] | None
) -> None:
    state.counters.rejected(error.code)
    if error.status in _NOT_KEPT:
        log.debug("refused a /%s request: %s (%d bytes)", route, error.code, len(raw))
        return
    log.warning("rejected a /%s request: %s (%d bytes)", route, error.code, len(raw))
    try:
        state.store.write_rejected(_rejected_record(route, error, raw, body), at=utc_now())
    except RawStoreError as exc:
        log.error("could not keep a rejected request: %s", type(exc.__cause__ or exc).__name__)


def _rejected_record(route: str, error: ApiError, raw: bytes, body: dict[str, Any] | None) -> dict[str, Any]:
    """What is kept of a rejected request: why, and its content with personal data redacted.

    A body that decoded is kept as an object (personal fields replaced at every level, e-mail and
    IP addresses masked in every key and value); one that did not as text (`redacted_text`;
    form bodies percent-decoded first so an encoded address is masked too). The client's address
    is not kept.
    """
    record: dict[str, Any] = {
        "route": route,
        "method": request.method,
        "status": error.status,
        "code": error.code,
        "message": error.message,
        "details": error.details,
        "content_type": request.headers.get("Content-Type"),
        "user_agent": mask_free_text(_without_long_runs(request.headers.get("User-Agent", "")[:512])) or None,
        "body_bytes": len(raw),
    }
    if len(raw) > KEPT_BODY_CHARS:
        record["body_truncated"] = True
    # A decoded body is kept as an object when it is small enough to keep whole; an unstorable
    # one would not serialise here either.
    if body is not None and len(raw) <= KEPT_BODY_CHARS and error.code != "unstorable_body":
        record["body"] = redacted_value(body)
    elif raw:
        text = raw[:KEPT_BODY_CHARS].decode("utf-8", errors="replace")
        if media_type(request.headers.get("Content-Type", "")) == FORM:
            decoded = percent_decode(raw[:KEPT_BODY_CHARS].replace(b"+", b" "))
            text = decoded.decode("utf-8", errors="replace")
        record["body_text"] = redacted_text(_without_long_runs(text))
    return record


def _without_long_runs(text: str) -> str:
    return _LONG_RUN.sub(lambda run: f"<{len(run.group())} characters>", text)


_register_routes()
