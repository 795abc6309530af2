"""`deact analytics build`: rebuild the hourly/daily aggregates and publish them to MongoDB."""

from __future__ import annotations

import argparse

from deact.cli import add_json_option
from deact.preflight import require_mongo
from deactivation.hours import parse_hour
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analytics", help="Aggregates of the warehouse history.")
    actions = parser.add_subparsers(dest="analytics_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="Rebuild the aggregates of the hours loaded since the last build."
    )
    scope = build.add_mutually_exclusive_group()
    scope.add_argument(
        "--since", default=None, help="Also rebuild every loaded raw hour from YYYY-MM-DDTHH (UTC) on."
    )
    scope.add_argument("--full", action="store_true", help="Rebuild every aggregate from all history.")
    build.add_argument("--no-publish", action="store_true", help="Do not publish to MongoDB.")
    add_json_option(build, "the summary")
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    since = parse_hour(args.since, name="--since") if args.since else None
    settings = get_settings()
    if not args.no_publish:
        require_mongo(settings)
    # lazy: pandas and the chart registry; keeps `deact --help` fast
    from reports.analytics import build_analytics  # pandas and the chart registry: imported once needed

    summary = build_analytics(settings, since=since, full=args.full, publish=not args.no_publish)
    if args.json:
        print(summary.model_dump_json())
        return 0
    tables = ", ".join(f"{name} {rows}" for name, rows in summary.tables.items()) or "nothing to rebuild"
    print(
        f"rebuilt {len(summary.hours_rebuilt)} hours and {len(summary.days_rebuilt)} days "
        f"({summary.seconds:.1f} s): {tables}"
    )
    if summary.published:
        print("published to MongoDB: " + ", ".join(f"{n} {c}" for n, c in summary.published.items()))
    return 0
