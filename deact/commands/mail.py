"""`deact mail sink`: a local SMTP server that stores every message as an .eml file."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path

from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mail", help="The local mail sink (a real SMTP server).")
    actions = parser.add_subparsers(dest="mail_command", metavar="ACTION", required=True)
    sink = actions.add_parser("sink", help="Run the SMTP sink in the foreground; messages → .eml files.")
    sink.add_argument("--port", type=int, default=None, help="Default: 8025.")
    sink.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    sink.add_argument("--dir", type=Path, default=None, help="Default: DATA_DIR/mail.")
    sink.set_defaults(handler=_sink)


def _sink(args: argparse.Namespace) -> int:
    # lazy: aiosmtpd and the sink load only for `deact mail sink`, not for every `deact` command.
    from notifications.sink import DEFAULT_PORT, MailSink

    directory = args.dir or get_settings().DATA_DIR / "mail"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with MailSink(directory, host=args.host, port=args.port or DEFAULT_PORT) as sink:
        print(f"SMTP sink on {sink.url}, messages in {directory} (SMTP_URL={sink.url})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0
