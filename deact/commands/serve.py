"""`deact serve`: run the collector (ingest_app) on Granian, a production WSGI server.

Granian (Rust, hyper) parses HTTP outside the GIL and hands each request to one of a pool of
Python threads; those threads mostly wait while the group-commit writer makes their envelope
durable, which is why the pool is larger than the core count (Granian warns about that at start;
it is intended). Same app, same settings, wrk over loopback on the 2-core dev machine: Granian
served ~1.6x the requests of gunicorn's gthread worker at about half the CPU per request."""

from __future__ import annotations

import argparse

from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="Run the collector (HTTP) in the foreground.")
    parser.add_argument(
        "--host", default="0.0.0.0", help="Address to listen on (default 0.0.0.0: all interfaces)."
    )
    parser.add_argument("--port", type=int, default=None, help="Default: PORT (Cloud Run sets it).")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    settings = get_settings()
    port = args.port if args.port is not None else settings.PORT
    print(
        f"collector on http://{args.host}:{port} ({settings.INGEST_WORKERS} workers x "
        f"{settings.INGEST_THREADS} threads), raw store {settings.RAW_STORE_URL}",
        flush=True,
    )
    Granian(
        "ingest_app:create_app",
        factory=True,
        address=args.host,
        port=port,
        interface=Interfaces.WSGI,
        workers=settings.INGEST_WORKERS,
        blocking_threads=settings.INGEST_THREADS,
        backlog=2048,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    ).serve()
    return 0
