"""New deactivations → forwards, auto-replies and deactivation.created webhooks (planned, not sent).

The warehouse's `hour_loads.loaded_at` says which hours were (re)loaded since the last pass (the
watermark in `notification_state`); their deactivations of projects that want notifications become
outbox documents with deterministic ids, so a re-loaded hour or a second planner inserts nothing new.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pymongo.database import Database

from deactivation.projects import Project
from deactivation.redaction import mask_free_text
from deactivation.warehouse import Warehouse
from notifications.outbox import NOTIFICATION_STATE, NOTIFICATIONS, Kind, enqueue

log = logging.getLogger(__name__)

WATERMARK_ID = "events"
#: Deactivations older than this are not forwarded or answered (a re-load of an old hour, or a
#: project that just turned forwarding on, must not mail the past).
MAX_EVENT_AGE = timedelta(hours=48)
#: Most notifications of each kind per project and hour. Deactivations arrive unauthenticated (the
#: SDK has no secret), so a flood of forged events must not become a flood of mail: beyond the cap
#: the team reads the digest or the spike alert, and auto-replies (which go to addresses the sender
#: chose) stop early.
MAX_PER_PROJECT_HOUR = {"forward": 200, "auto_reply": 50, "webhook": 1000}

_EVENTS_SQL = """
SELECT event_id, project_hash, site_url, received_at, reason_id, reason_label, reason_info,
       project_version, wp_version, php_version
FROM deactivations
WHERE raw_hour IN UNNEST(@hours) AND project_hash IN UNNEST(@projects) AND received_at >= @oldest
ORDER BY received_at, event_id
"""


def wants_event_notifications(project: Project) -> bool:
    settings = project.notifications
    return bool(settings.forward_to or settings.auto_replies or settings.webhook_url)


def site_digest(site_url: str) -> str:
    return hashlib.sha256(site_url.encode()).hexdigest()[:24]


def loaded_hours_since(
    warehouse: Warehouse, since: datetime | None
) -> tuple[list[datetime], datetime | None]:
    """Hours (re)loaded after `since`, and the newest load time among them."""
    frame = warehouse.query(
        "SELECT raw_hour, loaded_at FROM hour_loads WHERE loaded_at > @since",
        {"since": since or datetime(1970, 1, 1, tzinfo=UTC)},
    )
    if frame.empty:
        return [], None
    hours = sorted({_utc(value) for value in frame["raw_hour"]})
    return hours, max(_utc(value) for value in frame["loaded_at"])


def plan_event_notifications(
    db: Database, warehouse: Warehouse, projects: dict[str, Project], now: datetime
) -> Counter[str]:
    """Enqueue the notifications for newly loaded deactivations; returns new ones (and capped) by kind."""
    planned: Counter[str] = Counter()
    state = db[NOTIFICATION_STATE].find_one({"_id": WATERMARK_ID}) or {}
    hours, newest_load = loaded_hours_since(warehouse, state.get("loaded_at"))
    if newest_load is None:
        return planned
    wanted = sorted(h for h, p in projects.items() if wants_event_notifications(p))
    oldest = now - MAX_EVENT_AGE
    hours = [hour for hour in hours if hour >= oldest - timedelta(hours=1)]
    if wanted and hours:
        rows = warehouse.query(_EVENTS_SQL, {"hours": hours, "projects": wanted, "oldest": oldest})
        documents, capped = _documents(rows, projects)
        planned["capped"] += capped
        for kind, kind_documents in documents.items():
            planned[kind] += enqueue(db[NOTIFICATIONS], kind_documents, now)
    db[NOTIFICATION_STATE].update_one(
        {"_id": WATERMARK_ID}, {"$set": {"loaded_at": newest_load}}, upsert=True
    )
    return planned


def _documents(rows: pd.DataFrame, projects: dict[str, Project]) -> tuple[dict[str, list[dict]], int]:
    documents: dict[str, list[dict]] = {Kind.forward: [], Kind.auto_reply: [], Kind.webhook: []}
    per_hour: Counter[tuple[str, str, datetime]] = Counter()
    capped = 0

    def add(kind: Kind, project: Project, received_at: datetime, document: dict) -> None:
        nonlocal capped
        key = (kind.value, project.hash, received_at.replace(minute=0, second=0, microsecond=0))
        per_hour[key] += 1
        if per_hour[key] <= MAX_PER_PROJECT_HOUR[kind.value]:
            documents[kind].append({"kind": kind.value, **document})
        else:
            capped += 1

    for row in rows.to_dict("records"):
        project = projects[row["project_hash"]]
        settings = project.notifications
        received_at = _utc(row["received_at"])
        base = {"project_hash": project.hash, "event_id": row["event_id"], "payload": _event_payload(row)}
        if settings.forward_to:
            add(Kind.forward, project, received_at, {"_id": f"forward:{row['event_id']}", **base})
        if row["reason_id"] in settings.auto_replies:
            # One reply per site and reason, ever: a site that deactivates again is not answered twice.
            reply_id = f"auto_reply:{project.hash}:{site_digest(row['site_url'])}:{row['reason_id']}"
            add(Kind.auto_reply, project, received_at, {"_id": reply_id, **base})
        if settings.webhook_url:
            webhook_id = f"webhook:deactivation.created:{row['event_id']}"
            add(
                Kind.webhook,
                project,
                received_at,
                {"_id": webhook_id, "event": "deactivation.created", **base},
            )
    return documents, capped


def _event_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "site_url": row["site_url"],
        "received_at": _utc(row["received_at"]).isoformat(),
        "reason_id": row["reason_id"],
        "reason_label": row["reason_label"],
        "reason_info": mask_free_text(_text(row["reason_info"]))[:2000],
        "project_version": _text(row["project_version"]),
        "wp_version": _text(row["wp_version"]),
        "php_version": _text(row["php_version"]),
    }


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def _utc(value: Any) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
