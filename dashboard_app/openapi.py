"""The API's OpenAPI 3.1 document: the contract the tests fuzz the API against."""

from __future__ import annotations

from typing import Any

from dashboard_app.filters import DEFAULT_LIMIT, MAX_LIMIT, MAX_TEXT_FILTER
from dashboard_app.state import ITEM_FIELDS, PERSONAL_FIELDS

_DAY = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
_NULLABLE_TEXT = {"type": ["string", "null"]}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_PROJECT = {
    "name": "project_hash",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The project's UUID (as the SDK sends it).",
}
_PERIOD = [
    _query("from", _DAY, "First UTC day, inclusive (default: 29 days before `to`)."),
    _query("to", _DAY, "Last UTC day, inclusive (default: today)."),
]
_FILTERS = [
    _query("from", _DAY, "First UTC day the deactivation was received on, inclusive."),
    _query("to", _DAY, "Last UTC day, inclusive; not before `from`."),
    _query("reason", {"type": "string", "maxLength": 64}, "A reason id of this project."),
    _query("version", {"type": "string", "maxLength": 50}, "The plugin's or theme's version."),
    _query("wp", {"type": "string", "pattern": r"^\d{1,3}\.\d{1,3}$"}, "WordPress major.minor, e.g. 6.5."),
    _query("php", {"type": "string", "pattern": r"^\d{1,3}\.\d{1,3}$"}, "PHP major.minor, e.g. 8.2."),
    _query("locale", {"type": "string", "maxLength": 20}, "WordPress locale, e.g. de_DE."),
    _query("q", {"type": "string", "maxLength": MAX_TEXT_FILTER}, "Site URL or site name contains."),
    _query("has_text", {"type": "boolean"}, "Whether the admin typed a free-text answer."),
]
_ERROR_RESPONSE = {"$ref": "#/components/responses/Error"}
_ERRORS = {
    "400": _ERROR_RESPONSE,
    "401": _ERROR_RESPONSE,
    "404": _ERROR_RESPONSE,
    "429": {
        "description": "Too many requests for this key.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        **_ERRORS,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_document() -> dict[str, Any]:
    item_properties = {name: _NULLABLE_TEXT for name in (*ITEM_FIELDS, *PERSONAL_FIELDS)}
    item_properties["received_at"] = {"type": "string", "format": "date-time"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Deactivation analytics dashboard API",
            "version": "1.0.0",
            "description": (
                "Read-only API over one project's deactivations. Authenticate with "
                "`Authorization: Bearer KEY` (create a key with `deact projects key create`). A `read` key "
                "never sees `admin_email`, `first_name` or `last_name`; a `personal` key does. A project "
                "the key does not cover answers 404. Errors are `{code, message, details}`; a bad "
                "parameter is named in `details.parameter`."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/projects": {
                "get": {
                    "operationId": "listProjects",
                    "summary": "The projects the key covers.",
                    "responses": _ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("Project")}},
                        }
                    ),
                }
            },
            "/projects/{project_hash}/deactivations": {
                "get": {
                    "operationId": "listDeactivations",
                    "summary": "The latest deactivation per site, newest first (keyset pagination).",
                    "parameters": [
                        _PROJECT,
                        *_FILTERS,
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                            "Items per page.",
                        ),
                        _query(
                            "cursor",
                            {"type": "string", "maxLength": 1000},
                            "`next_cursor` of the page before.",
                        ),
                    ],
                    "responses": _ok(_ref("DeactivationPage")),
                }
            },
            "/projects/{project_hash}/deactivations.csv": {
                "get": {
                    "operationId": "exportDeactivations",
                    "summary": "Every deactivation in history matching the filters, as CSV (streamed).",
                    "parameters": [_PROJECT, *_FILTERS],
                    "responses": {
                        "200": {
                            "description": "CSV with a header row; the list's columns.",
                            "content": {"text/csv": {"schema": {"type": "string"}}},
                        },
                        **_ERRORS,
                    },
                }
            },
            "/projects/{project_hash}/sites/{site}": {
                "get": {
                    "operationId": "getSite",
                    "summary": "One site's latest state and its whole deactivation history, newest first.",
                    "parameters": [
                        _PROJECT,
                        {
                            "name": "site",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 2000},
                            "description": "The site URL, URL-encoded.",
                        },
                    ],
                    "responses": _ok(_ref("Site")),
                }
            },
            "/projects/{project_hash}/summary": {
                "get": {
                    "operationId": "getSummary",
                    "summary": "Totals, per day, top reasons and the change against the previous period.",
                    "parameters": [_PROJECT, *_PERIOD],
                    "responses": _ok(_ref("Summary")),
                }
            },
            "/projects/{project_hash}/charts": {
                "get": {
                    "operationId": "listCharts",
                    "summary": "Every registered (and in-review) chart for the period, drawn.",
                    "parameters": [_PROJECT, *_PERIOD],
                    "responses": _ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("Chart")}},
                        }
                    ),
                }
            },
            "/projects/{project_hash}/charts/{chart_id}": {
                "get": {
                    "operationId": "getChart",
                    "summary": "One chart for the period: rows and plotly figure JSON.",
                    "parameters": [
                        _PROJECT,
                        {
                            "name": "chart_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 63},
                        },
                        *_PERIOD,
                    ],
                    "responses": _ok(_ref("Chart")),
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {
                    "description": "An error.",
                    "content": {"application/json": {"schema": _ref("Error")}},
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                },
                "Project": {
                    "type": "object",
                    "required": ["hash", "name", "kind"],
                    "properties": {
                        "hash": {"type": "string"},
                        "name": {"type": "string"},
                        "kind": {"type": "string", "enum": ["plugin", "theme"]},
                    },
                },
                "Deactivation": {
                    "type": "object",
                    "required": list(ITEM_FIELDS),
                    "properties": item_properties,
                },
                "DeactivationPage": {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": _ref("Deactivation")},
                        "next_cursor": _NULLABLE_TEXT,
                    },
                },
                "Site": {
                    "type": "object",
                    "required": ["site_url", "latest", "history"],
                    "properties": {
                        "site_url": {"type": "string"},
                        "latest": {"type": "object"},
                        "history": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Summary": {
                    "type": "object",
                    "required": ["from", "to", "total", "previous", "change", "per_day", "top_reasons"],
                    "properties": {
                        "from": {"type": "string", "format": "date"},
                        "to": {"type": "string", "format": "date"},
                        "total": {"type": "integer"},
                        "previous": {"type": "object"},
                        "change": {"type": ["number", "null"]},
                        "per_day": {"type": "array", "items": {"type": "object"}},
                        "top_reasons": {"type": "array", "items": {"type": "object"}},
                        "with_text": {"type": "integer"},
                        "with_text_share": {"type": ["number", "null"]},
                    },
                },
                "Chart": {
                    "type": "object",
                    "required": ["id", "title", "description", "in_review", "rows", "figure"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "in_review": {"type": "boolean"},
                        "rows": {"type": "array", "items": {"type": "object"}},
                        "figure": {"type": ["object", "null"]},
                        "note": _NULLABLE_TEXT,
                    },
                },
            },
        },
    }
