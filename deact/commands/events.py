"""`deact events recent`: did events arrive? Counts per hour and project from the raw store.

Reads the raw store's latest hour folders directly (the collector writes there; no pipeline run is
needed), so a plugin author sees their first events seconds after a deactivation. Counts only:
no content of any event is printed.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import UTC, datetime

import orjson

from deact.cli import add_json_option
from deact.commands.deadletters import project_hash_of, project_names
from deact.errors import CommandError
from deactivation.envelope import REJECTED_PREFIX
from deactivation.hours import format_hour, hour_floor, hours_ending_at
from deactivation.raw_store import hour_path, open_raw_store, split_records
from deactivation.settings import get_settings

DEFAULT_HOURS = 3
MAX_HOURS = 72
#: Stop reading after this many bytes (a busy store): the counts then say they are partial.
MAX_BYTES_READ = 64 * 1024 * 1024
ROUTE = "deactivate"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("events", help="What the collector received lately.")
    actions = parser.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    recent = actions.add_parser(
        "recent",
        help="Events per hour and project in the raw store's latest hours (counts only).",
        description="Reads the raw store directly: events show here as soon as the collector stored "
        "them, before any pipeline run. A project shown as `not registered` has its events turned "
        "into unknown_project dead letters until it is registered (`deact projects add`).",
    )
    recent.add_argument(
        "--project", default=None, help="Only this project: a name, or a hash (registered or not)."
    )
    recent.add_argument(
        "--hours",
        type=int,
        default=DEFAULT_HOURS,
        help=f"How many hours ending with the current one (default {DEFAULT_HOURS}, at most {MAX_HOURS}).",
    )
    add_json_option(recent, "the counts")
    recent.set_defaults(handler=_recent)


def _recent(args: argparse.Namespace) -> int:
    if not 1 <= args.hours <= MAX_HOURS:
        raise CommandError(f"--hours must be 1-{MAX_HOURS}, got {args.hours}")
    settings = get_settings()
    wanted = project_hash_of(args.project) if args.project else None
    store = open_raw_store(settings)
    hours = hours_ending_at(hour_floor(datetime.now(UTC)), args.hours)
    counts: Counter[tuple[str, str]] = Counter()
    latest: dict[tuple[str, str], str] = {}
    read_bytes, partial = 0, False
    for hour in reversed(hours):  # newest first: a byte budget spent there is the most useful
        for raw_file in store.list_hour(ROUTE, hour):
            if read_bytes >= MAX_BYTES_READ:
                partial = True
                break
            data = store.read_bytes(raw_file.relative_path)
            read_bytes += len(data)
            for project_hash, received_at in _events(split_records(raw_file.relative_path, data)):
                if wanted and project_hash != wanted:
                    continue
                key = (format_hour(hour), project_hash)
                counts[key] += 1
                latest[key] = max(latest.get(key, ""), received_at)
    rejected = {format_hour(h): len(store.list_names(hour_path(REJECTED_PREFIX, h))) for h in hours}
    rows = [
        {
            "hour": hour,
            "project_hash": project or None,
            "events": n,
            "last_received_at": latest[(hour, project)],
        }
        for (hour, project), n in sorted(counts.items(), reverse=True)
    ]
    if args.json:
        print(json.dumps({"rows": rows, "rejected_by_collector": rejected, "partial": partial}))
        return 0
    window = f"{format_hour(hours[0])}:00 UTC until now"
    if not rows:
        print(f"no events in {store.url} during {window}" + (" for that project" if wanted else ""))
    else:
        names = project_names(settings)
        print(f"{'hour (UTC)':14} {'project':52} {'events':>7}  last received")
        for row in rows:
            label = _label(row["project_hash"], names)
            print(f"{row['hour']:14} {label:52} {row['events']:>7}  {row['last_received_at'][11:19]}")
        if names is None:
            print("(MongoDB does not answer: projects are shown by hash only)")
    refused = sum(rejected.values())
    if refused:
        print(f"the collector refused {refused} requests in {window} (kept under rejected/; see /healthz)")
    if partial:
        print(f"(counting stopped after {MAX_BYTES_READ // 2**20} MB: counts are partial; try fewer --hours)")
    return 0


def _events(records):
    """(project hash, received_at) of each record of a raw file; '' for an unreadable one."""
    for _line_number, line in records:
        try:
            envelope = orjson.loads(line)
            body = envelope.get("body") if isinstance(envelope, dict) else None
            project_hash = body.get("hash") if isinstance(body, dict) else None
            received_at = envelope.get("received_at", "")
        except (orjson.JSONDecodeError, AttributeError):
            yield "", ""
            continue
        yield (project_hash.strip().lower() if isinstance(project_hash, str) else ""), str(received_at)


def _label(project_hash: str | None, names: dict[str, str] | None) -> str:
    if not project_hash:
        return "(no readable project hash)"
    if names is None:
        return project_hash
    name = names.get(project_hash)
    return f"{name} ({project_hash[:8]}…)" if name else f"{project_hash} (not registered)"
