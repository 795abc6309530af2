"""The deactivations list: the latest deactivation per site, from MongoDB, newest first.

Keyset pagination: documents are ordered by (received_at, _id) descending, on an index that starts
with the project (and the reason, when filtered by one); a page continues strictly after the last
document of the previous one, so no page skips over documents and a site inserted meanwhile can
neither appear twice nor push another site off a page. The cursor is that position, signed (so a
forged or damaged cursor is a clean 400) and bound to the filters it was made for.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeSerializer
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
#: List windows: the first page's first window, and the bounds any window's width stays within.
FIRST_WINDOW = timedelta(hours=1)
MIN_WINDOW = timedelta(seconds=1)
MAX_WINDOW = timedelta(days=3660)
#: A backwards walk's window ending this far past now is left open (received_at is the server's
#: clock; the margin covers skew between servers).
OPEN_END_MARGIN = timedelta(days=1)
#: A forwards walk's window reaching before this is left open (nothing older is expected).
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
#: Bounds on one page's work: windows read and documents fetched (only a rare residual filter,
#: e.g. a locale few sites have, reaches them; the page then ends early with a cursor).
MAX_WINDOWS_PER_PAGE = 40
MAX_EXAMINED = 20_000
#: Published aggregates (reports/aggregates.py) that size the first page's window.
DAILY_COUNTS = "daily_reason_counts"
HOURLY_COUNTS = "hourly_reason_counts"
#: Filters that are plain equalities (filter name, document field).
_EQUAL_FILTERS = (
    ("version", "project_version"),
    ("wp", "wp_version_mm"),
    ("php", "php_version_mm"),
    ("locale", "locale"),
)
#: "Has free text": a character other than PCRE's (MongoDB's `$regex`) ASCII whitespace.
_NOT_BLANK = r"[^ \t\n\x0b\f\r]"
_NOT_BLANK_RE = re.compile(_NOT_BLANK)
_DEACTIVATION_PROJECTION = {
    **{name: 1 for name in ITEM_FIELDS if name != "site_name"},
    **{column: 1 for _name, column in _EQUAL_FILTERS},
}
_SITE_PROJECTION = {"site_name": 1, **dict.fromkeys(PERSONAL_FIELDS, 1)}


@dataclass(frozen=True)
class Position:
    received_at: datetime
    document_id: str
    direction: Literal["after", "before"]
    #: Seconds per listed document on the page this position ends (its density): sizes the next
    #: page's first window, so a deep page starts at the right width instead of growing to it.
    item_seconds: float = FIRST_WINDOW.total_seconds() / 50


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
            [
                position.received_at.isoformat(),
                position.document_id,
                position.direction,
                filters.digest(),
                round(position.item_seconds, 6),
            ]
        )

    def decode(self, text: str | None, filters: ListFilters) -> Position | None:
        if not text:
            return None
        if len(text) > 1000:
            raise bad_parameter("cursor", "is not a cursor this API issued")
        try:
            received_at, document_id, direction, digest, *hint = self._serializer.loads(text)
            item_seconds = float(hint[0]) if hint else Position.item_seconds
            position = Position(
                _utc(datetime.fromisoformat(received_at)),
                str(document_id),
                direction,
                min(max(item_seconds, 1e-6), MAX_WINDOW.total_seconds()),
            )
        except (BadSignature, ValueError, TypeError, IndexError):
            raise bad_parameter("cursor", "is not a cursor this API issued") from None
        if digest != filters.digest() or direction not in ("after", "before"):
            raise bad_parameter("cursor", "belongs to other filters; start again without a cursor")
        return position


def list_query(db: Database, project_hash: str, filters: ListFilters) -> dict[str, Any]:
    """The MongoDB filter for a project's latest deactivations under `filters` (no position).

    The list itself runs `window_query` + `residual_match` (the same conditions, split so the
    database only sees what an index answers); this whole filter is for counting and checks."""
    clauses: list[dict[str, Any]] = [{"project_hash": project_hash}]
    if filters.reason:
        clauses.append({"reason_id": filters.reason})
    received = _day_bounds(filters)
    if received:
        clauses.append({"received_at": received})
    for name, column in _EQUAL_FILTERS:
        if getattr(filters, name):
            clauses.append({column: getattr(filters, name)})
    if filters.has_text is True:
        clauses.append({"reason_info": {"$regex": _NOT_BLANK}})
    elif filters.has_text is False:
        clauses.append({"reason_info": {"$not": re.compile(_NOT_BLANK)}})
    if filters.q:
        clauses.append(_text_search(db, project_hash, filters.q))
    return {"$and": clauses}


def _day_bounds(filters: ListFilters) -> dict[str, datetime]:
    received: dict[str, datetime] = {}
    if filters.start_day:
        received["$gte"] = day_start(filters.start_day)
    if filters.end_day:
        received["$lt"] = day_start(filters.end_day) + timedelta(days=1)
    return received


def _text_search(db: Database, project_hash: str, q: str) -> dict[str, Any]:
    """Site URL or site name contains `q` (case-insensitive). Names live in `sites`: look them up."""
    pattern = {"$regex": re.escape(q), "$options": "i"}
    return {"$or": [{"site_url": pattern}, {"_id": {"$in": sorted(_named_sites(db, project_hash, q))}}]}


def _named_sites(db: Database, project_hash: str, q: str) -> set[str]:
    pattern = {"$regex": re.escape(q), "$options": "i"}
    named = [
        document["_id"]
        for document in db[SITES]
        .find({"project_hash": project_hash, "site_name": pattern}, {"_id": 1})
        .limit(MAX_NAME_MATCHES + 1)
    ]
    if len(named) > MAX_NAME_MATCHES:
        raise bad_parameter("q", f"matches more than {MAX_NAME_MATCHES} site names; be more specific")
    return set(named)


def window_query(project_hash: str, filters: ListFilters, received: dict[str, datetime]) -> dict[str, Any]:
    """One window's filter: equalities on an index's leading fields, then a range on received_at,
    top-level only. That is the shape SecantusDB answers from the index by the range alone (a
    `$and`/`$or`, or any other field, makes it read every document of the project), and MongoDB
    from the same index (explain: IXSCAN on project_time / project_reason_time)."""
    query: dict[str, Any] = {"project_hash": project_hash}
    if filters.reason:
        query["reason_id"] = filters.reason
    if received:
        query["received_at"] = received
    return query


def residual_match(
    db: Database, project_hash: str, filters: ListFilters
) -> Callable[[dict[str, Any]], bool] | None:
    """The filters no index answers, as a predicate over fetched documents (None: there are none).
    Same meaning as `list_query`'s clauses (`$regex` `\\S` is PCRE's: ASCII whitespace only)."""
    equal = {column: getattr(filters, name) for name, column in _EQUAL_FILTERS if getattr(filters, name)}
    has_text = filters.has_text
    needle = re.compile(re.escape(filters.q), re.IGNORECASE) if filters.q else None
    named = _named_sites(db, project_hash, filters.q) if filters.q else set()
    if not equal and has_text is None and needle is None:
        return None

    def matches(document: dict[str, Any]) -> bool:
        if any(document.get(column) != value for column, value in equal.items()):
            return False
        if has_text is not None:
            info = document.get("reason_info")
            if (isinstance(info, str) and _NOT_BLANK_RE.search(info) is not None) != has_text:
                return False
        if needle is not None:
            url = document.get("site_url")
            return document["_id"] in named or (isinstance(url, str) and needle.search(url) is not None)
        return True

    return matches


def _sort_key(document: dict[str, Any]) -> tuple[datetime, str]:
    return _utc(document["received_at"]), str(document["_id"])


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
    """A page of the list, read in time windows walked away from the position.

    Each window is a range on received_at (`window_query`): the database fetches only the
    documents inside it, from the index, whatever the collection's size. The first window
    starts at the position (on the first page: open towards the newest end); while the page is
    not full the next window continues where the last ended, its width scaled to the density
    seen so far (doubled across an empty stretch). The window reaching the oldest (newest) end
    is open-ended, so paging to the end sees every document exactly once. Documents are ordered
    by (received_at, _id), the keyset, and a page continues strictly after its last one. A page
    that examined MAX_EXAMINED documents (a rare residual filter) stops early, possibly short,
    with a cursor at the edge of what it read, so the next page goes on from there.
    """
    position = cursors.decode(cursor, filters)
    backwards = position is not None and position.direction == "before"
    residual = residual_match(db, project_hash, filters)
    wanted = limit + 1
    bounds = _day_bounds(filters)
    floor, ceiling = bounds.get("$gte"), bounds.get("$lt")
    now = datetime.now(UTC)
    if position is not None:
        width = min(max(timedelta(seconds=1.25 * wanted * position.item_seconds), MIN_WINDOW), MAX_WINDOW)
    else:
        top = min(now, ceiling or now)
        start = first_page_start(db, project_hash, filters, wanted, top)
        width = FIRST_WINDOW if start is None else max(top - start, MIN_WINDOW)
    found: list[dict[str, Any]] = []
    examined = 0
    near = position.received_at if position else None  # the window's edge nearer the position
    boundary: datetime | None = None  # where reading stopped early, if it did
    for window in range(MAX_WINDOWS_PER_PAGE):
        received, far = _window(near, width, window == 0, backwards, floor, ceiling, now)
        documents = list(
            db[DEACTIVATIONS].find(window_query(project_hash, filters, received), _DEACTIVATION_PROJECTION)
        )
        examined += len(documents)
        if window == 0 and position is not None:
            mark = (position.received_at, position.document_id)
            documents = [d for d in documents if (_sort_key(d) > mark if backwards else _sort_key(d) < mark)]
        if residual is not None:
            documents = [d for d in documents if residual(d)]
        found.extend(documents)
        if len(found) >= wanted or far is None:
            break
        if examined >= MAX_EXAMINED or window == MAX_WINDOWS_PER_PAGE - 1:
            boundary = far
            break
        near = far
        if found:  # scale to the density seen so far, at most 8x the stretch read at once
            # Measured from the found document nearest the position, not from the position: a
            # quiet stretch between them would make the density look far lower than it is.
            nearest = (min if backwards else max)(_sort_key(d)[0] for d in found)
            spread = abs((far - nearest).total_seconds())
            density = len(found) / max(spread, 1.0)
            width = timedelta(seconds=min(8 * spread, 1.25 * (wanted - len(found)) / density))
        else:  # an empty stretch: double
            width *= 2
        width = min(max(width, MIN_WINDOW), MAX_WINDOW)
    found.sort(key=_sort_key, reverse=not backwards)
    more = len(found) > limit
    documents = found[:limit]
    hint = _item_seconds(documents, wanted, width)
    if backwards:
        documents.reverse()
    items = with_site_fields(db, documents, personal)

    def _at(document: dict[str, Any], direction: Literal["after", "before"]) -> str:
        received_at, document_id = _sort_key(document)
        return cursors.encode(Position(received_at, document_id, direction, hint), filters)

    def _edge(at: datetime, direction: Literal["after", "before"]) -> str:
        # An empty id sorts before every id: "after (t, '')" is every document older than t,
        # "before (t, '')" every document at t or newer.
        return cursors.encode(Position(at, "", direction, hint), filters)

    newer: str | None = None
    older: str | None = None
    if backwards:
        assert position is not None
        older = _at(documents[-1], "after") if documents else _edge(boundary or position.received_at, "after")
        if boundary is not None:
            newer = _edge(boundary, "before")
        elif more:
            newer = _at(documents[0], "before")
    else:
        if boundary is not None:
            older = _edge(boundary, "after")
        elif more:
            older = _at(documents[-1], "after")
        if position is not None:
            newer = _at(documents[0], "before") if documents else _edge(boundary or OLDEST, "before")
    return Page(items=items, next_cursor=older, previous_cursor=newer)


def first_page_start(
    db: Database, project_hash: str, filters: ListFilters, wanted: int, top: datetime
) -> datetime | None:
    """Where the first page's window should start so it holds about `wanted` documents, from the
    published per-day and per-hour deactivation counts (None: no counts, so grow from an hour).

    Each site's latest deactivation is one of the deactivations counted, so counting back from
    `top` to where the counts reach `wanted` bounds a window that holds at least a page; without
    this, a project quiet for months would grow its first window across the quiet stretch and
    land on months of documents at once. The window stays open towards the newest end, so
    documents newer than the last analytics build are still listed: the counts only size it.
    Days are read in windows doubling from 8 (index-backed ranges on project + day), then the
    hours of the day where the count reaches `wanted`."""
    upper, span, total = top.date(), 8, 0
    for _ in range(12):
        lower = max(upper - timedelta(days=span - 1), OLDEST.date())
        per_day: Counter[str] = Counter()
        for row in db[DAILY_COUNTS].find(
            {"project_hash": project_hash, "day": {"$gte": lower.isoformat(), "$lte": upper.isoformat()}},
            {"day": 1, "reason_id": 1, "deactivations": 1},
        ):
            if filters.reason is None or row.get("reason_id") == filters.reason:
                per_day[row["day"]] += int(row.get("deactivations") or 0)
        for day in sorted(per_day, reverse=True):
            if total + per_day[day] >= wanted:
                return _crossing_hour(db, project_hash, filters, date.fromisoformat(day), wanted - total)
            total += per_day[day]
        if lower <= OLDEST.date():
            return OLDEST if total else None
        upper, span = lower - timedelta(days=1), span * 2
    return OLDEST if total else None


def _crossing_hour(db: Database, project_hash: str, filters: ListFilters, day: date, wanted: int) -> datetime:
    """Where in `day`, counting back from its end, the deactivations reach `wanted`: inside the
    hour that reaches it, as far back as its share of that hour's count (plus a quarter), as if
    spread evenly; a window that comes back short is followed by another."""
    per_hour: Counter[datetime] = Counter()
    for row in db[HOURLY_COUNTS].find(
        {
            "project_hash": project_hash,
            "hour": {"$gte": day_start(day), "$lt": day_start(day) + timedelta(days=1)},
        },
        {"hour": 1, "reason_id": 1, "deactivations": 1},
    ):
        if filters.reason is None or row.get("reason_id") == filters.reason:
            per_hour[_utc(row["hour"])] += int(row.get("deactivations") or 0)
    total = 0
    for hour in sorted(per_hour, reverse=True):
        if total + per_hour[hour] >= wanted:
            share = min(1.0, 1.25 * (wanted - total) / per_hour[hour])
            return hour + timedelta(hours=1) - timedelta(hours=1) * share
        total += per_hour[hour]
    return day_start(day)


def _window(
    near: datetime | None,
    width: timedelta,
    first: bool,
    backwards: bool,
    floor: datetime | None,
    ceiling: datetime | None,
    now: datetime,
) -> tuple[dict[str, datetime], datetime | None]:
    """One window's received_at range and its far edge (None: it is open to the end).

    Windows are half-open, [older edge, newer edge), so consecutive ones neither overlap nor
    leave a gap; the first one includes the position itself (its ties are sorted out by _id)."""
    received: dict[str, datetime] = {}
    if backwards:
        assert near is not None
        received["$gte"] = near if floor is None else max(near, floor)
        far: datetime | None = near + width
        end = max(now, near) + OPEN_END_MARGIN if ceiling is None else ceiling
        if far >= end:
            far = None
        if far is not None:
            received["$lt"] = far
        elif ceiling is not None:
            received["$lt"] = ceiling
        return received, far
    if near is None:
        if ceiling is not None:
            received["$lt"] = ceiling
        start = now if ceiling is None else min(now, ceiling)
    else:
        received["$lte" if first else "$lt"] = near
        if ceiling is not None and ceiling <= near:
            received = {"$lt": ceiling}
        start = near
    far = start - width
    if far <= (floor if floor is not None else OLDEST):
        far = None
    if far is not None:
        received["$gte"] = far
    elif floor is not None:
        received["$gte"] = floor
    return received, far


def _item_seconds(documents: list[dict[str, Any]], wanted: int, last_width: timedelta) -> float:
    """Seconds per document at this page's density (the next page's first window is sized by it,
    whatever that page's limit)."""
    if len(documents) < 2:
        return last_width.total_seconds() / wanted
    span = abs((_sort_key(documents[0])[0] - _sort_key(documents[-1])[0]).total_seconds())
    return max(span / (len(documents) - 1), 1e-6)


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
    """The database's plan for a window of the list (the benchmark shows it is an index scan)."""
    start = datetime.now(UTC) - FIRST_WINDOW
    return (
        db[DEACTIVATIONS]
        .find(window_query(project_hash, filters, {"$gte": start}), _DEACTIVATION_PROJECTION)
        .explain()
    )


def iso_time(value: datetime) -> str:
    return _utc(value).strftime(ISO_FORMAT)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
