"""`deact backfill`: run the backfill flow here, with a progress bar in the terminal.

The same flow as the `backfill` deployment (which shows its progress in the Prefect UI); runs are
recorded by this checkout's `make up` Prefect server when it runs, else by a temporary one on its
database. The arguments are checked before any server starts.
"""

from __future__ import annotations

import argparse

from deact.cli import add_json_option
from deact.errors import CommandError
from deact.local_stack import configure_prefect
from deact.preflight import require_mongo
from deactivation.hours import hour_range, parse_hour
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backfill", help="Pipeline then analytics over a range of hours.")
    parser.add_argument("--start-hour", required=True, help="First hour, YYYY-MM-DDTHH (UTC).")
    parser.add_argument("--end-hour", required=True, help="Last hour, YYYY-MM-DDTHH (UTC), included.")
    parser.add_argument("--hours-per-run", type=int, default=6, help="Hours per Beam job (default 6).")
    parser.add_argument(
        "--reprocess", action="store_true", help="Also reprocess hours already loaded (default: skip them)."
    )
    parser.add_argument("--no-analytics", action="store_true", help="Skip the analytics flow at the end.")
    add_json_option(parser, "the backfill report")
    parser.set_defaults(handler=_backfill)


def validate(args: argparse.Namespace) -> list:
    """The hours to backfill; HourError/CommandError for bad arguments (no server, no import of Prefect)."""

    first = parse_hour(args.start_hour, name="--start-hour")
    last = parse_hour(args.end_hour, name="--end-hour")
    hours = hour_range(first, last)
    if args.hours_per_run < 1:
        raise CommandError(f"--hours-per-run must be at least 1, got {args.hours_per_run}")
    return hours


def _backfill(args: argparse.Namespace) -> int:
    hours = validate(args)
    settings = get_settings()
    require_mongo(settings)
    prefect_note = configure_prefect(settings)
    # lazy: Prefect reads its settings at import, so only after configure_prefect()
    from flows.backfill_flow import MAX_BACKFILL_HOURS, backfill
    from flows.pipeline_flow import MAX_WINDOW_HOURS  # lazy: as above

    hour_range(hours[0], hours[-1], max_hours=MAX_BACKFILL_HOURS)
    if args.hours_per_run > MAX_WINDOW_HOURS:
        raise CommandError(f"--hours-per-run must be at most {MAX_WINDOW_HOURS}, got {args.hours_per_run}")
    if not args.json:
        print(prefect_note, flush=True)
    report = backfill(
        start_hour=args.start_hour,
        end_hour=args.end_hour,
        hours_per_run=args.hours_per_run,
        skip_loaded_hours=not args.reprocess,
        run_analytics=not args.no_analytics,
    )
    if args.json:
        print(report.model_dump_json())
        return 0
    print(
        f"backfilled {len(report.hours) - len(report.skipped)} of {len(report.hours)} hours in "
        f"{len(report.runs)} runs ({report.seconds:.1f} s); {len(report.skipped)} were already loaded"
        + ("" if args.reprocess or not report.skipped else " (--reprocess to redo them)")
        + ("; analytics rebuilt" if report.analytics else "")
    )
    return 0
