"""Erase a site (or every site of an admin e-mail) from every store, on request.

Order, and why:

1. **Find the sites.** A site request names one. An e-mail request finds every site of the project
   whose records carry that address (raw store, MongoDB `sites` and `mail_outbox`), plus the sites a
   previous, interrupted run of the same request registered (found again by their keyed hash among
   the site URLs the warehouse and MongoDB still hold).
2. **Register** their keyed hashes (deactivation.erasure), so a pipeline run from now on, a re-run,
   a backfill or a late file turns their events into `erased` dead letters instead of bringing them back.
3. **Delete**, each step idempotent, so running the same request again after a crash finishes the job:
   raw files of every route (a file is rewritten without the site's records, written whole then
   put in place; emptied files are removed), `rejected/` copies, warehouse history (one transaction;
   the touched hours' `hour_loads` rows are recounted and their `loaded_at` moved on, which is what
   makes the next analytics build rebuild exactly those hours), MongoDB state, the mail outbox and
   notification records. Suppression entries stay: they hold only a keyed hash and must keep working.
   The raw store goes before the warehouse on purpose: while raw files are being rewritten the
   warehouse still names the sites, so an interrupted e-mail erasure can find them again; and each
   raw change is journaled first (`Journal`), so the warehouse step of a resumed run knows it too.
   Before the warehouse, it waits for pipeline runs that took their hours before the register was
   written (they may not know the site is erased and could load its rows again).
4. **Rebuild analytics** (reports.analytics: the incremental build rebuilds the touched hours).
5. **Audit**: when, which project, counts per store, who ran it; no personal data.

A rewritten NDJSON file keeps one empty line where each removed record was: every other record
keeps its line number, so its dead letter's `raw_line` and `error_id` stay the same on a re-run.

`dry_run` reads everything and changes nothing: the counts are what a real run would remove.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pandas as pd
from pydantic import BaseModel, Field
from pymongo.database import Database

from deactivation.envelope import REJECTED_PREFIX, ROUTES
from deactivation.erasure import (
    ERASURE_JOURNAL,
    email_key,
    erasure_key,
    record_erasure_audit,
    register_erasure,
    site_key,
    sites_erased_via,
)
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, NOTIFICATIONS, PIPELINE_LOCKS, SITES, connect
from deactivation.raw_store import RawStore, open_raw_store, split_records
from deactivation.schemas import DEACTIVATION_ERRORS, HOUR_LOADS
from deactivation.schemas import DEACTIVATIONS as DEACTIVATIONS_TABLE
from deactivation.schemas import SITES as SITES_TABLE
from deactivation.settings import Settings
from deactivation.warehouse import Warehouse, open_warehouse
from privacy.matching import (
    RequestError,
    Subjects,
    check_email,
    check_project,
    check_site_url,
    url_pattern,
)
from reports.analytics import build_analytics

log = logging.getLogger(__name__)

#: MongoDB collections of records about a site besides the latest state, and where each keeps the
#: site's URL and the contact's e-mail (a record without a site, like a digest, is no site's record).
SITE_RECORD_COLLECTIONS = {
    MAIL_OUTBOX: ("site_url", "contact.email"),
    NOTIFICATIONS: ("payload.site_url", "payload.email"),
}
#: How often an erasure looks again whether earlier pipeline runs gave their hours back.
PIPELINE_POLL_SECONDS = 5.0
#: Raw files read at once (GCS reads are network round trips; local ones are cheap either way).
READERS = 8


class RawRouteCounts(BaseModel):
    records: int = 0
    files_rewritten: int = 0
    files_deleted: int = 0


class ErasureSummary(BaseModel):
    """What one erasure removed (or, with dry_run, would remove); counts only, no personal data."""

    project_hash: str
    subject: Literal["site", "email"]
    dry_run: bool
    sites: int = Field(description="Sites the request covers.")
    raw: dict[str, RawRouteCounts]
    rejected: int = Field(description="Rejected requests removed from rejected/.")
    warehouse: dict[str, int]
    mongo: dict[str, int]
    analytics_hours_rebuilt: int = 0
    audit_id: str | None = None
    seconds: float = 0.0

    def counts(self) -> dict[str, Any]:
        """The per-store counts the audit entry keeps."""
        return self.model_dump(
            include={"sites", "raw", "rejected", "warehouse", "mongo", "analytics_hours_rebuilt"}
        )


@dataclass(frozen=True)
class ErasureRequest:
    """A checked request: one project and either a site URL or an admin e-mail."""

    project_hash: str
    site_url: str | None = None
    email: str | None = None

    @classmethod
    def build(
        cls, project_hash: str, *, site_url: str | None = None, email: str | None = None
    ) -> ErasureRequest:
        """RequestError when the request is not exactly one valid site or e-mail."""
        if (site_url is None) == (email is None):
            raise RequestError("name exactly one of a site URL or an admin e-mail")
        return cls(
            project_hash=check_project(project_hash),
            site_url=check_site_url(site_url) if site_url is not None else None,
            email=check_email(email) if email is not None else None,
        )

    @property
    def subject(self) -> Literal["site", "email"]:
        return "site" if self.site_url else "email"


def erase(settings: Settings, request: ErasureRequest, *, dry_run: bool = False) -> ErasureSummary:
    """Carry out (or, with dry_run, count) one erasure; see the module docstring for the order.

    PipelineInFlight when pipeline runs that started before the register was written still hold hours
    after ERASURE_PIPELINE_WAIT_SECONDS (nothing is lost: run it again once they ended).
    """
    started_at, started = datetime.now(UTC), time.perf_counter()
    store = open_raw_store(settings)
    warehouse = open_warehouse(settings)
    if not dry_run:
        warehouse.ensure_tables()
    client = connect(settings)
    try:
        db = client[settings.MONGODB_DB]
        subjects = find_subjects(settings, request, store, warehouse, db)
        registered_at = datetime.now(UTC)
        if not dry_run:
            register_erasure(
                db, settings, request.project_hash, site_urls=subjects.site_urls, email=request.email
            )
        raw, scrubbed = {}, {}
        journal = Journal(db, _subject_key(settings, request), request.project_hash)
        with ThreadPoolExecutor(READERS) as pool:
            for route in ROUTES:
                # Only deactivate/ records become warehouse rows: only their changes are journaled.
                route_journal = journal if route == "deactivate" and not dry_run else None
                scrubbed[route] = scrub_route(store, route, subjects, dry_run, pool, route_journal)
                raw[route] = scrubbed[route].counts
            rejected = scrub_rejected(store, subjects, dry_run, pool)
        if dry_run:
            warehouse_counts = scrub_warehouse(warehouse, subjects, scrubbed["deactivate"], dry_run)
        else:
            wait_for_earlier_pipeline_runs(db, registered_at, settings.ERASURE_PIPELINE_WAIT_SECONDS)
            # The journal holds this run's raw changes and those of an interrupted earlier run.
            warehouse_counts = scrub_warehouse(warehouse, subjects, journal.read(), dry_run)
            journal.clear()
        mongo_counts = scrub_mongo(db, subjects, dry_run)
        summary = ErasureSummary(
            project_hash=request.project_hash,
            subject=request.subject,
            dry_run=dry_run,
            sites=len(subjects.site_keys),
            raw=raw,
            rejected=rejected,
            warehouse=warehouse_counts,
            mongo=mongo_counts,
        )
        if not dry_run:
            summary.analytics_hours_rebuilt = len(build_analytics(settings).hours_rebuilt)
            summary.audit_id = record_erasure_audit(
                db,
                project_hash=request.project_hash,
                subject=request.subject,
                subject_key=_subject_key(settings, request),
                counts=summary.counts(),
                started_at=started_at,
            )
    finally:
        client.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info(
        "erasure%s of %d site(s) in project %s: %d raw records, %d warehouse rows, %d documents",
        " (dry run)" if dry_run else "",
        summary.sites,
        request.project_hash,
        sum(c.records for c in raw.values()),
        sum(warehouse_counts.values()),
        sum(mongo_counts.values()),
    )
    return summary


def _subject_key(settings: Settings, request: ErasureRequest) -> str:
    key = erasure_key(settings)
    if request.site_url:
        return site_key(key, request.project_hash, request.site_url)
    return email_key(key, request.project_hash, request.email or "")


# --- 2b. Pipeline runs that may not have seen the register ---------------------------------------------
class PipelineInFlight(RuntimeError):
    """A pipeline run that started before the erasure was registered still holds hours."""


def wait_for_earlier_pipeline_runs(db: Database, registered_at: datetime, wait_seconds: float) -> None:
    """Wait until no pipeline run that took its hours before `registered_at` holds them any more.

    A run reads the register after taking its hour leases (beam/hour_lock.py: one document per hour,
    `{_id, owner, holder, acquired_at, expires_at}`); one that took them earlier may not know the site
    is erased and could load its rows after the warehouse step below. Later runs turn them into
    `erased` dead letters. A crashed run's lease expires, so this never waits forever.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        earlier = {
            "acquired_at": {"$lte": registered_at},
            "expires_at": {"$gt": datetime.now(UTC)},
        }
        holding = db[PIPELINE_LOCKS].count_documents(earlier)
        if not holding:
            return
        if time.monotonic() >= deadline:
            raise PipelineInFlight(
                f"{holding} hour(s) are held by pipeline runs that started before this erasure; the raw "
                "store is done, run the same erase again once they ended to finish the warehouse and MongoDB"
            )
        log.info("erasure: waiting for %d hour lease(s) of earlier pipeline runs", holding)
        time.sleep(min(PIPELINE_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))


# --- 1. Which sites ---------------------------------------------------------------------------------------
def find_subjects(
    settings: Settings, request: ErasureRequest, store: RawStore, warehouse: Warehouse, db: Database
) -> Subjects:
    subjects = Subjects(request.project_hash, erasure_key(settings))
    if request.site_url:
        subjects.add_site(request.site_url)
        return subjects
    subjects.email = request.email
    for route in ROUTES:
        for url in _sites_with_email(store, route, subjects):
            subjects.add_site(url)
    email_match = {"$regex": f"^{re.escape(subjects.email or '')}$", "$options": "i"}
    for document in db[SITES].find({"project_hash": request.project_hash, "admin_email": email_match}):
        subjects.add_site(document["site_url"])
    for document in db[MAIL_OUTBOX].find(
        {"project_hash": request.project_hash, "contact.email": email_match}
    ):
        subjects.add_site(document["site_url"])
    earlier = sites_erased_via(db, settings, request.project_hash, subjects.email or "") - subjects.site_keys
    if earlier:
        for url in _site_urls_held(warehouse, db, request.project_hash):
            if site_key(subjects.key, request.project_hash, url) in earlier:
                subjects.add_site(url)
        subjects.site_keys |= earlier  # the rest: in no store with a URL any more, matched by key alone
    return subjects


def _sites_with_email(store: RawStore, route: str, subjects: Subjects) -> Iterator[str]:
    needles = subjects.needles()
    for raw_file in store.iter_files(route):
        data = store.read_bytes(raw_file.relative_path)
        if not subjects.may_hold(data, needles):
            continue
        for _, text in split_records(raw_file.relative_path, data):
            try:
                envelope = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            url = subjects.site_of(envelope)
            if url and subjects.carries_email(envelope["body"]):
                yield url


def _site_urls_held(warehouse: Warehouse, db: Database, project_hash: str) -> set[str]:
    frame = warehouse.query(
        "SELECT DISTINCT site_url FROM deactivations WHERE project_hash = @project_hash "
        "UNION DISTINCT SELECT DISTINCT site_url FROM sites WHERE project_hash = @project_hash",
        {"project_hash": project_hash},
    )
    urls = set(frame["site_url"])
    for collection in (DEACTIVATIONS, SITES, MAIL_OUTBOX):
        urls |= set(db[collection].distinct("site_url", {"project_hash": project_hash}))
    return {url for url in urls if isinstance(url, str)}


# --- 3a. Raw store ---------------------------------------------------------------------------------------
@dataclass
class ScrubbedRoute:
    counts: RawRouteCounts = field(default_factory=RawRouteCounts)
    #: The hour of each file removed whole (hour_loads.files drops by one for each).
    deleted_file_hours: list[datetime] = field(default_factory=list)
    #: "raw_file#raw_line" of each record removed: its dead letter, if it had one, goes too (an
    #: unparseable record's dead letter has its URLs masked, so only its place names it).
    removed_records: list[str] = field(default_factory=list)


class Journal:
    """Write-ahead record of the raw changes one request makes (`erasure_journal`, keyed by the
    request's keyed hash): each file's removed lines are recorded before the file is changed, so the
    warehouse step of a resumed run still removes the dead letters of records an interrupted run had
    already taken out of the raw store, and still recounts the files it removed."""

    def __init__(self, db: Database, subject_key: str, project_hash: str) -> None:
        self.collection = db[ERASURE_JOURNAL]
        self.key = subject_key
        self.project_hash = project_hash

    def record(self, relative: str, lines: list[int], deleted: bool) -> None:
        update: dict[str, Any] = {
            "$setOnInsert": {"project_hash": self.project_hash, "started_at": datetime.now(UTC)},
            "$addToSet": {"removed_records": {"$each": [f"{relative}#{line}" for line in lines]}},
        }
        if deleted:
            update["$addToSet"]["deleted_files"] = relative
        self.collection.update_one({"_id": self.key}, update, upsert=True)

    def read(self) -> ScrubbedRoute:
        document = self.collection.find_one({"_id": self.key}) or {}
        hours = [_hour_folder(path) for path in document.get("deleted_files", [])]
        return ScrubbedRoute(
            deleted_file_hours=[hour for hour in hours if hour is not None],
            removed_records=sorted(document.get("removed_records", [])),
        )

    def clear(self) -> None:
        self.collection.delete_one({"_id": self.key})


def _hour_folder(relative: str) -> datetime | None:
    """The hour of `route/YYYY/MM/DD/HH/name`."""
    try:
        return datetime.strptime("/".join(relative.split("/")[1:5]), "%Y/%m/%d/%H").replace(tzinfo=UTC)
    except ValueError:
        return None


def scrub_route(
    store: RawStore,
    route: str,
    subjects: Subjects,
    dry_run: bool,
    pool: ThreadPoolExecutor,
    journal: Journal | None = None,
) -> ScrubbedRoute:
    """Remove the subjects' records from every file of a route, hour by hour (each change recorded in
    `journal` first, when given)."""
    scrubbed = ScrubbedRoute()
    needles = subjects.needles()
    for hour in store.list_hours(route):
        files = [f.relative_path for f in store.list_hour(route, hour)]
        for relative, removed_lines, outcome in pool.map(
            lambda path: _scrub_file(store, path, subjects, needles, dry_run, journal), files
        ):
            scrubbed.counts.records += len(removed_lines)
            scrubbed.removed_records += [f"{relative}#{line}" for line in removed_lines]
            if outcome == "deleted":
                scrubbed.counts.files_deleted += 1
                scrubbed.deleted_file_hours.append(hour)
            elif outcome == "rewritten":
                scrubbed.counts.files_rewritten += 1
    return scrubbed


def _scrub_file(
    store: RawStore,
    relative: str,
    subjects: Subjects,
    needles: list[bytes],
    dry_run: bool,
    journal: Journal | None = None,
) -> tuple[str, list[int], str | None]:
    """(path, 1-based lines removed, 'deleted' | 'rewritten' | None) for one raw file."""
    data = store.read_bytes(relative)
    if not subjects.may_hold(data, needles):
        return relative, [], None
    if not relative.endswith(".ndjson"):
        if not subjects.record_matches(data.strip()):
            return relative, [], None
        if not dry_run:
            if journal is not None:
                journal.record(relative, [1], deleted=True)
            store.delete(relative)
        return relative, [1], "deleted"
    lines = data.split(b"\n")
    removed = []
    for index, line in enumerate(lines):
        if line.strip() and subjects.record_matches(line):
            lines[index] = b""
            removed.append(index + 1)
    if not removed:
        return relative, [], None
    emptied = not any(line.strip() for line in lines)
    if not dry_run:
        if journal is not None:
            journal.record(relative, removed, deleted=emptied)
        if emptied:
            store.delete(relative)
        else:  # written whole under another name, then put in place (locally a rename; GCS replaces)
            store.write_bytes(relative, b"\n".join(lines))
    return relative, removed, "deleted" if emptied else "rewritten"


def scrub_rejected(store: RawStore, subjects: Subjects, dry_run: bool, pool: ThreadPoolExecutor) -> int:
    """Remove the rejected requests that name a subject; returns how many."""

    def scrub(relative: str) -> int:
        if not subjects.rejected_matches(store.read_bytes(relative)):
            return 0
        if not dry_run:
            store.delete(relative)
        return 1

    removed = 0
    for hour in store.list_hours(REJECTED_PREFIX):
        removed += sum(pool.map(scrub, [f.relative_path for f in store.list_hour(REJECTED_PREFIX, hour)]))
    return removed


# --- 3b. Warehouse ---------------------------------------------------------------------------------------
_SITE_ROWS = "project_hash = @project_hash AND site_url IN UNNEST(@site_urls)"
_ERROR_ROWS = (
    "((project_hash = @project_hash OR project_hash IS NULL) AND REGEXP_CONTAINS(raw_envelope, @url_pattern))"
    " OR CONCAT(raw_file, '#', CAST(raw_line AS STRING)) IN UNNEST(@removed_records)"
)
WAREHOUSE_CONDITIONS = {
    DEACTIVATIONS_TABLE.name: _SITE_ROWS,
    SITES_TABLE.name: _SITE_ROWS,
    DEACTIVATION_ERRORS.name: _ERROR_ROWS,
}


def scrub_warehouse(
    warehouse: Warehouse, subjects: Subjects, scrubbed: ScrubbedRoute, dry_run: bool
) -> dict[str, int]:
    """Delete the subjects' history rows in one transaction; recount the touched hours' hour_loads."""
    counts = dict.fromkeys(WAREHOUSE_CONDITIONS, 0)
    if not subjects.site_urls and not scrubbed.removed_records:
        return counts
    if not all(warehouse.table_exists(table) for table in WAREHOUSE_CONDITIONS):
        return counts  # only a dry run on a warehouse never loaded gets here (erase ensures them)
    params: dict[str, Any] = {
        "project_hash": subjects.project_hash,
        "site_urls": sorted(subjects.site_urls),
        "url_pattern": url_pattern(subjects.site_urls),
        "removed_records": scrubbed.removed_records,
    }
    found = warehouse.query(
        "\nUNION ALL\n".join(
            f"SELECT '{table}' AS table_name, raw_hour, COUNT(*) AS n FROM {table} WHERE {condition} "
            "GROUP BY raw_hour"
            for table, condition in WAREHOUSE_CONDITIONS.items()
        ),
        params,
    )
    for row in found.itertuples():
        counts[row.table_name] += int(row.n)
    deleted_file_hours = scrubbed.deleted_file_hours
    hours = {_utc(hour) for hour in found["raw_hour"]} | set(deleted_file_hours)
    if dry_run or not hours:
        return counts
    statements = [
        f"DELETE FROM {table} WHERE {condition}" for table, condition in WAREHOUSE_CONDITIONS.items()
    ]
    statements.append(_recount_hour_loads(with_files=bool(deleted_file_hours)))
    params |= {"hours": sorted(hours), "now": datetime.now(UTC), "deleted_file_hours": deleted_file_hours}
    warehouse.run_script(statements, params)
    return counts


def _recount_hour_loads(*, with_files: bool) -> str:
    """The touched hours' hour_loads: counts as a fresh run of the rewritten files would give, and
    `loaded_at` moved on so the next analytics build rebuilds exactly these hours."""

    def rows(table: str) -> str:
        return f"(SELECT COUNT(*) FROM {table} AS t WHERE t.raw_hour = hour_loads.raw_hour)"

    valid, errors = rows(DEACTIVATIONS_TABLE.name), rows(DEACTIVATION_ERRORS.name)
    deleted_files = "(SELECT COUNT(*) FROM UNNEST(@deleted_file_hours) AS h WHERE h = hour_loads.raw_hour)"
    files = f", files = files - {deleted_files}" if with_files else ""
    return (
        f"UPDATE {HOUR_LOADS.name} SET loaded_at = @now, deactivations = {valid}, "
        f"sites = {rows(SITES_TABLE.name)}, errors = {errors}, records_read = {valid} + {errors}{files} "
        "WHERE raw_hour IN UNNEST(@hours)"
    )


def _utc(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


# --- 3c. MongoDB -----------------------------------------------------------------------------------------
def scrub_mongo(db: Database, subjects: Subjects, dry_run: bool) -> dict[str, int]:
    """Latest state, outbox and notification records of the subjects; suppressions are left alone."""
    counts = {}
    for collection, query in mongo_filters(db, subjects).items():
        if dry_run:
            counts[collection] = db[collection].count_documents(query)
        else:
            counts[collection] = db[collection].delete_many(query).deleted_count
    return counts


def mongo_filters(db: Database, subjects: Subjects) -> dict[str, dict[str, Any]]:
    """The query of each MongoDB collection that holds the subjects' documents."""
    urls = {"$in": sorted(subjects.site_urls)}
    by_site = {"project_hash": subjects.project_hash, "site_url": urls}
    filters: dict[str, dict[str, Any]] = {DEACTIVATIONS: by_site, SITES: by_site}
    for collection, (site_field, email_field) in SITE_RECORD_COLLECTIONS.items():
        matches: list[dict[str, Any]] = [{site_field: urls}]
        if subjects.email:
            matches.append({email_field: {"$regex": f"^{re.escape(subjects.email)}$", "$options": "i"}})
        filters[collection] = {"project_hash": subjects.project_hash, "$or": matches}
    return filters
