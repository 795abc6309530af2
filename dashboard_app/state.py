"""The deactivations list: the latest deactivation per site, from MongoDB, newest first.

Keyset pagination: documents are ordered by (received_at, _id) descending, on an index that starts
with the project (and the reason, when filtered by one); a page continues strictly after the last
document of the previous one, so no page skips over documents and a site inserted meanwhile can
neither appear twice nor push another site off a page. The cursor is that position, signed (so a
forged or damaged cursor is a clean 400) and bound to the filters it was made for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeSerializer
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from dashboard_app.errors import bad_parameter
from dashboard_app.filters import ListFilters, day_start
from deactivation.mongo import DEACTIVATIONS, SITES
from deactivation.secret_keys import derived_key
from deactivation.settings import Settings

#: Columns of a list item, in order (the CSV has the same, personal ones only for personal keys).
ITEM_FIELDS = (
    "event_id",
    "site_url",
    "site_name",
    "reason_id",
    "reason_label",
    "reason_info",
    "project_version",
    "wp_version",
    "php_version",
    "locale",
    "received_at",
)
PERSONAL_FIELDS = ("admin_email", "first_name", "last_name")
#: received_at in items and CSV rows: ISO 8601, UTC, always with microseconds.
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: A `q` matching more site names than this is refused: the name match becomes an `$in` list.
MAX_NAME_MATCHES = 5000
INDEX_BY_TIME = "dashboard_project_time_id"
INDEX_BY_REASON = "dashboard_project_reason_time_id"
_DEACTIVATION_PROJECTION = {name: 1 for name in ITEM_FIELDS if name != "site_name"}
_SITE_PROJECTION = {"site_name": 1, **dict.fromkeys(PERSONAL_FIELDS, 1)}


def ensure_dashboard_indexes(db: Database) -> None:
    """The indexes the list pages walk (idempotent; the pipeline creates the collections' others)."""
    db[DEACTIVATIONS].create_index(
        [("project_hash", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)], name=INDEX_BY_TIME
    )
    db[DEACTIVATIONS].create_index(
        [
            ("project_hash", ASCENDING),
            ("reason_id", ASCENDING),
            ("received_at", DESCENDING),
            ("_id", DESCENDING),
        ],
        name=INDEX_BY_REASON,
    )


@dataclass(frozen=True)
class Position:
    received_at: datetime
    document_id: str
    direction: Literal["after", "before"]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    previous_cursor: str | None


class Cursors:
    """Opaque, signed page positions."""

    def __init__(self, settings: Settings) -> None:
        self._serializer = URLSafeSerializer(derived_key(settings, "dashboard-cursor"), salt="deactivations")

    def encode(self, position: Position, filters: ListFilters) -> str:
        return self._serializer.dumps(
            [position.received_at.isoformat(), position.document_id, position.direction, filters.digest()]
        )

    def decode(self, text: str | None, filters: ListFilters) -> Position | None:
        if not text:
            return None
        if len(text) > 1000:
            raise bad_parameter("cursor", "is not a cursor this API issued")
        try:
            received_at, document_id, direction, digest = self._serializer.loads(text)
            position = Position(datetime.fromisoformat(received_at), str(document_id), direction)
        except (BadSignature, ValueError, TypeError):
            raise bad_parameter("cursor", "is not a cursor this API issued") from None
        if digest != filters.digest() or direction not in ("after", "before"):
            raise bad_parameter("cursor", "belongs to other filters; start again without a cursor")
        return position


def list_query(db: Database, project_hash: str, filters: ListFilters) -> dict[str, Any]:
    """The MongoDB filter for a project's latest deactivations under `filters` (no position)."""
    clauses: list[dict[str, Any]] = [{"project_hash": project_hash}]
    if filters.reason:
        clauses.append({"reason_id": filters.reason})
    received: dict[str, datetime] = {}
    if filters.start_day:
        received["$gte"] = day_start(filters.start_day)
    if filters.end_day:
        received["$lt"] = day_start(filters.end_day) + timedelta(days=1)
    if received:
        clauses.append({"received_at": received})
    for name, column in (("version", "project_version"), ("wp", "wp_version_mm"), ("php", "php_version_mm")):
        if getattr(filters, name):
            clauses.append({column: getattr(filters, name)})
    if filters.locale:
        clauses.append({"locale": filters.locale})
    if filters.has_text is True:
        clauses.append({"reason_info": {"$regex": r"\S"}})
    elif filters.has_text is False:
        clauses.append({"reason_info": {"$not": re.compile(r"\S")}})
    if filters.q:
        clauses.append(_text_search(db, project_hash, filters.q))
    return {"$and": clauses}


def _text_search(db: Database, project_hash: str, q: str) -> dict[str, Any]:
    """Site URL or site name contains `q` (case-insensitive). Names live in `sites`: look them up."""
    pattern = {"$regex": re.escape(q), "$options": "i"}
    named = [
        document["_id"]
        for document in db[SITES]
        .find({"project_hash": project_hash, "site_name": pattern}, {"_id": 1})
        .limit(MAX_NAME_MATCHES + 1)
    ]
    if len(named) > MAX_NAME_MATCHES:
        raise bad_parameter("q", f"matches more than {MAX_NAME_MATCHES} site names; be more specific")
    return {"$or": [{"site_url": pattern}, {"_id": {"$in": named}}]}


def _after(position: Position) -> dict[str, Any]:
    if position.direction == "after":
        return {
            "received_at": {"$lte": position.received_at},
            "$or": [{"received_at": {"$lt": position.received_at}}, {"_id": {"$lt": position.document_id}}],
        }
    return {
        "received_at": {"$gte": position.received_at},
        "$or": [{"received_at": {"$gt": position.received_at}}, {"_id": {"$gt": position.document_id}}],
    }


def list_deactivations(
    db: Database,
    cursors: Cursors,
    project_hash: str,
    filters: ListFilters,
    *,
    limit: int,
    cursor: str | None,
    personal: bool,
) -> Page:
    position = cursors.decode(cursor, filters)
    query = list_query(db, project_hash, filters)
    backwards = position is not None and position.direction == "before"
    if position is not None:
        query["$and"].append(_after(position))
    order = ASCENDING if backwards else DESCENDING
    documents = list(
        db[DEACTIVATIONS]
        .find(query, _DEACTIVATION_PROJECTION)
        .sort([("received_at", order), ("_id", order)])
        .hint(INDEX_BY_REASON if filters.reason else INDEX_BY_TIME)
        .limit(limit + 1)
    )
    more = len(documents) > limit
    documents = documents[:limit]
    if backwards:
        documents.reverse()
    items = with_site_fields(db, documents, personal)
    first, last = (documents[0], documents[-1]) if documents else (None, None)

    def _cursor(document: dict[str, Any] | None, direction: Literal["after", "before"]) -> str | None:
        if document is None:
            return None
        return cursors.encode(Position(_utc(document["received_at"]), document["_id"], direction), filters)

    has_next = (more and not backwards) or (backwards and position is not None)
    has_previous = (more and backwards) or (not backwards and position is not None)
    return Page(
        items=items,
        next_cursor=_cursor(last, "after") if has_next else None,
        previous_cursor=_cursor(first, "before") if has_previous else None,
    )


def with_site_fields(db: Database, documents: list[dict[str, Any]], personal: bool) -> list[dict[str, Any]]:
    """List items: the deactivation, the site's name and, for personal keys, its admin contact."""
    sites = {
        site["_id"]: site
        for site in db[SITES].find({"_id": {"$in": [d["_id"] for d in documents]}}, _SITE_PROJECTION)
    }
    items = []
    for document in documents:
        site = sites.get(document["_id"], {})
        item = {name: document.get(name) for name in ITEM_FIELDS}
        item["site_name"] = site.get("site_name")
        item["received_at"] = iso_time(document["received_at"])
        if personal:
            item |= {name: site.get(name) for name in PERSONAL_FIELDS}
        items.append(item)
    return items


def site_state(db: Database, project_hash: str, site_url: str, personal: bool) -> dict[str, Any] | None:
    """The site's latest known state (MongoDB `sites`), without internal fields."""
    document = db[SITES].find_one({"_id": f"{project_hash}|{site_url}"})
    if document is None:
        return None
    hidden = {"_id", "order_key", *(() if personal else PERSONAL_FIELDS)}
    state = {k: v for k, v in document.items() if k not in hidden}
    state["received_at"] = iso_time(document["received_at"])
    return state


def explain_list(db: Database, project_hash: str, filters: ListFilters) -> dict[str, Any]:
    """MongoDB's plan for the first page (the benchmark shows it uses the index)."""
    query = list_query(db, project_hash, filters)
    return (
        db[DEACTIVATIONS]
        .find(query)
        .sort([("received_at", DESCENDING), ("_id", DESCENDING)])
        .hint(INDEX_BY_REASON if filters.reason else INDEX_BY_TIME)
        .limit(51)
        .explain()
    )


def iso_time(value: datetime) -> str:
    return _utc(value).strftime(ISO_FORMAT)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
