"""The SDK routes' accepted requests as plain WSGI, in front of the Flask app.

Why: Flask's request machinery (request context, URL adapter, request and response objects)
costs ~40 µs per request on an idle thread, but under load on the 2-core machine it costs
several times that: the request threads of a worker share one GIL, and every microsecond one
of them holds it is paid again in the others' waiting and switching. Measured side by side under
wrk with 64 connections: ~4.2k req/s at ~370 µs of server CPU per request through the Flask
view, ~8k req/s at ~190 µs through this path.

What runs here is only the common case, and only what the Flask view does for it: a POST to one
of the SDK routes (also under a base path) with a Content-Length within MAX_BODY_BYTES, a form or
JSON content type, and a body that decodes with a valid project hash. It is decoded by the same
`decode_body`, stored by the same `store_event` and answered with the same JSON. Every other
request (other paths and methods, chunked bodies, and every error answer, with its copy kept
under `rejected/`) goes to the Flask app untouched, with the body read here put back, so the
blueprint in `ingest_app.collect` stays the one definition of the routes' behaviour.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from deactivation.envelope import ROUTES
from ingest_app.bodies import decode_body, is_supported, media_type
from ingest_app.collect import read_exactly, store_event
from ingest_app.state import IngestState

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The paths the blueprint routes to its view: a route's name as the last segment, under any
#: base path (tests/ingest_app/test_fast_path.py checks this against Flask's URL map).
SDK_PATH = re.compile(r"(?:/.*)?/(" + "|".join(re.escape(route) for route in ROUTES) + ")")

_STATUS_LINES = {status: f"{status} {HTTPStatus(status).phrase}" for status in (202, 503)}


class SdkFastPath:
    """WSGI middleware: answers accepted SDK requests itself and passes everything else on."""

    def __init__(self, flask_wsgi_app: WsgiApp, state: IngestState) -> None:
        self.flask_wsgi_app = flask_wsgi_app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = SDK_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.flask_wsgi_app(environ, start_response)
        length = _content_length(environ)
        media = media_type(environ.get("CONTENT_TYPE", ""))
        if not (0 < length <= self.state.settings.MAX_BODY_BYTES and is_supported(media)):
            return self.flask_wsgi_app(environ, start_response)
        raw = read_exactly(environ["wsgi.input"], length)
        try:
            if len(raw) < length:
                raise ValueError("incomplete body")
            body = decode_body(media, raw)
        except Exception:  # the view answers it (and keeps it under rejected/) from the same bytes
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.flask_wsgi_app(environ, start_response)
        status, payload = store_event(
            self.state,
            route=match.group(1),
            media=media,
            body=body,
            user_agent=environ.get("HTTP_USER_AGENT"),
            remote_addr=environ.get("REMOTE_ADDR"),
        )
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        start_response(_STATUS_LINES[status], headers)
        return [payload]


def _content_length(environ: dict[str, Any]) -> int:
    """The declared body length; 0 when absent or malformed (the view then says what is wrong)."""
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
