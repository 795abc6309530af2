"""`deact deadletters list|replay`: the records the pipeline could not load, and loading them later.

Every record the pipeline rejects is kept in the warehouse table `deactivation_errors` with a typed
reason (deactivation.dead_letters). The list shows hours, types, projects and counts only (never a
record's content: it may hold personal data). The commonest case for a plugin author: events that
arrived before the project was registered are `unknown_project` dead letters; register the
project, then `replay` re-runs the pipeline over the hours that hold them (re-running an hour
replaces what it loaded before, so nothing is doubled).
"""

from __future__ import annotations

import argparse
import json

from deact.cli import add_json_option
from deact.errors import CommandError, ServiceUnavailable
from deact.preflight import registry_database, require_mongo, require_warehouse
from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.hours import describe_hours, format_hour, parse_hour
from deactivation.raw_store import open_raw_store
from deactivation.settings import Settings, get_settings

#: Rows `list` prints at most (newest first); narrow with --since, --project or --type.
DEFAULT_LIST_LIMIT = 200
#: The most hours one replay re-runs (a month, the pipeline flow's longest window).
MAX_REPLAY_HOURS = 24 * 31
#: Hours per pipeline run during a replay (bounds one run's memory).
REPLAY_HOURS_PER_RUN = 24


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deadletters", help="Records the pipeline rejected (by hour, type and project), and replaying them."
    )
    actions = parser.add_subparsers(dest="deadletters_command", metavar="ACTION", required=True)
    list_ = actions.add_parser(
        "list", help="Dead letters by hour, type and project: counts only, no content."
    )
    _add_filters(list_)
    list_.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIST_LIMIT,
        help=f"Most rows shown (default {DEFAULT_LIST_LIMIT}).",
    )
    add_json_option(list_, "the rows")
    list_.set_defaults(handler=_list)

    replay = actions.add_parser(
        "replay",
        help="Re-run the pipeline over the hours holding these dead letters (e.g. after registering "
        "the project).",
        description="Re-processes every hour that holds a matching dead letter, with the registry as "
        "it is now; an hour's earlier results are replaced, so nothing is counted twice. Hours whose "
        "raw files are gone are skipped. Run `deact analytics build` afterwards for the aggregates.",
    )
    _add_filters(replay)
    add_json_option(replay, "the replay summary")
    replay.set_defaults(handler=_replay)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        default=None,
        help="A project name, or a hash (also one that is not registered, as unknown_project letters carry).",
    )
    parser.add_argument("--type", choices=DEAD_LETTER_TYPES, default=None, help="Only this type.")
    parser.add_argument(
        "--since", default=None, metavar="YYYY-MM-DDTHH", help="Only raw hours from this one on (UTC)."
    )


def _filters(args: argparse.Namespace) -> tuple[list[str], dict]:
    """WHERE conditions (fixed SQL, values as parameters) for the arguments."""

    conditions, params = [], {}
    if args.since:
        conditions.append("raw_hour >= @since")
        params["since"] = parse_hour(args.since, name="--since")
    if args.type:
        conditions.append("error_type = @error_type")
        params["error_type"] = args.type
    if args.project:
        conditions.append("project_hash = @project_hash")
        params["project_hash"] = project_hash_of(args.project)
    return conditions, params


def project_hash_of(text: str) -> str:
    """A hash as given (registered or not), or the hash of the project of that name."""
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import normalise_hash, resolve_project

    try:
        return normalise_hash(text)
    except ValueError:
        return resolve_project(registry_database(get_settings()), text).hash


def project_names(settings: Settings) -> dict[str, str] | None:
    """hash → name of the registered projects; None when MongoDB does not answer (hashes are shown)."""
    from deactivation.mongo import get_database  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import load_registry  # lazy: pymongo; keeps `deact --help` fast

    try:
        require_mongo(settings, timeout_s=1.0)
    except ServiceUnavailable:
        return None
    return {h: p.name for h, p in load_registry(get_database(settings)).items()}


def _query_counts(settings: Settings, conditions: list[str], params: dict, limit: int | None):
    from deactivation.warehouse import open_warehouse  # lazy: pandas and pyarrow; keeps `deact --help` fast

    require_warehouse(settings)
    warehouse = open_warehouse(settings)
    if not warehouse.table_exists("deactivation_errors"):
        return []
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        "SELECT raw_hour, error_type, COALESCE(project_hash, '') AS project_hash, COUNT(*) AS n "
        f"FROM deactivation_errors {where} GROUP BY raw_hour, error_type, project_hash "
        "ORDER BY raw_hour DESC, error_type, project_hash" + (f" LIMIT {int(limit) + 1}" if limit else "")
    )
    frame = warehouse.query(sql, params)
    return [
        (row.raw_hour.to_pydatetime(), row.error_type, row.project_hash, int(row.n))
        for row in frame.itertuples()
    ]


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CommandError(f"--limit must be at least 1, got {args.limit}")
    settings = get_settings()
    conditions, params = _filters(args)
    rows = _query_counts(settings, conditions, params, args.limit)
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    if args.json:
        print(
            json.dumps(
                {
                    "rows": [
                        {"hour": format_hour(h), "type": t, "project_hash": p or None, "count": n}
                        for h, t, p, n in rows
                    ],
                    "truncated": more,
                }
            )
        )
        return 0
    if not rows:
        print("no dead letters" + (" match" if conditions else "") + ".")
        return 0
    names = project_names(settings)
    print(f"{'hour (UTC)':14} {'type':16} {'project':50} {'count':>7}")
    for hour, error_type, project_hash, count in rows:
        print(f"{format_hour(hour):14} {error_type:16} {_project_label(project_hash, names):50} {count:>7}")
    totals: dict[str, int] = {}
    for _hour, error_type, _project, count in rows:
        totals[error_type] = totals.get(error_type, 0) + count
    print("total: " + ", ".join(f"{kind} {n}" for kind, n in totals.items()))
    if more:
        print(
            f"(only the newest {args.limit} rows; narrow with --since, --project or --type, or raise --limit)"
        )
    if names is None:
        print("(MongoDB does not answer: projects are shown by hash only)")
    if totals.get("unknown_project"):
        print(
            "unknown_project: events of a hash that was not registered when they were processed. "
            "Register it (`deact projects add`), then `deact deadletters replay --project HASH`."
        )
    return 0


def _project_label(project_hash: str, names: dict[str, str] | None) -> str:
    if not project_hash:
        return "-"
    if names is None:
        return project_hash
    name = names.get(project_hash)
    return f"{name} ({project_hash[:8]}…)" if name else f"{project_hash} (not registered)"


def _replay(args: argparse.Namespace) -> int:
    settings = get_settings()
    conditions, params = _filters(args)
    require_mongo(settings)
    rows = _query_counts(settings, conditions, params, limit=None)
    before = sum(n for *_rest, n in rows)
    hours = sorted({hour for hour, *_rest in rows})
    if not hours:
        print("no dead letters match: nothing to replay.")
        return 0
    if len(hours) > MAX_REPLAY_HOURS:
        raise CommandError(
            f"{len(hours)} hours hold matching dead letters, at most {MAX_REPLAY_HOURS} per replay: "
            "narrow with --since, --project or --type"
        )
    store = open_raw_store(settings)
    present = [hour for hour in hours if store.list_hour("deactivate", hour)]
    gone = [format_hour(hour) for hour in hours if hour not in present]
    from beam.pipeline import run_pipeline  # lazy: Beam takes seconds to import; only a pipeline run needs it

    runs = []
    for start in range(0, len(present), REPLAY_HOURS_PER_RUN):
        chunk = present[start : start + REPLAY_HOURS_PER_RUN]
        if not args.json:
            print(f"... pipeline over {describe_hours(chunk)}", flush=True)
        runs.append(run_pipeline(settings, chunk))
    after = sum(n for *_rest, n in _query_counts(settings, conditions, params, limit=None))
    summary = {
        "hours": [format_hour(h) for h in present],
        "skipped_hours_without_raw_files": gone,
        "dead_letters_before": before,
        "dead_letters_after": after,
        "valid_now": sum(run.deactivations for run in runs),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"replayed {len(present)} hours: matching dead letters {before} -> {after}; "
        f"{summary['valid_now']} valid deactivations in those hours now"
    )
    if gone:
        print(f"skipped {len(gone)} hours whose raw files are gone: {', '.join(gone[:10])}")
    if after:
        print("still dead letters: `deact deadletters list` with the same filters says which.")
    print("next: `deact analytics build` to refresh the aggregates and the report.")
    return 0
