"""`deact projects add|list`: the project registry (MongoDB `projects`)."""

from __future__ import annotations

import argparse
import json

from deact.errors import CommandError
from deactivation.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("projects", help="Register and list plugins and themes.")
    actions = parser.add_subparsers(dest="projects_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="Register a plugin or theme by its SDK hash.")
    add.add_argument("--hash", required=True, help="The project's UUID, as the SDK sends it.")
    add.add_argument("--name", required=True)
    add.add_argument("--kind", choices=("plugin", "theme"), default="plugin")
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
        "--mail",
        action="extend",
        nargs="+",
        default=[],
        metavar="PROVIDER:LIST",
        help="A mail integration: contacts of deactivating sites are synced to this list.",
    )
    add.set_defaults(handler=_add)

    list_ = actions.add_parser("list", help="List registered projects.")
    list_.set_defaults(handler=_list)


def _split(text: str, separator: str, option: str) -> tuple[str, str]:
    key, found, value = text.partition(separator)
    if not found or not key.strip() or not value.strip():
        raise CommandError(f"{option} expects {option.upper().lstrip('-')}…{separator}…, got {text!r}")
    return key.strip(), value.strip()


def _add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from deactivation.mongo import get_database
    from deactivation.projects import MailIntegration, Project, ProjectError, add_project, normalise_hash

    try:
        project_hash = normalise_hash(args.hash)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    reasons = dict(_split(text, "=", "--reason") for text in args.reason)
    try:
        mail = [
            MailIntegration(provider=p, list_id=lst)
            for p, lst in (_split(t, ":", "--mail") for t in args.mail)
        ]
        project = Project(
            hash=project_hash,
            name=args.name,
            kind=args.kind,
            custom_reasons=reasons,
            custom_fields=args.custom_field,
            mail_integrations=mail,
        )
    except ValidationError as exc:
        raise CommandError("; ".join(error["msg"] for error in exc.errors())) from exc
    try:
        stored = add_project(get_database(get_settings()), project)
    except ProjectError as exc:
        raise CommandError(str(exc)) from exc
    print(f"registered {stored.kind} {stored.name!r} ({stored.hash})")
    print(json.dumps(stored.model_dump(mode="json")))
    return 0


def _list(args: argparse.Namespace) -> int:
    from deactivation.mongo import get_database
    from deactivation.projects import list_projects

    projects = list_projects(get_database(get_settings()))
    for project in projects:
        mail = ",".join(f"{m.provider}:{m.list_id}" for m in project.mail_integrations) or "-"
        print(
            f"{project.hash}  {project.kind:<6}  {project.name}  "
            f"reasons={','.join(project.custom_reasons) or '-'}  "
            f"fields={','.join(project.custom_fields) or '-'}  mail={mail}"
        )
    print(json.dumps({"projects": [project.model_dump(mode="json") for project in projects]}))
    return 0
