"""`deact analytics build`: rebuild the hourly/daily aggregates and publish them to MongoDB."""

from __future__ import annotations

import argparse

from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analytics", help="Aggregates of the warehouse history.")
    actions = parser.add_subparsers(dest="analytics_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="Rebuild the aggregates of the hours loaded since the last build (JSON summary last).",
    )
    scope = build.add_mutually_exclusive_group()
    scope.add_argument(
        "--since", default=None, help="Also rebuild every loaded raw hour from YYYY-MM-DDTHH (UTC) on."
    )
    scope.add_argument("--full", action="store_true", help="Rebuild every aggregate from all history.")
    build.add_argument("--no-publish", action="store_true", help="Do not publish to MongoDB.")
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from deact.errors import CommandError
    from deactivation.hours import parse_hour
    from deactivation.warehouse import WarehouseError
    from reports.analytics import build_analytics

    try:
        since = parse_hour(args.since) if args.since else None
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    try:
        summary = build_analytics(get_settings(), since=since, full=args.full, publish=not args.no_publish)
    except WarehouseError as exc:
        raise CommandError(str(exc)) from exc
    print(summary.model_dump_json())
    return 0
