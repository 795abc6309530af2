"""`deact dashboard serve`: run the dashboard (dashboard_app) on Granian, like `deact serve`."""

from __future__ import annotations

import argparse

from granian import Granian
from granian.constants import Interfaces

from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboard", help="The plugin author's dashboard (pages and JSON API).")
    actions = parser.add_subparsers(dest="dashboard_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="Run the dashboard (HTTP) in the foreground.")
    serve.add_argument(
        "--host", default="0.0.0.0", help="Address to listen on (default 0.0.0.0: all interfaces)."
    )
    serve.add_argument("--port", type=int, default=None, help="Default: DASHBOARD_PORT (8050).")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    port = args.port if args.port is not None else settings.DASHBOARD_PORT
    print(
        f"dashboard on http://{args.host}:{port} ({settings.DASHBOARD_WORKERS} workers x "
        f"{settings.DASHBOARD_THREADS} threads)",
        flush=True,
    )
    Granian(
        "dashboard_app:create_app",
        factory=True,
        address=args.host,
        port=port,
        interface=Interfaces.WSGI,
        workers=settings.DASHBOARD_WORKERS,
        blocking_threads=settings.DASHBOARD_THREADS,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    ).serve()
    return 0
