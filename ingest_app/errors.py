"""The JSON error envelope `{code, message, details}` for every error the collector answers."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client as JSON, with a stable machine-readable `code`."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def response(self) -> Response:
        response = error_response(self.status, self.code, self.message, self.details)
        response.headers.update(self.headers)
        return response


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    return Response(error_payload(code, message, details), status=status, mimetype="application/json")


def error_payload(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"code": code, "message": message, "details": details or {}})


def _http_code(exc: HTTPException) -> str:
    """'Method Not Allowed' -> 'method_not_allowed'."""
    return (exc.name or "error").lower().replace(" ", "_")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        response = error_response(exc.code or 500, _http_code(exc), exc.description or exc.name)
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Opaque to the client; the traceback stays in the server log (no request data in it).
        log.exception("unhandled error in the collector")
        return error_response(500, "internal_error", "internal error")
