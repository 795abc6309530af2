"""`deact projects add|list|show|update|remove`: the project registry (MongoDB `projects`).

A project is named on the command line by its name or its hash (deactivation.projects.resolve_project).
"""

from __future__ import annotations

import argparse
import json

from deact.cli import add_json_option
from deact.commands.notify import describe_notifications, register_project_notify
from deact.errors import CommandError
from deact.preflight import registry_database
from deactivation.settings import get_settings

PROJECT_ARGUMENT_HELP = "The project's name (case-insensitive) or hash."


def _mail_help() -> str:
    from deactivation.projects import SUPPORTED_PROVIDERS  # lazy: pymongo; keeps `deact --help` fast

    return (
        "A mail integration: contacts of deactivating sites are synced to this list (repeatable). "
        f"Providers: {', '.join(SUPPORTED_PROVIDERS)}."
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("projects", help="Register, list, change and remove plugins and themes.")
    actions = parser.add_subparsers(dest="projects_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="Register a plugin or theme by its SDK hash.",
        description="The hash is the UUID the SDK sends with every event: your Appsero project's "
        "hash, or a new one (`python -c 'import uuid; print(uuid.uuid4())'`) given to the SDK "
        "(docs/plugin-authors.md).",
    )
    add.add_argument("--hash", required=True, help="The project's UUID, as the SDK sends it.")
    add.add_argument("--name", required=True, help="A name to show in reports and to type on the CLI.")
    add.add_argument("--kind", choices=("plugin", "theme"), default="plugin", help="Default plugin.")
    add.add_argument(
        "--reason",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID=LABEL",
        help="A custom reason beyond the built-in ones (repeatable).",
    )
    add.add_argument(
        "--custom-field",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY",
        help="An extra[KEY] field to keep (repeatable); others are dropped.",
    )
    add.add_argument(
        "--mail", action="extend", nargs="+", default=[], metavar="PROVIDER:LIST", help=_mail_help()
    )
    add_json_option(add, "the registered project")
    add.set_defaults(handler=_add)

    list_ = actions.add_parser("list", help="List registered projects (a table; --json for scripts).")
    add_json_option(list_, "every project")
    list_.set_defaults(handler=_list)

    show = actions.add_parser("show", help="One project's registration.")
    show.add_argument("project", metavar="PROJECT", help=PROJECT_ARGUMENT_HELP)
    add_json_option(show, "the project")
    show.set_defaults(handler=_show)

    update = actions.add_parser(
        "update", help="Change a project's name, kind, custom reasons, custom fields or mail lists."
    )
    update.add_argument("project", metavar="PROJECT", help=PROJECT_ARGUMENT_HELP)
    update.add_argument("--name", default=None, help="New name.")
    update.add_argument("--kind", choices=("plugin", "theme"), default=None, help="New kind.")
    update.add_argument(
        "--reason",
        nargs="*",
        default=None,
        metavar="ID=LABEL",
        help="Replaces the custom reasons (give none to remove them all).",
    )
    update.add_argument(
        "--custom-field",
        nargs="*",
        default=None,
        metavar="KEY",
        help="Replaces the kept extra[KEY] fields (give none to keep none).",
    )
    update.add_argument(
        "--mail",
        nargs="*",
        default=None,
        metavar="PROVIDER:LIST",
        help="Replaces the mail integrations (give none to remove them all). " + _mail_help(),
    )
    add_json_option(update, "the updated project")
    update.set_defaults(handler=_update)

    remove = actions.add_parser(
        "remove",
        help="Unregister a project (refused while it has history, unless --force; history is kept).",
    )
    remove.add_argument("project", metavar="PROJECT", help=PROJECT_ARGUMENT_HELP)
    remove.add_argument(
        "--force",
        action="store_true",
        help="Unregister even though it has history; the history stays (warehouse, MongoDB, raw files).",
    )
    remove.set_defaults(handler=_remove)

    _register_keys(actions)
    register_project_notify(actions)  # `projects notify`: lives with `deact notify`


def _split(text: str, separator: str, option: str, shape: str) -> tuple[str, str]:
    key, found, value = text.partition(separator)
    if not found or not key.strip() or not value.strip():
        raise CommandError(f"{option} expects {shape}, got {text!r}")
    return key.strip(), value.strip()


def _reasons(texts: list[str]) -> dict[str, str]:
    return dict(_split(text, "=", "--reason", "ID=LABEL") for text in texts)


def _mail(texts: list[str]) -> list:
    from deactivation.projects import MailIntegration  # lazy: pymongo; keeps `deact --help` fast

    pairs = (_split(text, ":", "--mail", "PROVIDER:LIST") for text in texts)
    return [MailIntegration(provider=provider, list_id=list_id) for provider, list_id in pairs]


def _describe(project) -> str:
    mail = ",".join(f"{m.provider}:{m.list_id}" for m in project.mail_integrations) or "-"
    return (
        f"{project.hash}  {project.kind:<6}  {project.name}  "
        f"reasons={','.join(project.custom_reasons) or '-'}  "
        f"fields={','.join(project.custom_fields) or '-'}  mail={mail}  "
        f"notify={describe_notifications(project)}"
    )


def _add(args: argparse.Namespace) -> int:
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import Project, add_project, normalise_hash

    try:
        project_hash = normalise_hash(args.hash)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    project = Project(
        hash=project_hash,
        name=args.name,
        kind=args.kind,
        custom_reasons=_reasons(args.reason),
        custom_fields=args.custom_field,
        mail_integrations=_mail(args.mail),
    )
    stored = add_project(registry_database(get_settings()), project)
    if args.json:
        print(json.dumps(stored.model_dump(mode="json")))
        return 0
    print(f"registered {stored.kind} {stored.name!r} ({stored.hash})")
    print(
        "next: point the SDK at this collector and check arrival with `deact events recent` "
        "(docs/plugin-authors.md); events that came before this registration are dead letters: "
        f"`deact deadletters replay --project {stored.hash}`"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from deactivation.projects import list_projects  # lazy: pymongo; keeps `deact --help` fast

    projects = list_projects(registry_database(get_settings()))
    if args.json:
        print(json.dumps({"projects": [project.model_dump(mode="json") for project in projects]}))
        return 0
    if not projects:
        print("no projects registered yet: `deact projects add --hash UUID --name NAME`")
    for project in projects:
        print(_describe(project))
    return 0


def _show(args: argparse.Namespace) -> int:
    from deactivation.projects import resolve_project  # lazy: pymongo; keeps `deact --help` fast

    project = resolve_project(registry_database(get_settings()), args.project)
    if args.json:
        print(json.dumps(project.model_dump(mode="json")))
    else:
        print(_describe(project))
    return 0


def _update(args: argparse.Namespace) -> int:
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import resolve_project, update_project

    changes: dict = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.kind is not None:
        changes["kind"] = args.kind
    if args.reason is not None:
        changes["custom_reasons"] = _reasons(args.reason)
    if args.custom_field is not None:
        changes["custom_fields"] = args.custom_field
    if args.mail is not None:
        changes["mail_integrations"] = _mail(args.mail)
    if not changes:
        raise CommandError("nothing to change: give --name, --kind, --reason, --custom-field or --mail")
    db = registry_database(get_settings())
    project = resolve_project(db, args.project)
    updated = update_project(db, project.hash, changes)
    if args.json:
        print(json.dumps(updated.model_dump(mode="json")))
    else:
        print(f"updated {', '.join(changes)}: {_describe(updated)}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import remove_project, resolve_project

    db = registry_database(get_settings())
    project = resolve_project(db, args.project)
    history = project_history(db, project.hash)
    kept = ", ".join(f"{count} {what}" for what, count in history.items() if count)
    if kept and not args.force:
        raise CommandError(
            f"{project.name} ({project.hash}) has history: {kept}. `--force` unregisters it and keeps "
            "all of that, and the raw files; its new events then become unknown_project dead letters"
        )
    remove_project(db, project.hash)
    print(
        f"removed {project.kind} {project.name!r} ({project.hash}); kept: {kept or 'no history'}"
        f"{', ' if kept else ''}and its raw files. New events for it become unknown_project dead "
        "letters; register it again and `deact deadletters replay` to load them."
    )
    return 0


def project_history(db, project_hash: str) -> dict[str, int]:
    """What the stores hold for a project: warehouse deactivations and MongoDB latest-state documents."""
    from deactivation.mongo import DEACTIVATIONS, SITES  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.warehouse import open_warehouse  # lazy: pandas and pyarrow; keeps `deact --help` fast

    settings = get_settings()
    held = {}
    warehouse_exists = settings.warehouse_kind != "duckdb" or settings.duckdb_path.exists()
    warehouse = open_warehouse(settings)
    if warehouse_exists and warehouse.table_exists("deactivations"):
        rows = warehouse.query(
            "SELECT COUNT(*) AS n FROM deactivations WHERE project_hash = @project_hash",
            {"project_hash": project_hash},
        )
        held["deactivations in the warehouse"] = int(rows["n"][0])
    held["latest-state deactivations in MongoDB"] = db[DEACTIVATIONS].count_documents(
        {"project_hash": project_hash}
    )
    held["sites in MongoDB"] = db[SITES].count_documents({"project_hash": project_hash})
    return held


# --- dashboard API keys (deactivation.api_keys) ------------------------------------------------------


def _register_keys(actions: argparse._SubParsersAction) -> None:
    key = actions.add_parser("key", help="Dashboard API keys: create (shown once), list, revoke.")
    key_actions = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    create = key_actions.add_parser(
        "create",
        help="Create a key for one project (or --all-projects); prints the key ALONE on the last line.",
    )
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--project", metavar="PROJECT", help=PROJECT_ARGUMENT_HELP)
    scope.add_argument(
        "--all-projects",
        action="store_true",
        help="An operator key: every project, and the data-quality panel.",
    )
    create.add_argument("--name", default="", help="What the key is for (shown by `key list`).")
    create.add_argument(
        "--scope",
        choices=("read", "personal"),
        default="read",
        help="read (default): no personal data; personal: also the admins' e-mail and names.",
    )
    create.set_defaults(handler=_key_create)
    list_keys = key_actions.add_parser("list", help="List keys (ids, names, scopes; never the secret).")
    list_keys.add_argument("--project", metavar="PROJECT", default=None, help=PROJECT_ARGUMENT_HELP)
    list_keys.set_defaults(handler=_key_list)
    revoke = key_actions.add_parser("revoke", help="Revoke a key at once (by the id `key list` shows).")
    revoke.add_argument("key_id", metavar="KEY_ID", help="The key's id, as `key list` shows it.")
    revoke.set_defaults(handler=_key_revoke)


def _key_create(args: argparse.Namespace) -> int:
    from deactivation.api_keys import ApiKeyError, create_key  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import resolve_project  # lazy: pymongo; keeps `deact --help` fast

    db = registry_database(get_settings())
    project_hash = None if args.all_projects else resolve_project(db, args.project).hash
    try:
        key, text = create_key(
            db, get_settings(), project_hash=project_hash, scope=args.scope, name=args.name
        )
    except ApiKeyError as exc:
        raise CommandError(str(exc)) from exc
    covers = "every project (operator key)" if key.is_operator else f"project {key.project_hash}"
    print(f"created {key.scope} key {key.key_id} ({key.name!r}) for {covers}")
    print("the key is shown this once; store it now (only its hash is kept):")
    print(text)
    return 0


def _key_list(args: argparse.Namespace) -> int:
    from deactivation.api_keys import list_keys  # lazy: pymongo; keeps `deact --help` fast
    from deactivation.projects import resolve_project  # lazy: pymongo; keeps `deact --help` fast

    db = registry_database(get_settings())
    project_hash = resolve_project(db, args.project).hash if args.project else None
    keys = list_keys(db, project_hash)
    if not keys:
        print("no keys: `deact projects key create --project PROJECT`")
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        print(
            f"{key.key_id}  {key.scope:<8}  {key.project_hash or 'all projects':<36}  {state:<24}  "
            f"created {key.created_at:%Y-%m-%d %H:%M}  {key.name}"
        )
    return 0


def _key_revoke(args: argparse.Namespace) -> int:
    from deactivation.api_keys import ApiKeyError, revoke_key  # lazy: pymongo; keeps `deact --help` fast

    try:
        key = revoke_key(registry_database(get_settings()), args.key_id)
    except ApiKeyError as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"revoked key {key.key_id} ({key.name!r}) at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC; "
        "it stops working now"
    )
    return 0
