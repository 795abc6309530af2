"""Everything held about one site, as one JSON document (an access request).

The same matching as an erasure (privacy.matching): the site's raw envelopes of every route (as
stored, with file and line), the rejected requests that name it, its warehouse history rows, its
MongoDB documents (latest state, mail outbox, notification records), whether it is in the erasure
register, and whether its admin addresses are suppressed from mail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd

from deactivation.envelope import REJECTED_PREFIX, ROUTES
from deactivation.erasure import erasure_key, is_registered
from deactivation.mongo import connect
from deactivation.raw_store import open_raw_store, split_records
from deactivation.settings import Settings
from deactivation.suppression import is_suppressed
from deactivation.warehouse import open_warehouse
from privacy.erase import WAREHOUSE_CONDITIONS, mongo_filters
from privacy.matching import EMAIL_FIELDS, Subjects, check_project, check_site_url, url_pattern


def export_site(settings: Settings, project_hash: str, site_url: str) -> dict[str, Any]:
    """RequestError (privacy.matching) for a malformed project hash or URL."""
    project_hash, site_url = check_project(project_hash), check_site_url(site_url)
    subjects = Subjects(project_hash, erasure_key(settings))
    subjects.add_site(site_url)
    store = open_raw_store(settings)
    needles = subjects.needles()
    raw: dict[str, list[dict[str, Any]]] = {}
    emails: set[str] = set()
    for route in ROUTES:
        raw[route] = []
        for raw_file in store.iter_files(route):
            data = store.read_bytes(raw_file.relative_path)
            if not subjects.may_hold(data, needles):
                continue
            for line, text in split_records(raw_file.relative_path, data):
                if not subjects.record_matches(text):
                    continue
                item: dict[str, Any] = {"file": raw_file.relative_path, "line": line}
                try:
                    item["envelope"] = orjson.loads(text)
                    emails |= _emails_of(item["envelope"])
                except orjson.JSONDecodeError:
                    item["text"] = text.decode("utf-8", errors="replace")
                raw[route].append(item)
    rejected = []
    for raw_file in store.iter_files(REJECTED_PREFIX):
        data = store.read_bytes(raw_file.relative_path)
        if subjects.rejected_matches(data):
            rejected.append(
                {"file": raw_file.relative_path, "record": data.decode("utf-8", errors="replace")}
            )

    warehouse = open_warehouse(settings)
    params = {
        "project_hash": project_hash,
        "site_urls": [site_url],
        "url_pattern": url_pattern({site_url}),
        "removed_records": [],
    }
    history = {}
    for table, condition in WAREHOUSE_CONDITIONS.items():
        if warehouse.table_exists(table):
            sql = f"SELECT * FROM {table} WHERE {condition}"
            used = {name: value for name, value in params.items() if f"@{name}" in sql}
            history[table] = _records(warehouse.query(sql, used))

    client = connect(settings)
    try:
        db = client[settings.MONGODB_DB]
        mongo = {name: list(db[name].find(query)) for name, query in mongo_filters(db, subjects).items()}
        for document in mongo.get("sites", []):
            if isinstance(document.get("admin_email"), str):
                emails.add(document["admin_email"].strip().lower())
        registered = is_registered(db, settings, project_hash, site_url)
        suppressed = {email: is_suppressed(db, settings, project_hash, email) for email in sorted(emails)}
    finally:
        client.close()
    return {
        "project_hash": project_hash,
        "site_url": site_url,
        "exported_at": datetime.now(UTC),
        "erased": registered,
        "raw_store": raw,
        "rejected": rejected,
        "warehouse": history,
        "mongo": mongo,
        "mail_suppressed": suppressed,
        "collections_searched": sorted(mongo),
    }


def write_export(exported: dict[str, Any], stream: IO[bytes]) -> None:
    stream.write(orjson.dumps(exported, default=_json_default, option=orjson.OPT_INDENT_2) + b"\n")
    stream.flush()


def _emails_of(envelope: Any) -> set[str]:
    body = envelope.get("body") if isinstance(envelope, dict) else None
    if not isinstance(body, dict):
        return set()
    return {
        body[name].strip().lower() for name in EMAIL_FIELDS if isinstance(body.get(name), str) and body[name]
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _json_default(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
