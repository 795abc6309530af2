"""Turn a request body into the SDK's payload dict, or an ApiError saying why not."""

from __future__ import annotations

from typing import Any

import orjson

from deactivation.projects import normalise_hash
from ingest_app.errors import ApiError
from ingest_app.php_form import FormDecodeError, decode_php_form

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def media_type(content_type_header: str) -> str:
    """'Application/JSON; charset=UTF-8' -> 'application/json'."""
    return content_type_header.partition(";")[0].strip().lower()


def is_supported(media: str) -> bool:
    return media in (FORM, JSON) or media.endswith("+json")


def decode_body(media: str, raw: bytes) -> dict[str, Any]:
    """Decode a non-empty body of a supported media type and check its project hash."""
    body = _decode_form(raw) if media == FORM else _decode_json(raw)
    _check_hash(body)
    return body


def _decode_form(raw: bytes) -> dict[str, Any]:
    try:
        return decode_php_form(raw)
    except FormDecodeError as exc:
        message = str(exc) if exc.code == "invalid_utf8" else f"unparseable form body: {exc}"
        raise ApiError(400, exc.code, message, **exc.details) from None


def _decode_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            raise ApiError(
                400, "invalid_utf8", "the body is not valid UTF-8", position=utf8_error.start
            ) from None
        raise ApiError(400, "invalid_json", "unparseable JSON body", position=exc.pos) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the JSON body must be an object", type=type(body).__name__)
    return body


def _check_hash(body: dict[str, Any]) -> None:
    value = body.get("hash")
    if value is None or value == "":
        raise ApiError(400, "missing_hash", "the project hash is missing")
    if not isinstance(value, str):
        raise ApiError(400, "invalid_hash", "the project hash must be a UUID string")
    try:
        normalise_hash(value)
    except ValueError:
        raise ApiError(400, "invalid_hash", "the project hash is not a UUID") from None
