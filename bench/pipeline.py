"""Benchmark: the whole pipeline run (warehouse AND MongoDB) against DuckDB `read_json` on the same hour.

    .venv/bin/python bench/pipeline.py                            # 100k and 1M events
    .venv/bin/python bench/pipeline.py --events 3000000           # one size only (repeatable)
    .venv/bin/python bench/pipeline.py --events 100000 --in-process

For each size it generates one hour of realistic events (deactivation/generator.py) in the
collector's layout (NDJSON group-commit files of 256 envelopes), then, each phase in a fresh
process so its peak RSS is its own:

* baseline: DuckDB `read_json` of every file into a table (every field parsed);
* pipeline: `run_pipeline` end to end, as the hourly run does it: the lease, the Beam job that
  stages Parquet rows and the newest state per site, the one warehouse transaction, and the
  second job that writes MongoDB latest state and mail_outbox (parallel bulk writers).

The driver and the workers are measured apart. On Dataflow the driver (a Cloud Run job) only
launches jobs and reads file footers while workers do the work; here each Beam job runs in a child
process standing in for Dataflow (the FnApiRunner, whose runner also holds the job's shuffle), so
"driver peak RSS" is `run_pipeline`'s own process and "workers peak RSS" the largest job process.
`--in-process` runs the jobs inside the driver instead (one number for both, as before).

Prints one line per measurement and a JSON object per size as the last lines.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOUR = datetime(2026, 11, 27, 12, tzinfo=UTC)
GENERATE_CHUNK = 100_000


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


class _Stopwatch:
    """Wall and CPU seconds (all threads of this process): on a shared machine the CPU time is the
    steadier measure of the work done."""

    def __enter__(self) -> _Stopwatch:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        self.children_started = _children_cpu()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started + _children_cpu() - self.children_started

    def result(self, rows: int, **extra) -> dict:
        return {
            "rows": rows,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "peak_rss_mb": _peak_rss_mb(),
            **extra,
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _settings(root: Path, mongo_uri: str):
    from deactivation.settings import Settings

    return Settings(
        RAW_STORE_URL=str(root / "raw"),
        WAREHOUSE_URL=f"duckdb:///{root / 'warehouse.duckdb'}",
        MONGODB_URI=mongo_uri,
        MONGODB_DB="bench",
        DATA_DIR=root / "data",
        LOG_LEVEL="WARNING",
        _env_file=None,
    )


def generate(root: Path, events: int) -> int:
    """Write `events` events of one hour into the raw store (in chunks, to bound memory)."""
    from deactivation.generator import generate_events, write_to_raw_store
    from deactivation.raw_store import LocalRawStore

    store = LocalRawStore(str(root / "raw"))
    files = 0
    for chunk, start in enumerate(range(0, events, GENERATE_CHUNK)):
        generated = generate_events(
            seed=chunk,
            start_hour=HOUR,
            hours=1,
            events_per_hour=min(GENERATE_CHUNK, events - start),
            sites_per_project=events,  # the whole hour's pool: chunks draw from the same sites
        )
        files += len(write_to_raw_store(store, generated.envelopes))
    return files


def duckdb_baseline(root: Path) -> dict:
    import duckdb

    from deactivation.raw_store import hour_path

    pattern = str(root / "raw" / hour_path("deactivate", HOUR) / "*.*json")
    connection = duckdb.connect()
    with _Stopwatch() as watch:
        connection.execute(
            f"CREATE TABLE envelopes AS SELECT * FROM read_json('{pattern}', format='newline_delimited')"
        )
    return watch.result(connection.execute("SELECT count(*) FROM envelopes").fetchone()[0])


# --- Beam jobs in a child process (standing in for Dataflow) ----------------------------------------


def _run_job_in_child(builder_name: str, settings, pipeline_args: list[str], args: tuple) -> dict:
    """Build and run one of beam.pipeline's jobs here; returns its counters and wall seconds."""
    from apache_beam.metrics.metric import MetricsFilter

    import beam.pipeline
    from beam.elements import METRICS_NAMESPACE

    options = beam.pipeline.pipeline_options(settings, pipeline_args)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = getattr(beam.pipeline, builder_name)(options, *args).run()
    state = result.wait_until_finish()
    cpu_seconds = time.process_time() - cpu_started
    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    return {
        "state": str(state),
        "counters": [(c.key.metric.name, c.committed or 0) for c in counters],
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


class _ChildJob:
    """What build_pipeline / build_state_pipeline return in the driver: run() runs it in a child."""

    def __init__(self, builder_name: str, settings, pipeline_args: list[str], args: tuple, log: list) -> None:
        self.call = (builder_name, settings, pipeline_args, args)
        self.log = log

    def run(self):
        from apache_beam.runners.runner import PipelineState

        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            ran = pool.submit(_run_job_in_child, *self.call).result()
        measured = ("seconds", "cpu_seconds", "peak_rss_mb")
        self.log.append({"job": self.call[0], **{name: ran[name] for name in measured}})
        counters = [
            SimpleNamespace(key=SimpleNamespace(metric=SimpleNamespace(name=n)), committed=v)
            for n, v in ran["counters"]
        ]
        done = PipelineState.DONE if ran["state"] == str(PipelineState.DONE) else ran["state"]
        return SimpleNamespace(
            wait_until_finish=lambda: done,
            metrics=lambda: SimpleNamespace(query=lambda _filter: {"counters": counters}),
        )


def beam_pipeline(root: Path, mongo_uri: str, pipeline_args: list[str], in_process: bool) -> dict:
    import beam.pipeline
    from deactivation.warehouse import DuckDBWarehouse

    settings = _settings(root, mongo_uri)
    jobs: list[dict] = []
    if not in_process:
        for name in ("build_pipeline", "build_state_pipeline"):
            beam.pipeline.__dict__[name] = lambda _options, *args, _name=name: _ChildJob(
                _name, settings, pipeline_args, args, jobs
            )
    # The local warehouse is DuckDB embedded in the driver process, so its load counts in the
    # driver's peak; on BigQuery the load runs in BigQuery. Note the peak before and the load's time.
    load = {}
    replace = DuckDBWarehouse.replace_hours_from_files

    def timed_replace(self, hours, staged):
        load["peak_before_mb"] = _peak_rss_mb()
        started = time.perf_counter()
        written = replace(self, hours, staged)
        load["seconds"] = time.perf_counter() - started
        return written

    DuckDBWarehouse.replace_hours_from_files = timed_replace
    with _Stopwatch() as watch:
        summary = beam.pipeline.run_pipeline(settings, [HOUR], extra_pipeline_args=pipeline_args)
    return watch.result(summary.read, summary=summary.model_dump(), jobs=jobs, warehouse_load=load)


def _report(events: int, name: str, measured: dict) -> None:
    print(
        f"[{events}] {name}: {measured['rows']} records in {measured['seconds']:.2f}s = "
        f"{measured['rows'] / measured['seconds']:,.0f}/s wall, "
        f"{measured['rows'] / measured['cpu_seconds']:,.0f}/s per CPU-second, "
        f"peak RSS {measured['peak_rss_mb']:.0f} MB",
        flush=True,
    )


def _in_fresh_process(function, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def bench_size(events: int, mongo_uri: str, pipeline_args: list[str], in_process: bool) -> dict:
    from deactivation.generator import DEMO_PROJECTS
    from deactivation.mongo import connect
    from deactivation.projects import upsert_project

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as directory:
        root = Path(directory)
        db = connect(_settings(root, mongo_uri))["bench"]
        db.client.drop_database("bench")
        for project in DEMO_PROJECTS:
            upsert_project(db, project)
        started = time.perf_counter()
        files = _in_fresh_process(generate, root, events)
        print(f"[{events}] generated {files} files in {time.perf_counter() - started:.1f}s", flush=True)
        baseline = _in_fresh_process(duckdb_baseline, root)
        _report(events, "duckdb read_json", baseline)
        pipeline = _in_fresh_process(beam_pipeline, root, mongo_uri, pipeline_args, in_process)
        _report(events, "pipeline end to end (warehouse + MongoDB)", pipeline)
        jobs = {job["job"]: job for job in pipeline["jobs"]}
        workers_peak = max((job["peak_rss_mb"] for job in jobs.values()), default=None)
        mongo_written = sum(
            v for k, v in pipeline["summary"]["rows_written"].items() if k.startswith("mongo.")
        )
        state_seconds = jobs.get("build_state_pipeline", {}).get("seconds")
        load = pipeline["warehouse_load"]
        print(
            f"[{events}] driver peak RSS {pipeline['peak_rss_mb']:.0f} MB "
            f"({load['peak_before_mb']:.0f} MB before the embedded DuckDB load, {load['seconds']:.1f}s)",
            flush=True,
        )
        if workers_peak is not None:
            print(
                f"[{events}] workers (Beam job processes) peak RSS {workers_peak:.0f} MB; "
                f"Beam job {jobs['build_pipeline']['seconds']:.1f}s",
                flush=True,
            )
        if state_seconds:
            print(
                f"[{events}] MongoDB state job: {mongo_written} documents in {state_seconds:.2f}s = "
                f"{mongo_written / state_seconds:,.0f} docs/s",
                flush=True,
            )
        rate_duckdb = baseline["rows"] / baseline["seconds"]
        rate_pipeline = pipeline["rows"] / pipeline["seconds"]
        cpu_ratio = (pipeline["cpu_seconds"] / pipeline["rows"]) / (
            baseline["cpu_seconds"] / baseline["rows"]
        )
        print(
            f"[{events}] ratio DuckDB/pipeline: {rate_duckdb / rate_pipeline:.1f} (wall), "
            f"{cpu_ratio:.1f} (CPU-seconds per event)",
            flush=True,
        )
        warehouse_path = None
        if jobs:  # the warehouse path alone: the Beam job and the load, against DuckDB reading the files
            beam_job = jobs["build_pipeline"]
            warehouse_path = {
                "wall_ratio": (beam_job["seconds"] + load["seconds"]) / baseline["seconds"],
                "beam_job_cpu_ratio": beam_job["cpu_seconds"] / baseline["cpu_seconds"],
            }
            print(
                f"[{events}] warehouse path (Beam job + load) vs DuckDB read_json: "
                f"1/{warehouse_path['wall_ratio']:.1f} of its rate (wall); Beam job "
                f"{beam_job['cpu_seconds']:.1f} CPU-s = 1/{warehouse_path['beam_job_cpu_ratio']:.1f} "
                "per CPU-second",
                flush=True,
            )
        db.client.drop_database("bench")
        db.client.close()
    return {
        "events": events,
        "files": files,
        "duckdb_rows_per_s": round(rate_duckdb),
        "pipeline_events_per_s": round(rate_pipeline),
        "ratio_duckdb_over_pipeline": round(rate_duckdb / rate_pipeline, 2),
        "cpu_ratio_pipeline_over_duckdb": round(cpu_ratio, 2),
        "end_to_end_seconds": round(pipeline["seconds"], 2),
        "duckdb_peak_rss_mb": round(baseline["peak_rss_mb"]),
        "driver_peak_rss_mb": round(pipeline["peak_rss_mb"]),
        "driver_peak_rss_before_warehouse_load_mb": round(pipeline["warehouse_load"]["peak_before_mb"]),
        "warehouse_load_seconds": round(pipeline["warehouse_load"]["seconds"], 2),
        "beam_job_seconds": round(jobs["build_pipeline"]["seconds"], 2) if jobs else None,
        "beam_job_cpu_seconds": round(jobs["build_pipeline"]["cpu_seconds"], 2) if jobs else None,
        "warehouse_path_wall_ratio": round(warehouse_path["wall_ratio"], 2) if warehouse_path else None,
        "beam_job_cpu_ratio": round(warehouse_path["beam_job_cpu_ratio"], 2) if warehouse_path else None,
        "workers_peak_rss_mb": round(workers_peak) if workers_peak is not None else None,
        "mongo_documents": mongo_written,
        "mongo_docs_per_s": round(mongo_written / state_seconds) if state_seconds else None,
        "in_process": in_process,
        "pipeline_summary": pipeline["summary"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append", help="Events in the hour (repeatable).")
    parser.add_argument(
        "--pipeline-arg", action="append", default=[], help="A Beam flag for the pipeline run (repeatable)."
    )
    parser.add_argument(
        "--in-process", action="store_true", help="Run the Beam jobs inside the driver process."
    )
    args = parser.parse_args()
    from deactivation.mongo import LocalMongoServer

    with (
        tempfile.TemporaryDirectory(prefix="bench-mongo-") as mongo_dir,
        LocalMongoServer(mongo_dir) as server,
    ):
        results = [
            bench_size(events, server.uri, args.pipeline_arg, args.in_process)
            for events in args.events or [100_000, 1_000_000]
        ]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
