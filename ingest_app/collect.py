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
from werkzeug.exceptions import RequestEntityTooLarge

from deactivation.envelope import ROUTES, make_envelope, utc_now
from deactivation.raw_store import RawStoreError
from ingest_app.bodies import decode_body, is_supported, media_type
from ingest_app.errors import ApiError
from ingest_app.state import IngestState, ingest_state

log = logging.getLogger(__name__)

collect = Blueprint("collect", __name__)

# Other methods are routed here too, so that a wrong method is answered and kept like any other
# bad request of these routes.
_METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"]


def _register_routes() -> None:
    for route in ROUTES:
        for rule in (f"/{route}", f"/<path:base>/{route}"):
            collect.add_url_rule(
                rule, f"{route}{'_under_base' if '<' in rule else ''}", receive,
                methods=_METHODS, defaults={"route": route},
            )


def receive(route: str, base: str | None = None) -> Response:
    state = ingest_state()
    raw = b""
    try:
        if request.method != "POST":
            raise ApiError(
                405, "method_not_allowed", f"/{route} accepts POST only",
                headers={"Allow": "POST"}, method=request.method,
            )
        media = media_type(request.headers.get("Content-Type", ""))
        if not is_supported(media):
            raise ApiError(
                415, "unsupported_content_type",
                "send application/x-www-form-urlencoded or application/json", content_type=media,
            )
        raw = _read_body(state)
        if not raw:
            raise ApiError(400, "empty_body", "the request body is empty")
        body = decode_body(media, raw)
    except ApiError as error:
        _keep_rejected(state, route, error, raw)
        return error.response()
    envelope = make_envelope(
        route=route,
        body=body,
        content_type=media,
        user_agent=request.headers.get("User-Agent"),
        remote_addr=request.remote_addr,
    )
    try:
        state.writer.write(route, envelope)
    except RawStoreError:
        state.counters.store_failed()
        return ApiError(503, "store_unavailable", "the event could not be stored; retry later").response()
    state.counters.accepted(route)
    return Response(orjson.dumps({"event_id": envelope["event_id"]}), status=202, mimetype="application/json")


def _read_body(state: IngestState) -> bytes:
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = state.settings.MAX_BODY_BYTES
        raise ApiError(
            413, "body_too_large", f"the body is larger than {limit} bytes", limit=limit
        ) from None


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
