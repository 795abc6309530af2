"""`deact report render`: an HTML page per project and an index page (PNGs of the charts with --png)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from deact.cli import add_json_option
from deact.errors import CommandError
from deact.preflight import require_mongo, require_warehouse
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="The HTML report: one page per project and an index.")
    actions = parser.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    render = actions.add_parser(
        "render",
        help="Write DIR/index.html and DIR/<project>.html: headline against the previous period, "
        "charts, written answers.",
    )
    render.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="Output directory (default DATA_DIR/reports)."
    )
    render.add_argument(
        "--project",
        default=None,
        metavar="NAME_OR_HASH",
        help="Only this project's page, by name or hash (the index still lists every project).",
    )
    render.add_argument(
        "--days",
        type=int,
        default=None,
        metavar="N",
        help="The last N days up to the newest day with data, compared with the N days before "
        "(default: every day with data).",
    )
    render.add_argument(
        "--png", action="store_true", help="Also write a PNG of every chart (needs Chromium; slower)."
    )
    add_json_option(parser=render, what="the report's summary")
    render.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    # lazy: plotly and pandas (~1.3 s) load only when a report is rendered, not for `deact --help`.
    from reports.render import render_report

    if args.days is not None and args.days < 1:
        raise CommandError("--days must be at least 1")
    if args.project is not None and not args.project.strip():
        raise CommandError("--project needs a project name or hash")
    settings = get_settings()
    # Both before anything is written: a report without data or without project names is worse
    # than the last one, which stays as it is.
    require_warehouse(settings)
    require_mongo(settings)
    summary = render_report(
        settings, args.out or settings.reports_dir, project=args.project, days=args.days, png=args.png
    )
    if args.json:
        print(summary.model_dump_json())
        return 0
    days = (date.fromisoformat(summary.end_day) - date.fromisoformat(summary.start_day)).days + 1
    print(f"Report for {summary.start_day} to {summary.end_day} ({days} day{'s' if days != 1 else ''}):")
    for page in summary.pages:
        if page.html_path is None:
            continue
        change = "" if page.change is None else f" ({page.change:+,} against the {days} days before)"
        print(f"  {page.name:<30} {page.deactivations:>7,} deactivations{change}  {page.html_path}")
    if not summary.pages:
        print("  no projects yet: register one with `deact projects add`, or run `make demo`")
    if summary.pngs:
        print(f"  {len(summary.pngs)} PNGs in {Path(summary.pngs[0]).parent.parent}")
    print(f"Open {summary.html_path}")
    return 0
