"""The `deact` command line (also `python -m deact`).

Each subcommand lives in `deact/commands/<name>.py` with a `register(subparsers)` that
adds its parser and sets `handler=callable(args) -> int`. Adding a command changes nothing here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from deact import commands
from deact.errors import CommandError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deact", description="Deactivation analytics for WordPress plugins and themes."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from deactivation.observability import configure_logging
    from deactivation.settings import get_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"deact: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        return int(args.handler(args) or 0)
    except CommandError as exc:
        print(f"deact {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
