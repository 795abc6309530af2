"""`deact backfill`: run the backfill flow here, with a progress bar in the terminal.

The same flow as the `backfill` deployment (which shows its progress in the Prefect UI); runs are
recorded by `make up`'s Prefect server when it runs, else by a temporary one on its database.
"""

from __future__ import annotations

import argparse

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
    parser.set_defaults(handler=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    from deact.errors import CommandError
    from deact.local_stack import configure_prefect

    print(configure_prefect(get_settings()), flush=True)
    from prefect.exceptions import ParameterTypeError

    from flows.backfill_flow import backfill

    try:
        report = backfill(
            start_hour=args.start_hour,
            end_hour=args.end_hour,
            hours_per_run=args.hours_per_run,
            skip_loaded_hours=not args.reprocess,
            run_analytics=not args.no_analytics,
        )
    except (ParameterTypeError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(report.model_dump_json())
    return 0
