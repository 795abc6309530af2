"""Turn a request body into the SDK's payload dict, or an ApiError saying why not.

Every way a body can fail to decode is a 4xx with its own code: nothing a client sends may
escape as an exception (and a 500), which would also skip keeping the request under `rejected/`.
"""

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


def decode_body(media: str, raw: bytes, max_depth: int) -> dict[str, Any]:
    """Decode a non-empty body of a supported media type, nested at most `max_depth` deep."""
    if media == FORM:
        return _decode_form(raw, max_depth)
    return _decode_json(raw, max_depth)


def project_hash(body: dict[str, Any]) -> str:
    """The body's project hash in its canonical form, or the 400 saying what is wrong with it."""
    value = body.get("hash")
    if value is None or value == "":
        raise ApiError(400, "missing_hash", "the project hash is missing")
    if not isinstance(value, str):
        raise ApiError(400, "invalid_hash", "the project hash must be a UUID string")
    try:
        return normalise_hash(value)
    except ValueError:
        raise ApiError(400, "invalid_hash", "the project hash is not a UUID") from None


def _decode_form(raw: bytes, max_depth: int) -> dict[str, Any]:
    try:
        return decode_php_form(raw, max_depth)
    except FormDecodeError as exc:
        if exc.code == "form_too_deep":
            raise ApiError(400, exc.code, str(exc), **exc.details) from None
        message = str(exc) if exc.code == "invalid_utf8" else f"unparseable form body: {exc}"
        raise ApiError(400, exc.code, message, **exc.details) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        # A decoder bug must not become a 500: the body is still the client's to fix.
        raise ApiError(400, "invalid_form", "unparseable form body", error=type(exc).__name__) from None


def _decode_json(raw: bytes, max_depth: int) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            raise ApiError(
                400, "invalid_utf8", "the body is not valid UTF-8", position=utf8_error.start
            ) from None
        if "depth" in exc.msg:  # orjson refuses more than 1,024 levels ("depth limit exceeded")
            raise _too_deep(max_depth) from None
        raise ApiError(400, "invalid_json", "unparseable JSON body", position=exc.pos) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the JSON body must be an object", type=type(body).__name__)
    # Depth is walked only when the text could be that deep: an SDK body opens ~10 brackets.
    if raw.count(b"[") + raw.count(b"{") > max_depth and _nests_deeper_than(body, max_depth):
        raise _too_deep(max_depth)
    return body


def _too_deep(max_depth: int) -> ApiError:
    return ApiError(400, "json_too_deep", f"the JSON body nests deeper than {max_depth}", limit=max_depth)


def _nests_deeper_than(body: dict[str, Any], max_depth: int) -> bool:
    """Whether objects/arrays nest more than `max_depth` levels (the body itself is level 1).

    orjson parses up to 1,024 levels but serialises only 254, so without this cap a body could
    be accepted here and then fail when its envelope is written.
    """
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                if depth >= max_depth:
                    return True
                stack.append((child, depth + 1))
    return False
