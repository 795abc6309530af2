"""`deact export-site`: everything held about one site, as JSON (an access request)."""

from __future__ import annotations

import argparse
import sys

from deact.errors import CommandError
from deact.preflight import require_mongo
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-site",
        help="Print everything held about a site as JSON (raw envelopes, warehouse rows, MongoDB).",
    )
    parser.add_argument("--project", required=True, metavar="HASH", help="The project's hash (UUID).")
    parser.add_argument("--site", required=True, metavar="URL", help="The site's URL.")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    # lazy: privacy pulls in pandas and the warehouse clients; `deact --help` needs neither
    from privacy.export import export_site, write_export  # lazy: as above
    from privacy.matching import RequestError  # lazy: as above

    settings = get_settings()
    require_mongo(settings)
    try:
        exported = export_site(settings, args.project, args.site)
    except RequestError as exc:
        raise CommandError(str(exc)) from exc
    write_export(exported, sys.stdout.buffer)
    return 0
