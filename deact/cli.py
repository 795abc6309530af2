"""The `deact` command line (also `python -m deact`).

Each subcommand lives in `deact/commands/<name>.py` with a `register(subparsers)` that
adds its parser and sets `handler=callable(args) -> int`. Adding a command changes nothing here.

What every command shares is decided here once: `--debug` and `--verbose` (accepted before or after
the command's name), quiet logging by default, and errors as one line with a documented exit code
(deact.errors.explain) instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from deact import commands
from deact.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_USAGE, explain, validation_messages
from deactivation.observability import configure_logging
from deactivation.settings import get_settings

#: Commands that run a long-lived service (collector, dashboard, mail sink): their logs follow LOG_LEVEL.
SERVICE_COMMANDS = frozenset({"serve", "dashboard", "mail"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deact",
        description="Deactivation analytics for WordPress plugins and themes.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_options(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    for subparser in _subparsers(parser):
        # Also after the command's name; SUPPRESS keeps a flag given before it from being reset.
        _add_common_options(subparser, default=argparse.SUPPRESS)
    return parser


def add_json_option(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    """`--json`: print `what` as one JSON object instead of the human summary."""
    parser.add_argument("--json", action="store_true", help=f"Print {what} as one JSON object (for scripts).")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug, verbose = getattr(args, "debug", False), getattr(args, "verbose", False)
    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"deact: invalid settings: {validation_messages(exc)}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings)
    _set_log_levels(settings, args.command, debug=debug, verbose=verbose)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"deact {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        message, code = explain(exc)
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"deact {args.command}: error: {message}", file=sys.stderr)
        return code


def _add_common_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=default, help="Show the traceback of an error; DEBUG logs."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="Show the libraries' INFO log lines."
    )


def _subparsers(parser: argparse.ArgumentParser):
    """Every parser below `parser`, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield child
                yield from _subparsers(child)


def _set_log_levels(settings, command: str, *, debug: bool, verbose: bool) -> None:
    """WARNING unless asked: a command prints its own summary; --verbose shows INFO, --debug DEBUG.

    LOG_LEVEL, when set, still applies; and a service (`deact serve`) logs at LOG_LEVEL.
    """
    if debug:
        level = logging.DEBUG
    elif verbose:
        level = logging.INFO
    elif command in SERVICE_COMMANDS or "LOG_LEVEL" in settings.model_fields_set:
        level = logging.getLevelName(settings.LOG_LEVEL.upper())
    else:
        level = logging.WARNING
    root = logging.getLogger()
    root.setLevel(level)
    # Records of loggers with a level of their own (Prefect's run loggers log INFO to the run's
    # Logs tab) still propagate here: the handler's level keeps them off the terminal.
    for handler in root.handlers:
        handler.setLevel(level)
    if level >= logging.WARNING:  # libraries that set their own loggers to INFO
        for chatty in ("httpx", "httpcore", "sqlglot", "urllib3", "google", "apache_beam"):
            logging.getLogger(chatty).setLevel(level)
