"""`deact report render`: write the HTML report (and a PNG per chart where Chromium exists)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="The chart report.")
    actions = parser.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    render = actions.add_parser(
        "render", help="Write one self-contained HTML report with every chart (JSON summary last)."
    )
    render.add_argument("--out", type=Path, default=None, help="Output directory (default DATA_DIR/reports).")
    render.add_argument("--project", default=None, help="Only this project hash (default: every project).")
    render.add_argument("--days", type=int, default=None, help="Last N days of data (default: all).")
    render.add_argument("--no-png", action="store_true", help="Skip the PNG per chart.")
    render.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    from deact.errors import CommandError
    from deactivation.projects import normalise_hash
    from deactivation.warehouse import WarehouseError
    from reports.render import render_report

    if args.days is not None and args.days < 1:
        raise CommandError("--days must be at least 1")
    settings = get_settings()
    try:
        project = normalise_hash(args.project) if args.project else None
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    try:
        summary = render_report(
            settings, args.out or settings.reports_dir, project=project, days=args.days, png=not args.no_png
        )
    except WarehouseError as exc:
        raise CommandError(str(exc)) from exc
    print(summary.model_dump_json())
    return 0
