"""`deact erase`: remove every trace of a site (or of every site of an admin e-mail) in a project."""

from __future__ import annotations

import argparse

from deact.errors import CommandError, RunFailed
from deact.preflight import require_mongo
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "erase",
        help="Erase a site (or every site of an admin e-mail) from every store, on request "
        "(JSON summary with counts per store last).",
        description="Registers the site's keyed hash (so no re-run brings it back), removes its records "
        "from the raw store (every route and rejected/), the warehouse history and MongoDB, rebuilds "
        "the analytics it touched and records an audit entry. Running it again after an interruption "
        "finishes the job. See docs/privacy.md.",
    )
    parser.add_argument("--project", required=True, metavar="HASH", help="The project's hash (UUID).")
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("--site", metavar="URL", help="The site's URL, as the plugin sends it.")
    subject.add_argument("--email", metavar="ADDRESS", help="An admin e-mail: erases every site of it.")
    parser.add_argument("--dry-run", action="store_true", help="Change nothing; show what would be removed.")
    parser.set_defaults(handler=_erase)


def _erase(args: argparse.Namespace) -> int:
    # lazy: privacy pulls in pandas, Beam's neighbours and the warehouse clients; `deact --help` needs none
    from privacy.erase import ErasureRequest, PipelineInFlight, erase  # lazy: as above
    from privacy.matching import RequestError  # lazy: as above

    settings = get_settings()
    try:
        request = ErasureRequest.build(args.project, site_url=args.site, email=args.email)
    except RequestError as exc:
        raise CommandError(str(exc)) from exc
    require_mongo(settings)
    try:
        summary = erase(settings, request, dry_run=args.dry_run)
    except PipelineInFlight as exc:
        raise RunFailed(str(exc)) from exc
    removed = sum(route.records for route in summary.raw.values()) + summary.rejected
    if summary.dry_run:
        print(f"dry run, nothing changed: would remove {removed} raw records of {summary.sites} site(s)")
    else:
        print(f"erased {removed} raw records of {summary.sites} site(s); audit entry {summary.audit_id}")
    print(summary.model_dump_json())
    return 0
