"""One error shape for the API: `{code, message, details}` with an HTTP status.

The pages render the same errors as HTML; API paths (under /api/) always get JSON, and a 500 never
says more than that something failed (the exception is logged server-side, without request data).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure of a request: bad parameter, missing key, unknown project."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def bad_parameter(name: str, message: str) -> ApiError:
    """400 naming the offending parameter, as in `details.parameter`."""
    return ApiError(400, "bad_parameter", f"{name}: {message}", {"parameter": name})


def not_found(what: str = "no such resource") -> ApiError:
    # The same answer whether the project does not exist or the key does not cover it.
    return ApiError(404, "not_found", what)


def unauthorized(message: str = "a valid API key is required (Authorization: Bearer KEY)") -> ApiError:
    return ApiError(401, "unauthorized", message)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _respond(error: ApiError) -> Response:
    if _wants_json():
        response = jsonify({"code": error.code, "message": error.message, "details": error.details})
    else:
        response = Response(
            render_template("error.html", error=error), mimetype="text/html", status=error.status
        )
    response.status_code = error.status
    if error.status == 401 and _wants_json():
        response.headers["WWW-Authenticate"] = 'Bearer realm="dashboard"'
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return _respond(error)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> Response:
        return _respond(
            ApiError(400, "csrf_failed", "the form expired or was not sent by this site; reload it")
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            429: "rate_limited",
        }.get(status, "http_error")
        message = error.description if status != 429 else "too many requests for this key; retry later"
        response = _respond(ApiError(status, code, str(message)))
        for name in ("Retry-After", "Allow"):
            if error.get_response().headers.get(name):
                response.headers[name] = error.get_response().headers[name]
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("dashboard request failed: %s %s", request.method, request.url_rule)
        return _respond(ApiError(500, "internal_error", "something went wrong on our side"))
