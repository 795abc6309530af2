"""`deact demo` (what `make demo` runs): the whole system end to end on the embedded defaults.

1. MongoDB: use the one MONGODB_URI names; if nothing answers on the default local address, start
   the local server for the demo and stop it at the end.
2. Register the three demo projects (upsert: a re-run changes nothing).
3. Two days of seeded deactivations. All hours but the last are written through the collector's
   own storage code (RawStore, deterministic file names: a re-run rewrites the same files); the
   last hour is POSTed through the real HTTP collector (`deact serve` in a subprocess).
4. The pipeline flow over every hour, then the analytics flow (aggregates, MongoDB, HTML report).
5. A summary: counts per stage, dead letters by type, where the report is, what to open next.

Re-runs give the same numbers and no duplicates: the time window is pinned in
DATA_DIR/demo/state.json on the first run, the generated hours are rewritten in place, the HTTP
hour is sent only once (the collector stamps fresh event ids, so sending again would add events),
and every later stage replaces what it produced before.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deact.cli import add_json_option
from deact.commands.generate import claim_for_generated_data
from deact.errors import CommandError, RunFailed, ServiceUnavailable, mongo_unreachable
from deact.local_stack import configure_prefect, dashboard_url, wait_for
from deact.preflight import require_writable_raw_store
from deactivation.hours import format_hour, hour_floor
from deactivation.raw_store import hour_path, open_raw_store
from deactivation.settings import LOCAL_MONGO_PORT, Settings, get_settings

STATE_VERSION = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="Run the whole system end to end on seeded demo data.")
    parser.add_argument("--seed", type=int, default=2026, help="Generator seed (default 2026).")
    parser.add_argument(
        "--generate-days",
        type=int,
        default=2,
        choices=range(1, 15),
        metavar="1-14",
        help="Days of synthetic events to generate, ending now (default 2).",
    )
    parser.add_argument(
        "--events-per-hour", type=int, default=40, help="Synthetic requests per hour (default 40)."
    )
    parser.add_argument("--png", action="store_true", help="Also export every chart as PNG (slower).")
    add_json_option(parser, "everything the summary shows (counts, timings)")
    parser.set_defaults(handler=_demo)


class Stopwatch:
    """Where the demo's time goes, stage by stage."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.stages: list[tuple[str, float]] = []
        self.quiet = quiet

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if not self.quiet:
            print(f"... {name}", flush=True)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages.append((name, time.perf_counter() - started))


def _demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.events_per_hour < 1:
        raise CommandError("--events-per-hour must be at least 1")
    state_path = settings.DATA_DIR / "demo" / "state.json"
    _claim_raw_store(settings, earlier_demo=state_path.exists())
    state = _load_state(state_path, args)
    prefect_note = configure_prefect(settings)
    _quiet_http_client_logs()
    clock = Stopwatch(quiet=args.json)
    # Prefect's temporary server takes 30-35 s to start on a new database: start it meanwhile.
    prefect_ready = ThreadPoolExecutor(max_workers=1).submit(_wait_for_prefect_api)
    with ExitStack() as cleanup:
        with clock.stage("MongoDB"):
            mongo_note = cleanup.enter_context(_mongo_for_demo(settings))
        result = _run(settings, args, (state, state_path), clock, prefect_ready)
        result["dashboard"] = _demo_dashboard_key(settings)
    _print_summary(settings, result, clock, mongo_note, prefect_note, as_json=args.json)
    return 0


# --- environment ------------------------------------------------------------------------------------


def _claim_raw_store(settings: Settings, *, earlier_demo: bool) -> None:
    """The demo writes synthetic events: only into a store that is empty or holds generated ones."""

    require_writable_raw_store(settings)
    # A store an earlier demo filled (before stores were marked) is the demo's own.
    claim_for_generated_data(open_raw_store(settings), force=False, known_generated=earlier_demo)


@contextmanager
def _mongo_for_demo(settings: Settings) -> Iterator[str]:
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.mongo import LocalMongoServer, wait_until_ready

    try:
        wait_until_ready(settings.MONGODB_URI, timeout_s=1.5)
        yield f"used the MongoDB already answering at {settings.MONGODB_URI}"
        return
    except TimeoutError:
        pass
    if Settings.model_fields["MONGODB_URI"].default != settings.MONGODB_URI:
        raise ServiceUnavailable(mongo_unreachable(settings.MONGODB_URI))
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    server = LocalMongoServer(
        settings.mongo_data_dir, port=LOCAL_MONGO_PORT, log_path=settings.logs_dir / "mongo-demo.log"
    )
    with server:
        yield (
            f"started the local MongoDB on port {LOCAL_MONGO_PORT} for the demo and stopped it at the end; "
            "`make up` starts it again for the other commands"
        )


# --- the run ----------------------------------------------------------------------------------------


def _run(
    settings: Settings,
    args: argparse.Namespace,
    pinned: tuple[dict[str, Any], Path],
    clock: Stopwatch,
    prefect_ready: Future,
) -> dict[str, Any]:
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
    from deactivation.mongo import get_database  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import upsert_project  # lazy: pymongo; keeps `deact --help` fast

    with clock.stage("register the demo projects"):
        db = get_database(settings)
        for project in DEMO_PROJECTS:
            upsert_project(db, project)
        db.client.close()

    state, state_path = pinned
    end_hour = datetime.fromisoformat(state["end_hour"])
    hours = args.generate_days * 24
    start_hour = end_hour - timedelta(hours=hours - 1)
    store = open_raw_store(settings)

    with clock.stage(f"generate {hours} hours x {args.events_per_hour} events (seed {args.seed})"):
        generated = generate_events(args.seed, start_hour, hours, args.events_per_hour)
        older = [e for e in generated.envelopes if not e["received_at"].startswith(format_hour(end_hour))]
        http_bodies = generated.bodies_for_hour(end_hour)
    with clock.stage(f"write {hours - 1} hours through RawStore"):
        files = write_to_raw_store(store, older)
    with clock.stage("send the latest hour through the HTTP collector"):
        http = _send_http_hour_once(settings, store, state, state_path, http_bodies)
    last_hour = max([end_hour, *(datetime.fromisoformat(h) for h in http["hours"])])
    window = int((last_hour - start_hour) / timedelta(hours=1)) + 1

    with clock.stage("import Prefect, Beam and the flows; wait for the Prefect API (started in parallel)"):
        # lazy: Prefect reads its settings at import: only after configure_prefect()
        from flows.analytics_flow import deactivation_analytics

        # lazy: Prefect reads its settings at import: only after configure_prefect()
        from flows.pipeline_flow import deactivation_pipeline

        prefect_ready.result()
    with clock.stage(f"pipeline flow over {window} hours (Prefect + Beam)"):
        pipeline = deactivation_pipeline(hour=format_hour(last_hour), hours=window)
    with clock.stage("analytics flow (aggregates, MongoDB summaries, report)"):
        analytics = deactivation_analytics(png=args.png)
    with clock.stage("notifications: forwards, auto-replies, digest, alerts into the local mail sink"):
        from notifications.demo import demo_pass  # lazy: the notification runner; keeps `deact --help` fast

        notifications = demo_pass(settings)
    mongo_documents = _mongo_documents(settings)
    return {
        "window": [format_hour(start_hour), format_hour(last_hour)],
        "pinned_since": state["created_at"],
        "generated": len(generated.envelopes),
        "expected_valid": len(generated.truth.events),
        "expected_dead_letters": dict(generated.truth.rejected),
        "raw_store_files": len(files),
        "raw_store_envelopes": len(older),
        "http": http,
        "pipeline": pipeline.model_dump(exclude={"per_hour"}),
        "analytics": analytics.model_dump(),
        "mongo_documents": mongo_documents,
        "notifications": notifications,
    }


def _mongo_documents(settings: Settings) -> dict[str, int]:
    """What MongoDB holds now (the same after every run, unlike the documents a run changed)."""
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, PROJECTS, SITES, get_database

    db = get_database(settings)
    try:
        return {name: db[name].count_documents({}) for name in (PROJECTS, DEACTIVATIONS, SITES, MAIL_OUTBOX)}
    finally:
        db.client.close()


def _quiet_http_client_logs() -> None:
    """Prefect's HTTP client logs every API call at INFO; the demo prints its own summary."""
    for name in ("httpx", "httpcore", "sqlglot"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _wait_for_prefect_api() -> None:
    """Connect once, so a temporary server starts here (30-35 s on a new database), not mid-flow."""
    # lazy: Prefect reads its settings at import: only after configure_prefect()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.api_healthcheck()


def _load_state(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The pinned window: the seed, size and end hour of the first run.

    Other parameters would generate different events for hours already in the raw store, and the
    store would then hold both: so they are refused until the demo data is removed.
    """

    wanted = {
        "version": STATE_VERSION,
        "seed": args.seed,
        "days": args.generate_days,
        "events_per_hour": args.events_per_hour,
    }
    if path.exists():
        state = json.loads(path.read_text())
        pinned = {key: state.get(key) for key in wanted}
        if pinned != wanted:
            raise CommandError(
                f"the demo data under {path.parent.parent} was made with {pinned}; run with those "
                "parameters, or remove the demo data (DATA_DIR and RAW_STORE_URL) to start over"
            )
        return state
    now = datetime.now(UTC)
    state = {**wanted, "end_hour": hour_floor(now).isoformat(), "created_at": now.isoformat(), "http": None}
    _save_state(path, state)
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(path)


def _send_http_hour_once(settings, store, state, state_path: Path, bodies) -> dict[str, Any]:
    """POST the latest hour through the collector, unless a previous run already stored it."""

    sent = state.get("http") or {}
    if sent.get("done") and all(
        store.list_hour("deactivate", datetime.fromisoformat(h)) for h in sent["hours"]
    ):
        return {**sent, "sent_now": False}
    if sent.get("started_at"):
        _discard_interrupted_send(settings, store, sent)
    started = datetime.now(UTC)
    state["http"] = {"started_at": started.isoformat(), "done": False}
    _save_state(state_path, state)
    statuses = _post_through_collector(settings, bodies)
    accepted = sum(1 for status in statuses if 200 <= status < 300)
    if accepted != len(bodies):
        raise RunFailed(
            f"the collector accepted {accepted} of {len(bodies)} requests; see its log in DATA_DIR/logs"
        )
    finished = datetime.now(UTC)
    hours = [hour_floor(started)]
    if hour_floor(finished) != hours[0]:  # the send straddled an hour boundary
        hours.append(hour_floor(finished))
    state["http"] = {
        "started_at": started.isoformat(),
        "done": True,
        "hours": [h.isoformat() for h in hours],
        "posted": len(bodies),
        "accepted": accepted,
    }
    _save_state(state_path, state)
    return {**state["http"], "sent_now": True}


def _discard_interrupted_send(settings: Settings, store, sent: dict[str, Any]) -> None:
    """An earlier send stopped midway: drop what it stored so the resend adds no duplicates."""

    if store.url.startswith("gs://"):
        raise CommandError("an earlier demo send was interrupted; point RAW_STORE_URL at an empty store")
    hour = hour_floor(datetime.fromisoformat(sent["started_at"]))
    while hour <= hour_floor(datetime.now(UTC)):
        folder = Path(store.url_for(hour_path("deactivate", hour)))
        print(f"... an earlier demo send was interrupted: removing {folder}")
        shutil.rmtree(folder, ignore_errors=True)
        hour += timedelta(hours=1)


def _post_through_collector(settings: Settings, bodies) -> list[int]:
    from deactivation.mongo import free_port  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.sdk_client import post_many  # lazy: an HTTP client; only the demo's send needs it

    port = free_port()
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / "collector-demo.log"
    command = [sys.executable, "-m", "deact", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        collector = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", timeout_s=60, process=collector)
        return post_many(f"http://127.0.0.1:{port}", bodies, concurrency=8)
    except (RuntimeError, TimeoutError) as exc:
        raise ServiceUnavailable(f"the collector did not start ({exc}); see {log_path}") from exc
    finally:
        _stop_process_group(collector)


def _stop_process_group(process: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- the summary ------------------------------------------------------------------------------------


def _pairs(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _print_summary(
    settings: Settings, result: dict, clock: Stopwatch, mongo_note: str, prefect_note: str, *, as_json: bool
):
    pipeline, analytics, http = result["pipeline"], result["analytics"], result["http"]
    dead, expected_dead = pipeline["dead_letters"], result["expected_dead_letters"]
    warehouse_rows = {t: n for t, n in pipeline["rows_written"].items() if not t.startswith("mongo.")}
    mongo_changed = {t[6:]: n for t, n in pipeline["rows_written"].items() if t.startswith("mongo.")}
    http_line = (
        f"{http['accepted']} of {http['posted']} POSTs accepted (2xx after a durable write)"
        if http["sent_now"]
        else f"{http['accepted']} POSTs were sent by an earlier run and are stored; not resent "
        "(the collector stamps new event ids, so resending would add events)"
    )
    lines = [
        "",
        "What happened",
        f"  window            {result['window'][0]} .. {result['window'][1]} UTC "
        f"(pinned on {result['pinned_since'][:16]} in DATA_DIR/demo/state.json)",
        f"  generated         {result['generated']} deactivation requests (seeded), "
        f"{result['expected_valid']} valid by the generator's own record",
        f"  raw store         {result['raw_store_envelopes']} envelopes in {result['raw_store_files']} files "
        "written through RawStore (older hours; rewritten in place on a re-run)",
        f"  HTTP collector    {http_line}",
        f"  pipeline          read {pipeline['events_read']} events from {pipeline['files']} files: "
        f"{pipeline['valid']} valid, {sum(dead.values())} dead letters",
        "  dead letters      "
        + ", ".join(f"{kind} {n} (expected {expected_dead.get(kind, 0)})" for kind, n in dead.items()),
        f"  warehouse rows    {_pairs(warehouse_rows)}",
        f"  MongoDB holds     {_pairs(result['mongo_documents'])} "
        f"(documents this run changed: {_pairs(mongo_changed)})",
        "                    MongoDB keeps the LATEST deactivation per site (what the dashboard lists);",
        "                    the warehouse keeps EVERY deactivation (history), so its count is larger",
        f"  analytics         {len(analytics['hours_rebuilt'])} hours, {len(analytics['days_rebuilt'])} days "
        f"rebuilt: {_pairs(analytics['tables'])}",
        f"  published         {_pairs(analytics['published'])}",
        f"  report            {analytics['report_html']} ({analytics['charts']} charts)",
        *_notification_lines(result["notifications"]),
        f"  MongoDB           {mongo_note}",
        f"  Prefect           {prefect_note}",
        "",
        "Where the time went",
        *(f"  {seconds:6.1f} s  {name}" for name, seconds in clock.stages),
        "",
        "Next",
        f"  open the report   {analytics['report_html']}",
        f"  Prefect UI        make up, then http://127.0.0.1:{settings.PREFECT_PORT} (runs, artifacts, "
        "deployments; make down stops it)",
        "  JupyterLab        make lab (the analyst workbench, notebooks/)",
        "  run it again      make demo  (same window, same numbers, no duplicates)",
        "  your own plugin   docs/plugin-authors.md (register it, point the SDK here, check arrival)",
    ]
    dashboard = result["dashboard"]
    lines += [
        f"  dashboard         make up, then {dashboard['url']} and log in with the demo key "
        "(all projects, personal data; shown once, earlier demo keys revoked):",
        dashboard["key"],
    ]
    if as_json:
        print(json.dumps({**result, "timings": dict(clock.stages)}, default=str))
        return
    print("\n".join(lines))


def _demo_dashboard_key(settings: Settings) -> dict[str, str]:
    """A fresh operator key for the dashboard (the previous demo's key is revoked: one live demo key)."""
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.api_keys import create_key, list_keys, revoke_key
    from deactivation.mongo import get_database  # lazy: pymongo; keeps `deact --help` fast

    db = get_database(settings)
    for key in list_keys(db):
        if key.name == DEMO_KEY_NAME and key.revoked_at is None:
            revoke_key(db, key.key_id)
    _, text = create_key(db, settings, project_hash=None, scope="personal", name=DEMO_KEY_NAME)
    db.client.close()
    return {"url": dashboard_url(settings), "key": text}


DEMO_KEY_NAME = "make demo"


def _notification_lines(notifications: dict[str, Any]) -> list[str]:
    """How many mails of each kind the demo produced, and where to read them."""
    sent = {kind: n for kind, n in notifications["sent"].items() if n}
    waiting = notifications["skipped"].get("waiting_for_credentials", 0)
    return [
        f"  notifications     sent this run: {_pairs(sent) or 'nothing new (sent by an earlier run)'}"
        + (f"; {notifications['failed']} failed (`deact notify list`)" if notifications["failed"] else ""),
        f"                    read them in {notifications['mail_dir']} ({notifications['eml_files']} .eml "
        f"files); {notifications['smtp']}",
        f"                    list sync: {waiting} requests wait for provider credentials "
        "(MAILCHIMP_API_KEY, docs/notifications.md)",
    ]
