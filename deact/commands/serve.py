"""`deact serve`: run the collector (ingest_app) on Granian, through its async front (ASGI).

Granian (Rust, hyper) parses HTTP outside the GIL. Each worker process runs one event loop with
the front of `ingest_app.fast_path`: a request waiting for its body or its group commit is a
coroutine, not a thread, so slow clients cannot hold the collector (bodies must arrive within
INGEST_BODY_TIMEOUT_S, headers too), and the requests the front hands to Flask run on a pool of
INGEST_THREADS threads."""

from __future__ import annotations

import argparse

from deact.http_server import serve_forever
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="Run the collector (HTTP) in the foreground.")
    parser.add_argument(
        "--host", default="0.0.0.0", help="Address to listen on (default 0.0.0.0: all interfaces)."
    )
    parser.add_argument("--port", type=int, default=None, help="Default: PORT (Cloud Run sets it).")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    port = args.port if args.port is not None else settings.PORT
    print(
        f"collector on http://{args.host}:{port} ({settings.INGEST_WORKERS} workers, async front, "
        f"{settings.INGEST_THREADS} threads each for Flask), raw store {settings.RAW_STORE_URL}",
        flush=True,
    )
    serve_forever(
        "ingest_app.fast_path:create_asgi_app",
        interface="asgi",
        host=args.host,
        port=port,
        workers=settings.INGEST_WORKERS,
        # Headers get the same deadline as bodies (the front enforces the body's).
        header_read_timeout_s=settings.INGEST_BODY_TIMEOUT_S,
    )
    return 0
