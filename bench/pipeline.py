"""Benchmark: the Beam pipeline against DuckDB `read_json` on the same raw hour folder.

    .venv/bin/python bench/pipeline.py                   # 100k and 1M events
    .venv/bin/python bench/pipeline.py --events 100000   # one size only

For each size it generates one hour of realistic events (deactivation/generator.py) in the
collector's layout (NDJSON group-commit files of 256 envelopes), then, each phase in a fresh
process so its peak RSS is its own:

* baseline: DuckDB `read_json` of every file into a table (every field parsed);
* pipeline: `run_pipeline` minus MongoDB (parse → validate → clean → stage → one warehouse load);
* MongoDB: the pipeline's conditional bulk upserts of latest state, on a sample, reported apart
  because the local server's own limit says little about a production MongoDB.

Prints one line per measurement and a JSON object per size as the last lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOUR = datetime(2026, 11, 27, 12, tzinfo=UTC)
GENERATE_CHUNK = 100_000
MONGO_SAMPLE = 20_000
MONGO_BATCH = 2_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Stopwatch:
    """Wall and CPU seconds (all threads of this process): on a shared machine the CPU time is the
    steadier measure of the work done."""

    def __enter__(self) -> _Stopwatch:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started

    def result(self, rows: int, **extra) -> dict:
        return {
            "rows": rows,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "peak_rss_mb": _peak_rss_mb(),
            **extra,
        }


def _settings(root: Path, mongo_uri: str):
    from deactivation.settings import Settings

    return Settings(
        RAW_STORE_URL=str(root / "raw"),
        WAREHOUSE_URL=f"duckdb:///{root / 'warehouse.duckdb'}",
        MONGODB_URI=mongo_uri,
        MONGODB_DB="bench",
        DATA_DIR=root / "data",
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
            seed=chunk, start_hour=HOUR, hours=1, events_per_hour=min(GENERATE_CHUNK, events - start)
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


def beam_pipeline(root: Path, mongo_uri: str, pipeline_args: list[str]) -> dict:
    from beam.pipeline import run_pipeline

    settings = _settings(root, mongo_uri)
    with _Stopwatch() as watch:
        summary = run_pipeline(settings, [HOUR], extra_pipeline_args=pipeline_args, write_mongo=False)
    return watch.result(summary.read, summary=summary.model_dump())


def mongo_bulk(root: Path, mongo_uri: str) -> dict:
    """Latest-state upserts of a sample of valid events, in the pipeline's batch size."""
    from beam.io import latest_per_site, state_document, upsert_if_newer
    from beam.transforms import reason_of, registry_rules, shape_event
    from deactivation.mongo import DEACTIVATIONS, SITES, connect
    from deactivation.projects import load_registry
    from deactivation.raw_store import LocalRawStore, split_records
    from deactivation.site_fields import FieldError

    settings = _settings(root, mongo_uri)
    client = connect(settings)
    db = client[settings.MONGODB_DB]
    rules = registry_rules(load_registry(db))
    store = LocalRawStore(settings.RAW_STORE_URL)
    events = []
    for raw_file in store.list_hour("deactivate", HOUR):
        for _line, text in split_records(raw_file.relative_path, store.read_bytes(raw_file.relative_path)):
            envelope = json.loads(text)
            project = rules.get(envelope["body"].get("hash"))
            reason_id = project and reason_of(envelope["body"], project)[0]
            if reason_id:
                with contextlib.suppress(FieldError):
                    events.append(shape_event(envelope["received_at"][:13], envelope, project, reason_id))
        if len(events) >= MONGO_SAMPLE:
            break
    events = events[:MONGO_SAMPLE]
    started = time.perf_counter()
    written = 0
    for start in range(0, len(events), MONGO_BATCH):
        batch = events[start : start + MONGO_BATCH]
        written += upsert_if_newer(
            db[DEACTIVATIONS], latest_per_site([state_document(e.deactivation) for e in batch])
        )
        written += upsert_if_newer(db[SITES], latest_per_site([state_document(e.site) for e in batch]))
    seconds = time.perf_counter() - started
    client.close()
    return {"documents": 2 * len(events), "written": written, "seconds": seconds}


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


def bench_size(events: int, mongo_uri: str, pipeline_args: list[str]) -> dict:
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
        pipeline = _in_fresh_process(beam_pipeline, root, mongo_uri, pipeline_args)
        _report(events, "pipeline (FnApiRunner, to DuckDB)", pipeline)
        rate_duckdb = baseline["rows"] / baseline["seconds"]
        rate_pipeline = pipeline["rows"] / pipeline["seconds"]
        print(f"[{events}] ratio DuckDB/pipeline: {rate_duckdb / rate_pipeline:.1f} (wall)", flush=True)
        mongo = _in_fresh_process(mongo_bulk, root, mongo_uri)
        rate_mongo = mongo["documents"] / mongo["seconds"]
        print(
            f"[{events}] MongoDB conditional bulk upserts: {mongo['documents']} docs in "
            f"{mongo['seconds']:.2f}s = {rate_mongo:,.0f} docs/s",
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
        "duckdb_rows_per_cpu_s": round(baseline["rows"] / baseline["cpu_seconds"]),
        "pipeline_events_per_cpu_s": round(pipeline["rows"] / pipeline["cpu_seconds"]),
        "pipeline_seconds": round(pipeline["seconds"], 2),
        "duckdb_peak_rss_mb": round(baseline["peak_rss_mb"]),
        "pipeline_peak_rss_mb": round(pipeline["peak_rss_mb"]),
        "mongo_docs_per_s": round(rate_mongo),
        "pipeline_summary": pipeline["summary"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append", help="Events in the hour (repeatable).")
    parser.add_argument(
        "--pipeline-arg", action="append", default=[], help="A Beam flag for the pipeline run (repeatable)."
    )
    args = parser.parse_args()
    from deactivation.mongo import LocalMongoServer

    with (
        tempfile.TemporaryDirectory(prefix="bench-mongo-") as mongo_dir,
        LocalMongoServer(mongo_dir) as server,
    ):
        results = [
            bench_size(events, server.uri, args.pipeline_arg)
            for events in args.events or [100_000, 1_000_000]
        ]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
