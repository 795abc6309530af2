"""`deact pipeline run`: process raw hours into the warehouse and MongoDB (the hourly job)."""

from __future__ import annotations

import argparse

from deact.errors import CommandError
from deact.preflight import require_mongo
from deactivation.hours import (
    DEFAULT_WINDOW_HOURS,
    describe_hours,
    hours_ending_at,
    parse_hour,
    trailing_hours,
)
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pipeline", help="The hourly Beam pipeline.")
    actions = parser.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="Process raw hour folders; prints a JSON summary as the last line.",
        description=f"Processes --hours hours ending at --hour, like the deployment's `hour` and "
        f"`hours` parameters (default {DEFAULT_WINDOW_HOURS} hours: the hour and the one before, so "
        "late files are picked up). Without --hour: the last complete hours. Re-running hours changes "
        "nothing. Beam flags after `--` go to the runner, e.g. -- --runner=DataflowRunner --project=P.",
    )
    run.add_argument(
        "--hour",
        default=None,
        metavar="YYYY-MM-DDTHH",
        help="Last hour to process (UTC; default: the last complete one).",
    )
    run.add_argument(
        "--hours",
        type=int,
        default=DEFAULT_WINDOW_HOURS,
        metavar="N",
        help=f"Number of hours ending at --hour (default {DEFAULT_WINDOW_HOURS}, as the hourly deployment).",
    )
    run.add_argument("beam_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)


def _hours(args: argparse.Namespace):
    if args.hours < 1:
        raise CommandError("--hours must be at least 1")
    if args.hour is None:
        return trailing_hours(count=args.hours)
    return hours_ending_at(parse_hour(args.hour, name="--hour"), args.hours)


def _run(args: argparse.Namespace) -> int:
    hours = _hours(args)  # bad arguments are refused before anything is imported or connected
    settings = get_settings()
    require_mongo(settings)
    from beam.pipeline import run_pipeline  # lazy: Beam takes seconds to import; only a pipeline run needs it

    beam_args = [a for a in args.beam_args if a != "--"]
    summary = run_pipeline(settings, hours, extra_pipeline_args=beam_args)
    dead = sum(summary.errors.values())
    print(
        f"processed {describe_hours(hours)}: {summary.files} files, {summary.read} events read, "
        f"{summary.deactivations} valid, {dead} dead letters ({summary.seconds:.1f} s)"
        + ("; list them with `deact deadletters list`" if dead else "")
    )
    print(summary.model_dump_json())
    return 0
