"""`deact mongo serve`: run the local MongoDB-compatible server in the foreground."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deactivation.settings import LOCAL_MONGO_PORT, get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mongo", help="The local MongoDB server of the embedded stack.")
    actions = parser.add_subparsers(dest="mongo_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="Run the local MongoDB server in the foreground.")
    serve.add_argument(
        "--port", type=int, default=LOCAL_MONGO_PORT, help=f"Port to listen on (default {LOCAL_MONGO_PORT})."
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1: this machine only)."
    )
    serve.add_argument("--data-dir", type=Path, default=None, help="Default: DATA_DIR/mongo.")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from deactivation.mongo import server_command  # lazy: pymongo; keeps `deact --help` fast

    data_dir = args.data_dir or get_settings().mongo_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(args.port, data_dir.resolve(), host=args.host)
    print(f"local MongoDB on mongodb://{args.host}:{args.port}/?directConnection=true, data in {data_dir}")
    os.execv(command[0], command)  # foreground: the server replaces this process, signals go straight to it
