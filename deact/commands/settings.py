"""`deact settings`: every setting, its current value and what it means."""

from __future__ import annotations

import argparse

from deactivation.settings import describe_settings, get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("settings", help="Show every setting, its value and meaning.")
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table (for docs).")
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    current = get_settings()
    rows = describe_settings()
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for name, default, description in rows:
            print(f"| `{name}` | `{default}` | {description} |")
        return 0
    for name, _default, description in rows:
        print(f"{name}={getattr(current, name)}\n    {description}")
    return 0
