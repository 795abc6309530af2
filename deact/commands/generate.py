"""`deact generate`: write seeded synthetic deactivations into the raw store (demo and tests).

Synthetic events must never mix with real ones unnoticed: `generate` writes only into a raw store
that is empty or already holds generated data (a `GENERATED-DATA.txt` note at its root says so), and
refuses a store holding other data unless given `--force`. It checks MongoDB and the store before
writing anything.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deact.cli import add_json_option
from deact.errors import CommandError
from deact.preflight import require_mongo, require_writable_raw_store
from deactivation.envelope import REJECTED_PREFIX, ROUTES
from deactivation.hours import hour_floor, parse_hour
from deactivation.raw_store import open_raw_store
from deactivation.settings import get_settings

#: At the raw store's root: this store holds synthetic events (`deact generate`, `deact demo`).
#: Not a dot-name, so an operator listing the store sees and reads it; the pipeline only reads
#: .json/.ndjson files under route folders.
GENERATED_MARKER = "GENERATED-DATA.txt"
#: Most events one run generates (all are held in memory before they are written).
MAX_EVENTS = 2_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="Write seeded synthetic deactivation requests into the raw store.",
        description="Writes the same files for the same arguments (deterministic event ids), and "
        "registers the demo projects in MongoDB so the pipeline accepts their events. Refuses a raw "
        "store that holds other (real) data unless --force: point RAW_STORE_URL at a store of its own.",
    )
    parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
    parser.add_argument(
        "--hours", type=int, default=24, help="How many hours ending at --end-hour to generate (default 24)."
    )
    parser.add_argument(
        "--events-per-hour", type=int, default=200, help="Requests per hour, bad ones included (default 200)."
    )
    parser.add_argument(
        "--end-hour", default=None, help="Last hour, YYYY-MM-DDTHH UTC (default: the last complete hour)."
    )
    parser.add_argument(
        "--no-projects", action="store_true", help="Do not register the demo projects in MongoDB."
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Write even into a raw store that holds data not made by the generator (it then mixes).",
    )
    add_json_option(parser, "the summary")
    parser.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
    from deactivation.mongo import get_database  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import upsert_project  # lazy: pymongo; keeps `deact --help` fast

    if args.hours < 1 or args.events_per_hour < 1:
        raise CommandError("--hours and --events-per-hour must be at least 1")
    if args.hours * args.events_per_hour > MAX_EVENTS:
        raise CommandError(
            f"--hours x --events-per-hour is {args.hours * args.events_per_hour:,}, at most {MAX_EVENTS:,} "
            "per run (they are generated in memory): generate longer spans in several runs"
        )
    end_hour = (
        parse_hour(args.end_hour, name="--end-hour")
        if args.end_hour
        else hour_floor(datetime.now(UTC)) - timedelta(hours=1)
    )
    start_hour = end_hour - timedelta(hours=args.hours - 1)

    settings = get_settings()
    if not args.no_projects:
        require_mongo(settings)
    require_writable_raw_store(settings)
    store = open_raw_store(settings)
    claim_for_generated_data(store, force=args.force)

    generated = generate_events(args.seed, start_hour, args.hours, args.events_per_hour)
    files = write_to_raw_store(store, generated.envelopes)
    if not args.no_projects:
        database = get_database(settings)
        for project in DEMO_PROJECTS:
            upsert_project(database, project)
    summary = {
        "seed": args.seed,
        "first_hour": f"{start_hour:%Y-%m-%dT%H}",
        "last_hour": f"{end_hour:%Y-%m-%dT%H}",
        "envelopes": len(generated.envelopes),
        "files": len(files),
        "valid_deactivations": len(generated.truth.events),
        "bad_by_design": dict(generated.truth.rejected),
        "projects_registered": 0 if args.no_projects else len(DEMO_PROJECTS),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    bad = ", ".join(f"{kind} {n}" for kind, n in summary["bad_by_design"].items()) or "none"
    print(
        f"wrote {summary['envelopes']} synthetic requests ({summary['first_hour']}..{summary['last_hour']}, "
        f"seed {args.seed}) in {summary['files']} files to {store.url}: "
        f"{summary['valid_deactivations']} valid, bad by design: {bad}"
    )
    if not args.no_projects:
        next_step = f"deact pipeline run --hour {summary['last_hour']} --hours {args.hours}"
        print(f"registered the {len(DEMO_PROJECTS)} demo projects; next: `{next_step}`")
    return 0


def claim_for_generated_data(store, *, force: bool, known_generated: bool = False) -> None:
    """Mark `store` as holding generated data, or CommandError when it holds other data (unless `force`).

    A store is the generator's when it carries the marker, is empty, or is `known_generated` (an
    earlier demo filled it); it gets the marker now.
    """
    if GENERATED_MARKER in store.list_names(""):
        return
    if not (force or known_generated) and _holds_data(store):
        raise CommandError(
            f"the raw store {store.url} holds data that `deact generate` or `deact demo` did not "
            "write (events from a collector?): synthetic events would mix with them. Point "
            "RAW_STORE_URL at a store of its own (e.g. RAW_STORE_URL=data/demo-raw), or pass --force "
            "to mix them anyway"
        )
    mixed = force and _holds_data(store)
    note = (
        "This raw store holds synthetic deactivation events written by `deact generate` or "
        "`deact demo` (seeded, made-up sites). "
        + ("It also held other data when they were first written here (--force).\n" if mixed else "\n")
        + f"Marked {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\n"
    )
    store.write_bytes(GENERATED_MARKER, note.encode())


def _holds_data(store) -> bool:
    """Whether anything but the marker is in the store (a local directory, or a bucket prefix)."""

    if not store.url.startswith("gs://"):
        files = (p for p in Path(store.url).rglob("*") if p.is_file() and not p.name.startswith("."))
        return any(p.name != GENERATED_MARKER for p in files)  # stops at the first file found
    # On GCS: any route folder with content. One listing call per route and year level.

    fs = store._gcs  # the store's own gcsfs client, with its endpoint and credentials
    root = store.url.removeprefix("gs://")
    for folder in (*ROUTES, REJECTED_PREFIX):
        try:
            if fs.ls(f"{root}/{folder}"):
                return True
        except FileNotFoundError:
            continue
    return False
