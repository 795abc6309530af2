"""`deact chart promote|preview NOTEBOOK`: a notebook's chart prototype into the registry, or into review.

The work (reading the tagged cells, validating SQL and figure, generating the module, SQL file and
test skeleton) lives in reports/promotion.py, beside the chart registry; this is its command line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deact.errors import CommandError
from reports.promotion import (
    DEFAULT_REVIEW_DIR,
    DEFAULT_TESTS_DIR,
    PromotionError,
    preview,
    promote,
)
from reports.registry import DEFAULT_CHARTS_DIR, DEFAULT_SQL_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("chart", help="The chart registry: promote notebook prototypes into it.")
    actions = parser.add_subparsers(dest="chart_command", metavar="ACTION", required=True)
    promote_parser = actions.add_parser(
        "promote",
        help="Write a notebook's tagged chart cells into the registry (module, SQL file, test skeleton) "
        "and take the chart out of review.",
    )
    promote_parser.add_argument(
        "notebook", type=Path, help="Notebook with chart-meta, chart-sql, chart-figure cells."
    )
    promote_parser.add_argument(
        "--id", dest="chart_id", required=True, help="Chart id: lowercase, digits, _."
    )
    promote_parser.add_argument("--force", action="store_true", help="Replace an existing chart of this id.")
    promote_parser.add_argument(
        "--charts-dir", type=Path, default=DEFAULT_CHARTS_DIR, help="Default: reports/charts."
    )
    promote_parser.add_argument("--sql-dir", type=Path, default=DEFAULT_SQL_DIR, help="Default: reports/sql.")
    promote_parser.add_argument(
        "--tests-dir", type=Path, default=DEFAULT_TESTS_DIR, help="Default: tests/reports."
    )
    promote_parser.add_argument(
        "--review-dir", type=Path, default=DEFAULT_REVIEW_DIR, help="Default: reports/review."
    )
    promote_parser.set_defaults(handler=_promote)

    preview_parser = actions.add_parser(
        "preview",
        help="Put a notebook's tagged chart in review: the dashboard draws it, marked, next to the "
        "registered charts, until `deact chart promote`.",
    )
    preview_parser.add_argument(
        "notebook", type=Path, help="Notebook with chart-meta, chart-sql, chart-figure cells."
    )
    preview_parser.add_argument("--id", dest="chart_id", help="Chart id (default: chart-meta's id).")
    preview_parser.add_argument(
        "--review-dir", type=Path, default=DEFAULT_REVIEW_DIR, help="Default: reports/review."
    )
    preview_parser.add_argument(
        "--charts-dir", type=Path, default=DEFAULT_CHARTS_DIR, help="Default: reports/charts."
    )
    preview_parser.set_defaults(handler=_preview)


def _promote(args: argparse.Namespace) -> int:
    try:
        result = promote(
            args.notebook,
            args.chart_id,
            force=args.force,
            charts_dir=args.charts_dir,
            sql_dir=args.sql_dir,
            tests_dir=args.tests_dir,
            review_dir=args.review_dir,
        )
    except PromotionError as exc:
        raise CommandError(str(exc)) from exc
    for path in result.written:
        print(f"wrote {path}")
    for path in result.kept:
        print(f"kept existing test {path}")
    for path in result.removed_from_review:
        print(f"out of review: removed {path}")
    if result.meta_id and result.meta_id != result.chart_id:
        print(f"note: chart-meta says id {result.meta_id!r}; promoted as {result.chart_id!r} (--id wins)")
    print(json.dumps(result.summary()))
    return 0


def _preview(args: argparse.Namespace) -> int:
    try:
        written = preview(
            args.notebook, args.chart_id, review_dir=args.review_dir, charts_dir=args.charts_dir
        )
    except PromotionError as exc:
        raise CommandError(str(exc)) from exc
    for path in written:
        print(f"wrote {path}")
    print("in review: the dashboard draws it, marked, beside the registered charts")
    print(json.dumps({"chart": written[0].stem, "in_review": True, "written": [str(p) for p in written]}))
    return 0
