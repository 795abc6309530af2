"""`deact pipeline run`: process raw hours into the warehouse and MongoDB (the hourly job)."""

from __future__ import annotations

import argparse

from deact.errors import CommandError
from deactivation.settings import get_settings

DEFAULT_HOURS = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pipeline", help="The hourly Beam pipeline.")
    actions = parser.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="Process raw hour folders; prints a JSON summary as the last line.",
        description="Without --hour: the last complete hours (the hourly run's trailing window). "
        "Beam flags after `--` go to the runner, e.g. -- --runner=DataflowRunner --project=P.",
    )
    run.add_argument("--hour", default=None, metavar="YYYY-MM-DDTHH", help="Last hour to process (UTC).")
    run.add_argument(
        "--hours",
        type=int,
        default=None,
        metavar="N",
        help=f"Number of hours ending at --hour (default 1; {DEFAULT_HOURS} without --hour).",
    )
    run.add_argument("beam_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)


def _hours(args: argparse.Namespace):
    from deactivation.hours import hours_ending_at, parse_hour, trailing_hours

    if args.hours is not None and args.hours < 1:
        raise CommandError("--hours must be at least 1")
    if args.hour is None:
        return trailing_hours(count=args.hours or DEFAULT_HOURS)
    try:
        return hours_ending_at(parse_hour(args.hour), args.hours or 1)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


def _run(args: argparse.Namespace) -> int:
    from beam.pipeline import run_pipeline

    beam_args = [a for a in args.beam_args if a != "--"]
    summary = run_pipeline(get_settings(), _hours(args), extra_pipeline_args=beam_args)
    print(summary.model_dump_json())
    return 0
