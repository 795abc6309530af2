"""`deact dashboard serve`: run the dashboard (dashboard_app) on Granian, like `deact serve`."""

from __future__ import annotations

import argparse

from deact.http_server import serve_forever
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
    serve_forever(
        "dashboard_app:create_app",
        interface="wsgi",
        host=args.host,
        port=port,
        workers=settings.DASHBOARD_WORKERS,
        blocking_threads=settings.DASHBOARD_THREADS,
        # A slow client may hold a thread only this long while sending its headers.
        header_read_timeout_s=settings.INGEST_BODY_TIMEOUT_S,
    )
    return 0
