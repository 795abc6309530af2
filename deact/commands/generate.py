"""`deact generate`: write seeded synthetic deactivations into the raw store (demo and tests)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="Write seeded synthetic deactivation requests into the raw store.",
        description="Writes the same files for the same arguments (deterministic event ids), and "
        "registers the demo projects in MongoDB so the pipeline accepts their events.",
    )
    parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
    parser.add_argument("--hours", type=int, default=24, help="How many hours to generate (default 24).")
    parser.add_argument(
        "--events-per-hour", type=int, default=200, help="Requests per hour, bad ones included (default 200)."
    )
    parser.add_argument(
        "--end-hour", default=None, help="Last hour, YYYY-MM-DDTHH UTC (default: the last complete hour)."
    )
    parser.add_argument(
        "--no-projects", action="store_true", help="Do not register the demo projects in MongoDB."
    )
    parser.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from deact.errors import CommandError
    from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
    from deactivation.hours import hour_floor, parse_hour
    from deactivation.mongo import get_database
    from deactivation.projects import upsert_project
    from deactivation.raw_store import open_raw_store

    if args.hours < 1 or args.events_per_hour < 1:
        raise CommandError("--hours and --events-per-hour must be at least 1")
    try:
        end_hour = (
            parse_hour(args.end_hour) if args.end_hour else hour_floor(datetime.now(UTC)) - timedelta(hours=1)
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    start_hour = end_hour - timedelta(hours=args.hours - 1)

    settings = get_settings()
    generated = generate_events(args.seed, start_hour, args.hours, args.events_per_hour)
    files = write_to_raw_store(open_raw_store(settings), generated.envelopes)
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
    print(json.dumps(summary))
    return 0
