"""The pipeline's edges: reading raw files, staging warehouse rows, writing MongoDB state.

Warehouse rows are not written to the warehouse from inside the pipeline: each batch is staged as
one Arrow IPC file under a run's staging directory (local or gs://), named by its deterministic
batch id so a retried bundle overwrites rather than duplicates, and the driver loads all staged
rows with ONE `replace_hours` transaction after the pipeline finished (see pipeline.py).

MongoDB keeps the latest state per project + site. Every write is a conditional upsert: replace
the document only if the stored `order_key` (received_at + event_id, fixed-width text, so it sorts
in time) is smaller, so an older event never overwrites a newer one in any processing order.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from beam.transforms import METRICS_NAMESPACE, RawFileContent, RawFileGroup, ValidEvent
from deactivation.envelope import parse_timestamp
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, SITES
from deactivation.raw_store import raw_store_at
from deactivation.schemas import ALL_TABLES, Table
from deactivation.warehouse import arrow_schema

DUPLICATE_KEY = 11000
STAGING_SUFFIX = ".arrow"


# --- Reading -----------------------------------------------------------------------------------------
class ReadRawFiles(beam.DoFn):
    """(raw_hour, [relative paths]) → RawFileGroup: whole files, read at once."""

    def __init__(self, store_url: str, gcs_endpoint: str | None = None) -> None:
        self.store_url = store_url
        self.gcs_endpoint = gcs_endpoint
        self.files = Metrics.counter(METRICS_NAMESPACE, "files_read")

    def setup(self) -> None:
        self.store = raw_store_at(self.store_url, gcs_endpoint=self.gcs_endpoint)

    def process(self, file_group):
        raw_hour, relative_paths = file_group
        self.files.inc(len(relative_paths))
        yield RawFileGroup(
            raw_hour, [RawFileContent(raw_hour, p, self.store.read_bytes(p)) for p in relative_paths]
        )


# --- Staging warehouse rows --------------------------------------------------------------------------
def staging_schema(table: Table) -> pa.Schema:
    """The warehouse schema with timestamps as their envelope text; the driver casts once at load."""
    types = {"STRING": pa.string(), "INT64": pa.int64(), "BOOL": pa.bool_(), "TIMESTAMP": pa.string()}
    return pa.schema([pa.field(c.name, types[c.type]) for c in table.columns])


def write_staged(path: str, table: Table, rows: list[dict[str, Any]]) -> None:
    schema = staging_schema(table)
    # Arrow converts a list of dicts to a struct array in C++, faster than building columns here.
    frame = pa.RecordBatch.from_struct_array(pa.array(rows, type=pa.struct(list(schema))))
    with FileSystems.create(path) as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_batch(frame)


class StageRows(beam.DoFn):
    """Batch of ValidEvent → one staged file of a warehouse table (the event's `field` row)."""

    def __init__(self, staging_dir: str, table_name: str, field: str) -> None:
        self.staging_dir = staging_dir
        self.table_name = table_name
        self.field = field

    def process(self, batch):
        rows = [getattr(event, self.field) for event in batch.items]
        path = FileSystems.join(self.staging_dir, self.table_name, batch.batch_id + STAGING_SUFFIX)
        write_staged(path, ALL_TABLES[self.table_name], rows)


class StageDeadLetters(beam.DoFn):
    """(raw_file, dead letters of that file) → one staged file of `deactivation_errors`."""

    def __init__(self, staging_dir: str) -> None:
        self.staging_dir = staging_dir

    def process(self, keyed):
        raw_file, dead_letters = keyed
        rows = sorted((d.to_row() for d in dead_letters), key=lambda row: row["raw_line"])
        file_key = raw_file.replace("/", "_")
        path = FileSystems.join(self.staging_dir, "deactivation_errors", file_key + STAGING_SUFFIX)
        write_staged(path, ALL_TABLES["deactivation_errors"], rows)


def load_staged(staging_dir: str, table: Table) -> pa.Table:
    """Every staged row of `table`, cast to the warehouse schema."""
    pattern = FileSystems.join(staging_dir, table.name, "*" + STAGING_SUFFIX)
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    parts = []
    for path in paths:
        with FileSystems.open(path) as source:
            parts.append(pa.ipc.open_file(pa.BufferReader(source.read())).read_all())
    staged = pa.concat_tables(parts) if parts else staging_schema(table).empty_table()
    return staged.cast(arrow_schema(table))


# --- MongoDB -----------------------------------------------------------------------------------------
def ensure_state_indexes(db: Database) -> None:
    """The indexes the dashboard's paginated lists and the conditional upserts need."""
    by_site = [("project_hash", ASCENDING), ("site_url", ASCENDING)]
    for collection in (DEACTIVATIONS, SITES):
        db[collection].create_index(by_site, unique=True, name="project_site_unique")
        db[collection].create_index(
            [("project_hash", ASCENDING), ("received_at", DESCENDING)], name="project_time"
        )
    db[DEACTIVATIONS].create_index(
        [("project_hash", ASCENDING), ("reason_id", ASCENDING), ("received_at", DESCENDING)],
        name="project_reason_time",
    )
    db[MAIL_OUTBOX].create_index([("status", ASCENDING), ("received_at", ASCENDING)], name="status_time")
    db[MAIL_OUTBOX].create_index("event_id", name="event_id")


def state_document(row: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A warehouse row as the latest-state document of its project + site."""
    document = {
        **row,
        **(extra or {}),
        "_id": f"{row['project_hash']}|{row['site_url']}",
        "order_key": f"{row['received_at']}|{row['event_id']}",
        "received_at": parse_timestamp(row["received_at"]),
    }
    document.pop("raw_hour", None)
    return document


def latest_per_site(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within one batch, only the newest document per project + site needs writing."""
    newest: dict[str, dict[str, Any]] = {}
    for document in documents:
        current = newest.get(document["_id"])
        if current is None or document["order_key"] > current["order_key"]:
            newest[document["_id"]] = document
    return list(newest.values())


def upsert_if_newer(collection, documents: list[dict[str, Any]]) -> int:
    """Replace each document only where the stored one is older; returns documents changed.

    A stored document that is newer or equal makes the upsert's insert collide on `_id`
    (duplicate key): that is the "keep the newer state" outcome. A collision can also come from
    a concurrent first insert of the same site, so colliding writes are tried once more, when the
    document certainly exists and the filter decides alone.
    """
    changed = 0
    pending = documents
    for _attempt in range(2):
        if not pending:
            break
        operations = [
            ReplaceOne({"_id": d["_id"], "order_key": {"$lt": d["order_key"]}}, d, upsert=True)
            for d in pending
        ]
        try:
            result = collection.bulk_write(operations, ordered=False)
            return changed + result.upserted_count + result.modified_count
        except BulkWriteError as error:
            details = error.details
            others = [e for e in details["writeErrors"] if e["code"] != DUPLICATE_KEY]
            if others:
                raise
            changed += details["nUpserted"] + details["nModified"]
            pending = [pending[e["index"]] for e in details["writeErrors"]]
    return changed


class _MongoWriter(beam.DoFn):
    """A DoFn holding one MongoDB client per worker."""

    def __init__(self, mongo_uri: str, database: str) -> None:
        self.mongo_uri = mongo_uri
        self.database = database

    def setup(self) -> None:
        self.client = MongoClient(self.mongo_uri, tz_aware=True)
        self.db = self.client[self.database]

    def teardown(self) -> None:
        self.client.close()


class WriteLatestState(_MongoWriter):
    """Batch of ValidEvent → latest deactivation and latest site per project + site (one bulk each)."""

    def __init__(self, mongo_uri: str, database: str) -> None:
        super().__init__(mongo_uri, database)
        self.deactivations = Metrics.counter(METRICS_NAMESPACE, f"mongo_{DEACTIVATIONS}_written")
        self.sites = Metrics.counter(METRICS_NAMESPACE, f"mongo_{SITES}_written")

    def process(self, batch):
        events: list[ValidEvent] = batch.items
        deactivations = latest_per_site([state_document(e.deactivation) for e in events])
        sites = latest_per_site([state_document(e.site, _contact_fields(e.contact)) for e in events])
        self.deactivations.inc(upsert_if_newer(self.db[DEACTIVATIONS], deactivations))
        self.sites.inc(upsert_if_newer(self.db[SITES], sites))


def _contact_fields(contact: dict[str, str] | None) -> dict[str, Any]:
    """The admin contact, kept in MongoDB `sites` for the dashboard (never in the warehouse)."""
    if contact is None:
        return {"admin_email": None, "first_name": None, "last_name": None}
    return {
        "admin_email": contact["email"],
        "first_name": contact["first_name"],
        "last_name": contact["last_name"],
    }


class WriteMailRequests(_MongoWriter):
    """Batch of outbox requests → mail_outbox; an existing request (maybe already sent) is left alone."""

    def __init__(self, mongo_uri: str, database: str) -> None:
        super().__init__(mongo_uri, database)
        self.written = Metrics.counter(METRICS_NAMESPACE, f"mongo_{MAIL_OUTBOX}_written")

    def process(self, batch):
        operations = [
            UpdateOne(
                {"_id": request["_id"]},
                {"$setOnInsert": {**request, "received_at": parse_timestamp(request["received_at"])}},
                upsert=True,
            )
            for request in batch.items
        ]
        result = self.db[MAIL_OUTBOX].bulk_write(operations, ordered=False)
        self.written.inc(result.upserted_count)
