"""The pipeline's edges: reading raw files, staging what it produced, writing MongoDB state.

Nothing the pipeline produces is written to a store from inside the Beam job. Workers stage it
under the run's staging directory (local or gs://), and the driver only handles file lists:

* warehouse rows: one Parquet file per batch (named by its deterministic batch id, so a retried
  bundle overwrites rather than duplicates) with the warehouse schema; the hour and, for dead
  letters, the count per error type ride in the file's key-value metadata, so the driver counts
  rows from the files' footers without reading a row. The warehouse loads the files itself
  (DuckDB `read_parquet`, BigQuery a load job) in ONE `replace_hours_from_files` transaction;
* MongoDB latest state: the newest document per project + site over the whole window (a keyed
  combine), one NDJSON line each; mail_outbox requests the same way. They are written only after
  the warehouse commit, by a second small Beam job (`build_state_pipeline`) of parallel bulk
  writers, so a failed commit leaves MongoDB untouched.

Latest state is written with conditional upserts: replace the document where the stored
`order_key` (received_at + event_id, fixed-width text, so it sorts in time) is older OR EQUAL.
An older event never overwrites a newer one in any processing order, and re-running an hour
rewrites the documents it is the newest source for, so state converges to what history says
(a project's changed custom-field whitelist, a document damaged by hand).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from pymongo import MongoClient, ReplaceOne
from pymongo.errors import BulkWriteError

from beam.elements import METRICS_NAMESPACE, RawFileContent, RawFileGroup
from deactivation.envelope import parse_timestamp
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, SITES
from deactivation.raw_store import raw_store_at
from deactivation.schemas import ALL_TABLES, DEACTIVATION_ERRORS, Table
from deactivation.warehouse import arrow_schema

DUPLICATE_KEY = 11000
PARQUET_SUFFIX = ".parquet"
STATE_SUFFIX = ".ndjson"
#: Parquet key-value metadata the driver reads from a staged file's footer.
HOUR_KEY = b"deactivation.raw_hour"
ERROR_TYPES_KEY = b"deactivation.error_types"
#: MongoDB collections written from staged NDJSON after the commit (latest state, then the outbox).
STATE_COLLECTIONS = (DEACTIVATIONS, SITES)
STAGED_COLLECTIONS = (*STATE_COLLECTIONS, MAIL_OUTBOX)
#: Documents per bulk write of the state writers.
MONGO_BULK_DOCUMENTS = 1000
#: Latest-state documents a staging worker holds per bundle before it writes a candidate file.
MAX_HELD_DOCUMENTS = 50_000
#: A worker that cannot reach MongoDB gives up after this long (then the run fails and says so).
MONGO_SELECTION_TIMEOUT_MS = 10_000


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


# --- Staging warehouse rows (Parquet, by workers) ----------------------------------------------------
def _text_schema(table: Table) -> pa.Schema:
    """The warehouse schema with timestamps as their envelope text, as the rows carry them."""
    types = {"STRING": pa.string(), "INT64": pa.int64(), "BOOL": pa.bool_(), "TIMESTAMP": pa.string()}
    return pa.schema([pa.field(c.name, types[c.type]) for c in table.columns])


def staging_schema(table: Table) -> pa.Schema:
    """The warehouse schema, every column nullable: the warehouse's INSERT enforces REQUIRED."""
    return pa.schema([f.with_nullable(True) for f in arrow_schema(table)])


def staged_frame(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    """Row dicts → an Arrow table of the staging schema (timestamps parsed from their text)."""
    # Arrow converts a list of dicts to a struct array in C++, faster than building columns here.
    struct = pa.array(rows, type=pa.struct(list(_text_schema(table))))
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(struct)]).cast(staging_schema(table))


def write_staged(
    path: str, table: Table, rows: list[dict[str, Any]], metadata: Mapping[bytes, bytes]
) -> None:
    frame = staged_frame(table, rows).replace_schema_metadata(dict(metadata))
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as sink:
        pq.write_table(frame, sink)


def staged_table_dir(staging_dir: str, table_name: str) -> str:
    return FileSystems.join(staging_dir, table_name)


class StageRows(beam.DoFn):
    """Batch of ValidEvent → one staged Parquet file of a warehouse table (the event's `field` row)."""

    def __init__(self, staging_dir: str, table_name: str, field: str) -> None:
        self.staging_dir = staging_dir
        self.table_name = table_name
        self.field = field

    def process(self, batch):
        rows = [getattr(event, self.field) for event in batch.items]
        path = FileSystems.join(
            staged_table_dir(self.staging_dir, self.table_name), batch.batch_id + PARQUET_SUFFIX
        )
        write_staged(path, ALL_TABLES[self.table_name], rows, {HOUR_KEY: batch.raw_hour.encode()})


class StageDeadLetters(beam.DoFn):
    """(raw_file, dead letters of that file) → one staged Parquet file of `deactivation_errors`."""

    def __init__(self, staging_dir: str) -> None:
        self.staging_dir = staging_dir

    def process(self, keyed):
        raw_file, dead_letters = keyed
        dead_letters = list(dead_letters)
        rows = sorted((d.to_row() for d in dead_letters), key=lambda row: row["raw_line"])
        error_types: dict[str, int] = {}
        for dead_letter in dead_letters:
            error_types[dead_letter.error_type] = error_types.get(dead_letter.error_type, 0) + 1
        metadata = {
            HOUR_KEY: dead_letters[0].raw_hour.encode(),
            ERROR_TYPES_KEY: json.dumps(error_types).encode(),
        }
        file_key = raw_file.replace("/", "_")
        path = FileSystems.join(
            staged_table_dir(self.staging_dir, DEACTIVATION_ERRORS.name), file_key + PARQUET_SUFFIX
        )
        write_staged(path, DEACTIVATION_ERRORS, rows, metadata)


@dataclass(frozen=True)
class StagedFile:
    """What the driver knows of one staged file: its footer, never its rows."""

    path: str
    raw_hour: str  # YYYY-MM-DDTHH
    rows: int
    error_types: dict[str, int] = field(default_factory=dict)


def list_staged(staging_dir: str, table_name: str) -> list[StagedFile]:
    """Every staged Parquet file of `table_name`, in path order, summarised from its footer."""
    pattern = FileSystems.join(staged_table_dir(staging_dir, table_name), "*" + PARQUET_SUFFIX)
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    staged = []
    for path in paths:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source:
            footer = pq.read_metadata(source)
        metadata = footer.metadata or {}
        staged.append(
            StagedFile(
                path=path,
                raw_hour=metadata[HOUR_KEY].decode(),
                rows=footer.num_rows,
                error_types=json.loads(metadata.get(ERROR_TYPES_KEY, b"{}")),
            )
        )
    return staged


# --- Staging MongoDB state (NDJSON, newest per site over the whole window) --------------------------
def state_document(row: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A warehouse row as the latest-state document of its project + site (received_at as text,
    as staged; `mongo_document` makes it a datetime when written)."""
    document = {
        **row,
        **(extra or {}),
        "_id": f"{row['project_hash']}|{row['site_url']}",
        "order_key": f"{row['received_at']}|{row['event_id']}",
    }
    document.pop("raw_hour", None)
    return document


def mongo_document(document: dict[str, Any]) -> dict[str, Any]:
    """A staged document as MongoDB stores it: received_at a datetime (the dashboard sorts on it)."""
    received_at = document["received_at"]
    if isinstance(received_at, str):
        return {**document, "received_at": parse_timestamp(received_at)}
    return document


def latest_per_site(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the newest document per project + site needs writing."""
    newest: dict[str, dict[str, Any]] = {}
    for document in documents:
        _keep_newer(newest, document)
    return list(newest.values())


def _keep_newer(newest: dict[str, dict[str, Any]], document: dict[str, Any]) -> None:
    current = newest.get(document["_id"])
    if current is None or document["order_key"] > current["order_key"]:
        newest[document["_id"]] = document


def _contact_fields(contact: dict[str, str] | None) -> dict[str, Any]:
    """The admin contact, kept in MongoDB `sites` for the dashboard (never in the warehouse)."""
    if contact is None:
        return {"admin_email": None, "first_name": None, "last_name": None}
    return {
        "admin_email": contact["email"],
        "first_name": contact["first_name"],
        "last_name": contact["last_name"],
    }


class _StageBundleCandidates(beam.DoFn):
    """Batches of ValidEvent → the bundle's newest document per project + site and collection,
    written by the worker to a candidate NDJSON file under the staging directory; out, per
    collection: (_id, (order_key, candidate file, line number)), a few dozen bytes per site.

    The keyed combine after it then shuffles keys and positions, never documents: the documents
    stay in the files their workers wrote, so a runner that keeps its shuffle in memory (the local
    FnApiRunner) holds about a hundred bytes per site instead of the document. At most
    MAX_HELD_DOCUMENTS are held per bundle before they are written out. A retried bundle writes
    new files (uuid names); only positions that reached the combine are ever read.
    """

    def __init__(self, staging_dir: str) -> None:
        self.staging_dir = staging_dir

    def start_bundle(self) -> None:
        self.newest: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in STATE_COLLECTIONS}

    def process(self, batch):
        deactivations, sites = self.newest[DEACTIVATIONS], self.newest[SITES]
        for event in batch.items:
            _keep_newer(deactivations, state_document(event.deactivation))
            _keep_newer(sites, state_document(event.site, _contact_fields(event.contact)))
        if len(deactivations) + len(sites) > MAX_HELD_DOCUMENTS:
            for collection, keyed in self._flush():
                yield pvalue.TaggedOutput(collection, keyed)

    def finish_bundle(self):
        for collection, keyed in self._flush():
            yield pvalue.TaggedOutput(collection, WindowedValue(keyed, MIN_TIMESTAMP, [GlobalWindow()]))

    def _flush(self):
        held, self.newest = self.newest, {c: {} for c in STATE_COLLECTIONS}
        for collection, documents in held.items():
            if not documents:
                continue
            path = FileSystems.join(
                self.staging_dir, f"candidates_{collection}", uuid.uuid4().hex + STATE_SUFFIX
            )
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as sink:
                sink.write(b"\n".join(orjson.dumps(document) for document in documents.values()))
            for line, document in enumerate(documents.values()):
                yield collection, (document["_id"], (document["order_key"], path, line))


def _position(keyed) -> tuple[str, int]:
    """(_id, (order_key, candidate file, line)) → (candidate file, line); of equal order keys (the
    same event staged by two bundles) either copy is the same document."""
    _order_key, path, line = keyed[1]
    return path, line


class _ReadChosenLines(beam.DoFn):
    """(candidate file, the line numbers the combine chose there) → those lines."""

    def process(self, element):
        path, lines = element
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source:
            candidates = source.read().split(b"\n")
        for line in sorted(lines):
            yield candidates[line]


def _request_lines(batch) -> bytes:
    """A batch of requests as one NDJSON block (WriteToText adds the last newline): one element
    per batch, not per request."""
    return b"\n".join(orjson.dumps(request) for request in batch.items)


def staged_state_prefix(staging_dir: str, collection: str) -> str:
    return FileSystems.join(staging_dir, f"mongo_{collection}", "part")


class StageLatestState(beam.PTransform):
    """Batches of ValidEvent → the newest document per project + site over the WHOLE window, per
    collection, staged as NDJSON (one MongoDB write per site per run, not per batch).

    A keyed combine over (order_key, position) picks each site's newest candidate; grouping the
    winners by candidate file reads each file once, for the lines it won.
    """

    def __init__(self, staging_dir: str) -> None:
        super().__init__()
        self.staging_dir = staging_dir

    def expand(self, events):
        keyed = events | "StageCandidates" >> beam.ParDo(
            _StageBundleCandidates(self.staging_dir)
        ).with_outputs(*STATE_COLLECTIONS)
        return {
            collection: (
                keyed[collection]
                | f"Newest_{collection}" >> beam.CombinePerKey(max)
                | f"Position_{collection}" >> beam.Map(_position)
                | f"ByCandidateFile_{collection}" >> beam.GroupByKey()
                | f"ReadChosen_{collection}" >> beam.ParDo(_ReadChosenLines())
                | f"Stage_{collection}"
                >> beam.io.WriteToText(
                    staged_state_prefix(self.staging_dir, collection), file_name_suffix=STATE_SUFFIX
                )
            )
            for collection in STATE_COLLECTIONS
        }


class StageMailRequests(beam.PTransform):
    """Batches of mail-outbox requests → NDJSON under the staging directory."""

    def __init__(self, staging_dir: str) -> None:
        super().__init__()
        self.staging_dir = staging_dir

    def expand(self, requests):
        return (
            requests
            | "RequestLines" >> beam.Map(_request_lines)
            | "StageRequests"
            >> beam.io.WriteToText(
                staged_state_prefix(self.staging_dir, MAIL_OUTBOX), file_name_suffix=STATE_SUFFIX
            )
        )


def list_staged_state(staging_dir: str) -> dict[str, list[str]]:
    """Staged NDJSON files per MongoDB collection (empty shards left out)."""
    found = {}
    for collection in STAGED_COLLECTIONS:
        pattern = staged_state_prefix(staging_dir, collection) + "*" + STATE_SUFFIX
        matched = FileSystems.match([pattern])[0].metadata_list
        found[collection] = sorted(m.path for m in matched if m.size_in_bytes > 0)
    return found


# --- MongoDB -----------------------------------------------------------------------------------------
def upsert_if_newer(collection, documents: list[dict[str, Any]]) -> int:
    """Write each document unless the stored one is newer; returns documents written.

    Sites not stored yet (most of an hour's) are inserted as one batch, the server's cheap path.
    A site already stored collides there on `_id` and gets a conditional replace instead: replace
    where the stored order key is older or equal (equal replaces, so a re-run repairs). A stored
    document that is newer makes the replace's upsert collide on `_id` too: that is the "keep the
    newer state" outcome. A concurrent writer of the same site (another hour's run) can make a
    replace collide as well, so colliding replaces are tried once more, when the filter decides.
    """
    pending = [mongo_document(d) for d in documents]
    if not pending:
        return 0
    try:
        return len(collection.insert_many(pending, ordered=False).inserted_ids)
    except BulkWriteError as error:
        written, pending = _collided(error, pending, "nInserted")
    for _attempt in range(2):
        if not pending:
            break
        operations = [
            ReplaceOne({"_id": d["_id"], "order_key": {"$lte": d["order_key"]}}, d, upsert=True)
            for d in pending
        ]
        try:
            result = collection.bulk_write(operations, ordered=False)
            return written + result.upserted_count + result.matched_count
        except BulkWriteError as error:
            done, pending = _collided(error, pending, "nUpserted", "nMatched")
            written += done
    return written


def _collided(
    error: BulkWriteError, documents: list[dict[str, Any]], *written_counts: str
) -> tuple[int, list[dict[str, Any]]]:
    """An unordered bulk write that failed only on `_id` collisions → (documents written, the
    documents that collided); any other write error is raised."""
    details = error.details
    if any(e["code"] != DUPLICATE_KEY for e in details["writeErrors"]):
        raise error
    written = sum(details[count] for count in written_counts)
    return written, [documents[e["index"]] for e in details["writeErrors"]]


def insert_mail_requests(collection, requests: list[dict[str, Any]]) -> int:
    """Queue outbox requests; an existing request (maybe already sent) is left alone: its insert
    collides on `_id` and is skipped. Returns the requests newly queued."""
    if not requests:
        return 0
    try:
        return len(collection.insert_many([mongo_document(r) for r in requests], ordered=False).inserted_ids)
    except BulkWriteError as error:
        return _collided(error, requests, "nInserted")[0]


class WriteStagedDocuments(beam.DoFn):
    """Batches of staged NDJSON lines → MongoDB, with up to `writers` bulk writes in flight.

    pymongo releases the GIL while it waits for the server, so a few threads per worker keep the
    server busy; every write finishes (or fails the bundle) before the bundle ends.
    """

    def __init__(self, mongo_uri: str, database: str, collection: str, writers: int) -> None:
        self.mongo_uri = mongo_uri
        self.database = database
        self.collection = collection
        self.writers = writers
        self.written = Metrics.counter(METRICS_NAMESPACE, f"mongo_{collection}_written")

    def setup(self) -> None:
        self.client = MongoClient(
            self.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=MONGO_SELECTION_TIMEOUT_MS
        )
        self.pool = ThreadPoolExecutor(self.writers, thread_name_prefix=f"mongo-{self.collection}")

    def start_bundle(self) -> None:
        self.in_flight: list[Future] = []

    def process(self, lines):
        documents = [orjson.loads(line) for line in lines]
        write = insert_mail_requests if self.collection == MAIL_OUTBOX else upsert_if_newer
        self.in_flight.append(self.pool.submit(write, self.client[self.database][self.collection], documents))
        if len(self.in_flight) >= 2 * self.writers:  # bounded: at most 2 × writers batches in memory
            self._drain(keep=self.writers)

    def finish_bundle(self) -> None:
        self._drain(keep=0)

    def _drain(self, keep: int) -> None:
        while len(self.in_flight) > keep:
            self.written.inc(self.in_flight.pop(0).result())

    def teardown(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
