"""The hourly deactivation pipeline: raw hour folders → warehouse history, then MongoDB latest state.

`build_pipeline` wires the graph (reads and writes only at its edges); `run_pipeline` is what the
CLI and the Prefect flow call. One run, in order:

1. take the lease on its hours in MongoDB (beam/hour_lock.py): a second run of the same hours
   waits, bounded, or exits naming the holder;
2. the Beam job: workers read, check and shape the records and STAGE everything they produce
   under a staging directory of the run (Parquet rows for the warehouse, NDJSON documents for
   MongoDB, the newest per site over the whole window); no store is written;
3. the driver reads only the staged files' footers (row counts per hour and error type), writes
   the hour_loads rows, checks it still holds its lease, and the warehouse loads every staged
   file in ONE `replace_hours_from_files` transaction;
4. only after that commit, a second small Beam job writes MongoDB latest state and mail_outbox
   from the staged files (parallel bulk writers; conditional upserts, equal order key replaces);
5. the staging directory is removed and the lease given back.

A failure before step 3's commit leaves the warehouse and MongoDB as they were; a failure in
step 4 leaves the warehouse committed and MongoDB partly written, and says so: re-running the
hours converges both (every step replaces, none appends). Rows never pass through the driver.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.runner import PipelineState
from pydantic import BaseModel
from pymongo.database import Database
from pymongo.errors import PyMongoError

from beam.elements import DEAD_LETTERS, METRICS_NAMESPACE, ProjectRules, RawFileGroup, registry_rules
from beam.hour_lock import HourLease, LeaseLostError, hours_locked
from beam.io import (
    MONGO_BULK_DOCUMENTS,
    STAGED_COLLECTIONS,
    ReadRawFiles,
    StageDeadLetters,
    StagedFile,
    StageLatestState,
    StageMailRequests,
    StageRows,
    WriteStagedDocuments,
    list_staged,
    list_staged_state,
)
from beam.options import DeactivationOptions
from beam.transforms import ProcessDeactivations
from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.erasure import ErasureRegister, load_erasure_register
from deactivation.hours import describe_hours, format_hour, hour_floor
from deactivation.mongo import connect, ensure_latest_state_indexes
from deactivation.projects import load_registry
from deactivation.raw_store import open_raw_store
from deactivation.schemas import ALL_TABLES, DEACTIVATION_ERRORS, HOUR_LOADS
from deactivation.schemas import DEACTIVATIONS as DEACTIVATIONS_TABLE
from deactivation.schemas import SITES as SITES_TABLE
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse, rows_to_arrow

log = logging.getLogger(__name__)

ROUTE = "deactivate"
LOCAL_RUNNER = "FnApiRunner"
SETUP_FILE = Path(__file__).resolve().parent.parent / "setup.py"
#: Raw files read and parsed as one element: the collector writes many small files (down to one
#: envelope each when traffic is low), and every element and staged file has a fixed cost.
FILES_PER_GROUP = 32
#: The tables the Beam job stages (hour_loads is written by the driver from their counts).
STAGED_TABLES = (DEACTIVATIONS_TABLE, SITES_TABLE, DEACTIVATION_ERRORS)


class PipelineError(RuntimeError):
    """The run did not complete; the message says what was and was not committed."""


class StateWriteError(PipelineError):
    """The warehouse committed the hours, but MongoDB latest state / mail_outbox were not all written."""


class PipelineSummary(BaseModel):
    hours: list[str]
    files: int
    read: int
    deactivations: int
    sites: int
    errors: dict[str, int]
    rows_written: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class PipelineInputs:
    """Everything the graph needs, gathered by the driver before the run."""

    files: list[tuple[str, str]]  # (raw hour YYYY-MM-DDTHH, path relative to the raw store)
    registry: dict[str, ProjectRules]
    erasures: ErasureRegister
    raw_store_url: str
    gcs_endpoint: str | None
    staging_dir: str
    duplicate_window_minutes: int


@dataclass(frozen=True)
class StagedRun:
    """What the Beam job left under the staging directory, as the driver sees it: files and counts."""

    tables: dict[str, list[StagedFile]]
    state: dict[str, list[str]]  # MongoDB collection → staged NDJSON files

    def paths(self) -> dict[str, list[str]]:
        return {name: [f.path for f in files] for name, files in self.tables.items()}

    def rows(self, table: str) -> int:
        return sum(f.rows for f in self.tables[table])

    def rows_by_hour(self, table: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for staged in self.tables[table]:
            counts[staged.raw_hour] = counts.get(staged.raw_hour, 0) + staged.rows
        return counts

    def error_types(self) -> dict[str, int]:
        counts = dict.fromkeys(DEAD_LETTER_TYPES, 0)
        for staged in self.tables[DEACTIVATION_ERRORS.name]:
            for error_type, count in staged.error_types.items():
                counts[error_type] = counts.get(error_type, 0) + count
        return counts


def file_groups(files: list[tuple[str, str]], size: int = FILES_PER_GROUP) -> list[tuple[str, list[str]]]:
    """(raw hour, up to `size` paths of that hour), in file order: the same listing, the same groups."""
    by_hour: dict[str, list[str]] = {}
    for raw_hour, path in files:
        by_hour.setdefault(raw_hour, []).append(path)
    return [
        (raw_hour, paths[start : start + size])
        for raw_hour, paths in by_hour.items()
        for start in range(0, len(paths), size)
    ]


def _key_by_raw_file(dead_letter):
    """DeadLetter → (its raw file, it); left unannotated, as Beam would read the hints as coders."""
    return dead_letter.raw_file, dead_letter


def _new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    runner = options.view_as(StandardOptions).runner
    if runner in (None, LOCAL_RUNNER):
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


def build_pipeline(options: PipelineOptions, inputs: PipelineInputs) -> beam.Pipeline:
    """The graph: listed files → read → ProcessDeactivations → staged rows, dead letters and state."""
    pipeline = _new_pipeline(options)
    records_per_batch = options.view_as(DeactivationOptions).records_per_batch

    registry = beam.pvalue.AsSingleton(pipeline | "ProjectRegistry" >> beam.Create([inputs.registry]))
    erasures = beam.pvalue.AsSingleton(pipeline | "ErasureRegister" >> beam.Create([inputs.erasures]))
    contents = (
        pipeline
        | "ListedFiles" >> beam.Create(file_groups(inputs.files))
        | "SpreadFileGroups" >> beam.Reshuffle()
        | "ReadRawFiles"
        >> beam.ParDo(ReadRawFiles(inputs.raw_store_url, inputs.gcs_endpoint)).with_output_types(RawFileGroup)
    )
    processed = contents | "Process" >> ProcessDeactivations(
        registry,
        erasures,
        records_per_batch=records_per_batch,
        duplicate_window_minutes=inputs.duplicate_window_minutes,
    )
    events = processed["events"]
    staging = inputs.staging_dir
    _ = events | "StageDeactivations" >> beam.ParDo(
        StageRows(staging, DEACTIVATIONS_TABLE.name, "deactivation")
    )
    _ = events | "StageSites" >> beam.ParDo(StageRows(staging, SITES_TABLE.name, "site"))
    _ = (
        processed[DEAD_LETTERS]
        | "KeyByRawFile" >> beam.Map(_key_by_raw_file)
        | "GroupByRawFile" >> beam.GroupByKey()
        | "StageDeadLetters" >> beam.ParDo(StageDeadLetters(staging))
    )
    _ = events | "StageLatestState" >> StageLatestState(staging)
    _ = processed["mail_requests"] | "StageMailRequests" >> StageMailRequests(staging)
    return pipeline


def build_state_pipeline(
    options: PipelineOptions,
    staged_state: Mapping[str, list[str]],
    mongo_uri: str,
    database: str,
    writers: int,
) -> beam.Pipeline:
    """The second job, after the warehouse commit: staged NDJSON → MongoDB, per collection."""
    pipeline = _new_pipeline(options)
    for collection, paths in staged_state.items():
        if not paths:
            continue
        _ = (
            pipeline
            | f"Staged_{collection}" >> beam.Create(paths)
            | f"Read_{collection}" >> beam.io.ReadAllFromText()
            | f"Bulk_{collection}"
            >> beam.BatchElements(min_batch_size=MONGO_BULK_DOCUMENTS, max_batch_size=MONGO_BULK_DOCUMENTS)
            | f"Write_{collection}"
            >> beam.ParDo(WriteStagedDocuments(mongo_uri, database, collection, writers))
        )
    return pipeline


def pipeline_options(settings: Settings, extra_pipeline_args: list[str] | None = None) -> PipelineOptions:
    """Runner options from settings; `extra_pipeline_args` (Beam flags) override them."""
    args = [f"--runner={settings.BEAM_RUNNER}"]
    if settings.BEAM_RUNNER == "DataflowRunner":
        args += [f"--region={settings.GCP_REGION}", f"--setup_file={SETUP_FILE}"]
        if settings.GCP_PROJECT:
            args.append(f"--project={settings.GCP_PROJECT}")
        if settings.DATAFLOW_TEMP_LOCATION:
            args.append(f"--temp_location={settings.DATAFLOW_TEMP_LOCATION}")
    return PipelineOptions([*args, *(extra_pipeline_args or [])], save_main_session=False)


def staging_root(settings: Settings, options: PipelineOptions) -> str:
    configured = options.view_as(DeactivationOptions).rows_staging_location
    if configured:
        return configured
    if options.view_as(StandardOptions).runner not in (None, LOCAL_RUNNER):
        temp_location = options.view_as(GoogleCloudOptions).temp_location
        if not temp_location:
            raise PipelineError("DataflowRunner needs --temp_location gs://... (DATAFLOW_TEMP_LOCATION)")
        return FileSystems.join(temp_location, "deactivation-staging")
    return str((settings.DATA_DIR / "staging").resolve())


def run_pipeline(
    settings: Settings,
    hours: list[datetime],
    *,
    extra_pipeline_args: list[str] | None = None,
    write_mongo: bool = True,
) -> PipelineSummary:
    """Process the raw hour folders `hours`, load the warehouse, then MongoDB; re-running converges.

    `write_mongo=False` leaves MongoDB latest state and mail_outbox alone (the benchmark times the
    warehouse path by itself). Raises HoursLockedError when another run holds the hours too long.
    """
    started = time.monotonic()
    hours = sorted({hour_floor(h) for h in hours})
    options = pipeline_options(settings, extra_pipeline_args)
    client = connect(settings)
    try:
        db = client[settings.MONGODB_DB]
        with hours_locked(
            db,
            hours,
            wait_seconds=settings.PIPELINE_LOCK_WAIT_SECONDS,
            lease_seconds=settings.PIPELINE_LOCK_LEASE_SECONDS,
        ) as lease:
            summary = _run_locked(settings, hours, options, db, lease, write_mongo, started)
    except PyMongoError as exc:
        raise PipelineError(
            f"hours {describe_hours(hours)}: MongoDB unreachable, the run could not take its hours: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        client.close()
    log.info(
        "pipeline: read %d, %d valid, %d dead letters, %.1fs",
        summary.read,
        summary.deactivations,
        sum(summary.errors.values()),
        summary.seconds,
    )
    return summary


def _run_locked(
    settings: Settings,
    hours: list[datetime],
    options: PipelineOptions,
    db: Database,
    lease: HourLease,
    write_mongo: bool,
    started: float,
) -> PipelineSummary:
    described = describe_hours(hours)
    try:
        inputs = gather_inputs(settings, hours, options, db)
    except PyMongoError as exc:
        raise PipelineError(
            f"hours {described}: cannot read the project registry, nothing changed: {exc}"
        ) from exc
    try:
        staged = _process(options, inputs)
        loads_path = _stage_hour_loads(inputs.staging_dir, hours, inputs.files, staged)
        try:
            lease.assert_held()
        except LeaseLostError as exc:
            raise PipelineError(f"hours {described}: not committed, nothing changed: {exc}") from exc
        loading = time.monotonic()
        warehouse = open_warehouse(settings)
        warehouse.ensure_tables()
        written = warehouse.replace_hours_from_files(hours, {**staged.paths(), HOUR_LOADS.name: [loads_path]})
        log.info("pipeline: warehouse load %.1fs", time.monotonic() - loading)
        if write_mongo:
            mongo_written = _write_state(settings, options, staged.state, described)
        else:
            mongo_written = dict.fromkeys(STAGED_COLLECTIONS, 0)
    finally:
        _remove_staging(inputs.staging_dir)
    return _summary(hours, inputs.files, staged, written, mongo_written, time.monotonic() - started)


def gather_inputs(
    settings: Settings, hours: list[datetime], options: PipelineOptions, db: Database
) -> PipelineInputs:
    """What the driver reads before the job: the hours' file listing, the project registry and the
    erasure register."""
    store = open_raw_store(settings)
    files = [(format_hour(h), f.relative_path) for h in hours for f in store.list_hour(ROUTE, h)]
    ensure_latest_state_indexes(db)
    rules = registry_rules(load_registry(db))
    erasures = load_erasure_register(db, settings)
    log.info("pipeline: %d hour(s), %d file(s), %d project(s)", len(hours), len(files), len(rules))
    return PipelineInputs(
        files=files,
        registry=rules,
        erasures=erasures,
        raw_store_url=settings.RAW_STORE_URL,
        gcs_endpoint=settings.STORAGE_EMULATOR_HOST,
        staging_dir=FileSystems.join(staging_root(settings, options), uuid.uuid4().hex),
        duplicate_window_minutes=settings.DUPLICATE_WINDOW_MINUTES,
    )


def _process(options: PipelineOptions, inputs: PipelineInputs) -> StagedRun:
    """Run the job; returns the staged files (their footers only)."""
    started = time.monotonic()
    if inputs.files:
        _run_to_completion(build_pipeline(options, inputs), "the Beam job")
    log.info("pipeline: beam job %.1fs", time.monotonic() - started)
    return StagedRun(
        tables={table.name: list_staged(inputs.staging_dir, table.name) for table in STAGED_TABLES},
        state=list_staged_state(inputs.staging_dir),
    )


def _run_to_completion(pipeline: beam.Pipeline, what: str):
    result = pipeline.run()
    state = result.wait_until_finish()
    if state != PipelineState.DONE:
        raise PipelineError(f"{what} ended in state {state}")
    return result


def _write_state(
    settings: Settings, options: PipelineOptions, staged_state: Mapping[str, list[str]], described: str
) -> dict[str, int]:
    """MongoDB latest state and mail_outbox from the staged files (after the warehouse commit)."""
    written = dict.fromkeys(STAGED_COLLECTIONS, 0)
    if not any(staged_state.values()):
        return written
    started = time.monotonic()
    pipeline = build_state_pipeline(
        options, staged_state, settings.MONGODB_URI, settings.MONGODB_DB, settings.MONGODB_STATE_WRITERS
    )
    try:
        result = _run_to_completion(pipeline, "the MongoDB state job")
    except Exception as exc:
        raise StateWriteError(
            f"hours {described}: the warehouse holds them, but MongoDB latest state and mail_outbox "
            f"were not all written ({_last_line(exc)}); re-run these hours once MongoDB is reachable, "
            "a re-run rewrites them"
        ) from exc
    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    for counter in counters:
        for collection in STAGED_COLLECTIONS:
            if counter.key.metric.name == f"mongo_{collection}_written":
                written[collection] += counter.committed or 0
    log.info("pipeline: MongoDB state %.1fs, %s", time.monotonic() - started, written)
    return written


def _last_line(exc: BaseException) -> str:
    """A runner's exception carries the worker's whole traceback; its last line says what failed."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1][:500] if lines else ''}"


def _remove_staging(staging_dir: str) -> None:
    if "://" in staging_dir:
        matched = FileSystems.match([FileSystems.join(staging_dir, "**")])[0].metadata_list
        if matched:
            FileSystems.delete([m.path for m in matched])
    else:
        shutil.rmtree(staging_dir, ignore_errors=True)


def hour_loads_rows(hours: list[datetime], files: list[tuple[str, str]], staged: StagedRun) -> list[dict]:
    """One row per processed hour, from the staged files' counts. Every record read is one valid
    event or one dead letter."""
    loaded_at = datetime.now(UTC)
    deactivations = staged.rows_by_hour(DEACTIVATIONS_TABLE.name)
    sites = staged.rows_by_hour(SITES_TABLE.name)
    errors = staged.rows_by_hour(DEACTIVATION_ERRORS.name)
    rows = []
    for hour in hours:
        label = format_hour(hour)
        valid, rejected = deactivations.get(label, 0), errors.get(label, 0)
        rows.append(
            {
                "raw_hour": hour,
                "loaded_at": loaded_at,
                "files": sum(1 for file_hour, _ in files if file_hour == label),
                "records_read": valid + rejected,
                "deactivations": valid,
                "sites": sites.get(label, 0),
                "errors": rejected,
            }
        )
    return rows


def _stage_hour_loads(
    staging_dir: str, hours: list[datetime], files: list[tuple[str, str]], staged: StagedRun
) -> str:
    """The hour_loads rows (one per hour: tiny) as one more staged file, loaded with the rest."""
    path = FileSystems.join(staging_dir, HOUR_LOADS.name, "hour_loads.parquet")
    frame = rows_to_arrow(ALL_TABLES[HOUR_LOADS.name], hour_loads_rows(hours, files, staged))
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as sink:
        pq.write_table(frame, sink)
    return path


def _summary(
    hours: list[datetime],
    files: list[tuple[str, str]],
    staged: StagedRun,
    written: dict[str, int],
    mongo_written: dict[str, int],
    seconds: float,
) -> PipelineSummary:
    errors = staged.error_types()
    deactivations = staged.rows(DEACTIVATIONS_TABLE.name)
    return PipelineSummary(
        hours=[format_hour(h) for h in hours],
        files=len(files),
        read=deactivations + sum(errors.values()),
        deactivations=deactivations,
        sites=staged.rows(SITES_TABLE.name),
        errors=errors,
        rows_written={**written, **{f"mongo.{name}": count for name, count in mongo_written.items()}},
        seconds=round(seconds, 3),
    )
