"""The hourly deactivation pipeline: raw hour folders → warehouse history + MongoDB latest state.

`build_pipeline` wires the graph (reads and writes only at its edges); `run_pipeline` is what the
CLI and the Prefect flow call. Exactly-once effect comes from two places:

* warehouse: the pipeline only stages rows; after it finished, the driver replaces the processed
  hours' slices of every table, hour_loads included, in ONE `replace_hours` transaction;
* MongoDB: conditional upserts keyed by project + site (see beam/io.py), idempotent in any order.

A crash anywhere leaves the warehouse as it was and MongoDB converging; re-running the hours fixes both.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState
from pydantic import BaseModel

from beam.io import (
    ReadRawFiles,
    StageDeadLetters,
    StageRows,
    WriteLatestState,
    WriteMailRequests,
    ensure_state_indexes,
    load_staged,
)
from beam.options import DeactivationOptions
from beam.transforms import (
    DEAD_LETTERS,
    METRICS_NAMESPACE,
    ProcessDeactivations,
    ProjectRules,
    RawFileGroup,
    registry_rules,
)
from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.hours import format_hour, hour_floor
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, SITES, connect
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
MONGO_COLLECTIONS = (DEACTIVATIONS, SITES, MAIL_OUTBOX)
#: Raw files read and parsed as one element: the collector writes many small files (down to one
#: envelope each when traffic is low), and every element and staged file has a fixed cost.
FILES_PER_GROUP = 32


class PipelineError(RuntimeError):
    """The Beam job did not finish; nothing was loaded into the warehouse."""


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
    raw_store_url: str
    gcs_endpoint: str | None
    staging_dir: str
    mongo_uri: str
    mongo_db: str


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


def build_pipeline(
    options: PipelineOptions, inputs: PipelineInputs, *, write_mongo: bool = True
) -> beam.Pipeline:
    """The graph: listed files → read → ProcessDeactivations → staged rows + MongoDB state."""
    runner = options.view_as(StandardOptions).runner
    if runner in (None, LOCAL_RUNNER):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        pipeline = beam.Pipeline(runner=FnApiRunner(), options=options)
    else:
        pipeline = beam.Pipeline(options=options)
    records_per_batch = options.view_as(DeactivationOptions).records_per_batch

    registry = beam.pvalue.AsSingleton(pipeline | "ProjectRegistry" >> beam.Create([inputs.registry]))
    contents = (
        pipeline
        | "ListedFiles" >> beam.Create(file_groups(inputs.files))
        | "SpreadFileGroups" >> beam.Reshuffle()
        | "ReadRawFiles"
        >> beam.ParDo(ReadRawFiles(inputs.raw_store_url, inputs.gcs_endpoint)).with_output_types(RawFileGroup)
    )
    processed = contents | "Process" >> ProcessDeactivations(registry, records_per_batch)
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
    if write_mongo:
        _ = events | "WriteLatestState" >> beam.ParDo(WriteLatestState(inputs.mongo_uri, inputs.mongo_db))
        _ = processed["mail_requests"] | "WriteMailRequests" >> beam.ParDo(
            WriteMailRequests(inputs.mongo_uri, inputs.mongo_db)
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
    """Process the raw hour folders `hours` and load the results; re-running changes nothing.

    `write_mongo=False` leaves MongoDB alone (the benchmark times the warehouse path by itself).
    """
    started = time.monotonic()
    hours = sorted({hour_floor(h) for h in hours})
    options = pipeline_options(settings, extra_pipeline_args)
    inputs = gather_inputs(settings, hours, options)
    tables, mongo_written = _process(options, inputs, write_mongo)
    tables[HOUR_LOADS.name] = hour_loads(hours, inputs.files, tables)
    loading = time.monotonic()
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables()
    written = warehouse.replace_hours(hours, tables)
    log.info("pipeline: warehouse load %.1fs", time.monotonic() - loading)
    summary = _summary(hours, inputs.files, tables, written, mongo_written, time.monotonic() - started)
    log.info(
        "pipeline: read %d, %d valid, %d dead letters, %.1fs",
        summary.read,
        summary.deactivations,
        sum(summary.errors.values()),
        summary.seconds,
    )
    return summary


def gather_inputs(settings: Settings, hours: list[datetime], options: PipelineOptions) -> PipelineInputs:
    """What the driver reads before the job: the hours' file listing and the project registry."""
    store = open_raw_store(settings)
    files = [(format_hour(h), f.relative_path) for h in hours for f in store.list_hour(ROUTE, h)]
    client = connect(settings)
    try:
        db = client[settings.MONGODB_DB]
        ensure_state_indexes(db)
        rules = registry_rules(load_registry(db))
    finally:
        client.close()
    log.info("pipeline: %d hour(s), %d file(s), %d project(s)", len(hours), len(files), len(rules))
    return PipelineInputs(
        files=files,
        registry=rules,
        raw_store_url=settings.RAW_STORE_URL,
        gcs_endpoint=settings.STORAGE_EMULATOR_HOST,
        staging_dir=FileSystems.join(staging_root(settings, options), uuid.uuid4().hex),
        mongo_uri=settings.MONGODB_URI,
        mongo_db=settings.MONGODB_DB,
    )


def _process(
    options: PipelineOptions, inputs: PipelineInputs, write_mongo: bool
) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """Run the job and collect its staged rows; the staging directory is removed either way."""
    started = time.monotonic()
    try:
        if inputs.files:
            mongo_written = _run_graph(options, inputs, write_mongo)
        else:
            mongo_written = dict.fromkeys(MONGO_COLLECTIONS, 0)
        log.info("pipeline: beam job %.1fs", time.monotonic() - started)
        tables = {
            table.name: load_staged(inputs.staging_dir, table)
            for table in (DEACTIVATIONS_TABLE, SITES_TABLE, DEACTIVATION_ERRORS)
        }
    finally:
        _remove_staging(inputs.staging_dir)
    return tables, mongo_written


def _run_graph(options: PipelineOptions, inputs: PipelineInputs, write_mongo: bool) -> dict[str, int]:
    """Run the Beam job to completion; returns documents written per MongoDB collection."""
    result = build_pipeline(options, inputs, write_mongo=write_mongo).run()
    state = result.wait_until_finish()
    if state != PipelineState.DONE:
        raise PipelineError(f"the Beam job ended in state {state}")
    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    written = dict.fromkeys(MONGO_COLLECTIONS, 0)
    for counter in counters:
        for collection in MONGO_COLLECTIONS:
            if counter.key.metric.name == f"mongo_{collection}_written":
                written[collection] += counter.committed or 0
    return written


def _remove_staging(staging_dir: str) -> None:
    if "://" in staging_dir:
        matched = FileSystems.match([FileSystems.join(staging_dir, "**")])[0].metadata_list
        if matched:
            FileSystems.delete([m.path for m in matched])
    else:
        shutil.rmtree(staging_dir, ignore_errors=True)


def _counts_by_hour(table: pa.Table) -> dict[datetime, int]:
    grouped = table.group_by("raw_hour").aggregate([("raw_hour", "count")]).to_pylist()
    return {row["raw_hour"]: row["raw_hour_count"] for row in grouped}


def hour_loads(hours: list[datetime], files: list[tuple[str, str]], tables: dict[str, pa.Table]) -> pa.Table:
    """One row per processed hour. Every record read is one valid event or one dead letter."""
    loaded_at = datetime.now(UTC)
    deactivations = _counts_by_hour(tables[DEACTIVATIONS_TABLE.name])
    sites = _counts_by_hour(tables[SITES_TABLE.name])
    errors = _counts_by_hour(tables[DEACTIVATION_ERRORS.name])
    rows = []
    for hour in hours:
        label = format_hour(hour)
        valid, rejected = deactivations.get(hour, 0), errors.get(hour, 0)
        rows.append(
            {
                "raw_hour": hour,
                "loaded_at": loaded_at,
                "files": sum(1 for file_hour, _ in files if file_hour == label),
                "records_read": valid + rejected,
                "deactivations": valid,
                "sites": sites.get(hour, 0),
                "errors": rejected,
            }
        )
    return rows_to_arrow(ALL_TABLES[HOUR_LOADS.name], rows)


def _summary(
    hours: list[datetime],
    files: list[tuple[str, str]],
    tables: dict[str, pa.Table],
    written: dict[str, int],
    mongo_written: dict[str, int],
    seconds: float,
) -> PipelineSummary:
    error_types = tables[DEACTIVATION_ERRORS.name].column("error_type").to_pylist()
    errors = {error_type: error_types.count(error_type) for error_type in DEAD_LETTER_TYPES}
    deactivations = tables[DEACTIVATIONS_TABLE.name].num_rows
    return PipelineSummary(
        hours=[format_hour(h) for h in hours],
        files=len(files),
        read=deactivations + len(error_types),
        deactivations=deactivations,
        sites=tables[SITES_TABLE.name].num_rows,
        errors=errors,
        rows_written={**written, **{f"mongo.{name}": count for name, count in mongo_written.items()}},
        seconds=round(seconds, 3),
    )
