"""`deact notify run|list|retry`: one notification pass, and the operator's view of failures."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from deact.cli import add_json_option
from deact.errors import CommandError, validation_messages
from deact.preflight import registry_database
from deactivation.mongo import MAIL_OUTBOX, NOTIFICATIONS, get_database
from deactivation.projects import (
    MAX_TEMPLATE_CHARS,
    AutoReply,
    NotificationSettings,
    resolve_project,
    set_notifications,
)
from deactivation.settings import get_settings
from notifications.messages import AuthorTemplateError, check_author_template
from notifications.outbox import OutboxError, retry
from notifications.smtp import SmtpTarget, SmtpUrlError
from notifications.webhooks import webhook_secret

LIST_STATUSES = ("failed", "dead", "review", "pending", "claimed", "sent", "skipped")
MAX_LIST = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "notify", help="Send due notifications (forwards, auto-replies, digests, alerts, list sync)."
    )
    actions = parser.add_subparsers(dest="notify_command", metavar="ACTION", required=True)

    run = actions.add_parser(
        "run", help="One pass: plan what is due, send it; prints a JSON summary as its last line."
    )
    run.add_argument("--limit", type=int, default=None, help="Send at most this many per outbox.")
    run.add_argument(
        "--no-plan", action="store_true", help="Only send what is queued (no new forwards, digests, alerts)."
    )
    run.set_defaults(handler=_run)

    list_ = actions.add_parser("list", help="Notifications by status (failed, dead, review, ...).")
    list_.add_argument(
        "--status", choices=LIST_STATUSES, default="failed", help="Which notifications (default failed)."
    )
    list_.add_argument("--limit", type=int, default=50, help=f"At most this many (≤ {MAX_LIST}).")
    list_.set_defaults(handler=_list)

    retry = actions.add_parser(
        "retry", help="Queue a failed, dead or review notification again (review: it may have been sent)."
    )
    retry.add_argument("id", help="The notification id `deact notify list` shows.")
    retry.set_defaults(handler=_retry)


def _run(args: argparse.Namespace) -> int:
    # lazy: the runner loads Jinja2, httpx and every provider (~0.8 s); only `notify run` needs it.
    from notifications.runner import run_once

    settings = get_settings()
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    try:
        target = SmtpTarget.parse(settings.SMTP_URL)
    except SmtpUrlError as exc:
        raise CommandError(str(exc)) from exc
    summary = run_once(settings, plan=not args.no_plan, limit=args.limit).as_json()
    sent = ", ".join(f"{n} {kind}" for kind, n in summary["sent"].items() if n) or "nothing"
    print(f"sent {sent} via {target.describe()}")
    if summary["failed"] or summary["dead"] or summary["review"]:
        print(
            f"{summary['failed']} failed (will retry), {summary['dead']} dead, "
            f"{summary['review']} to review: "
            "see `deact notify list --status failed|dead|review`"
        )
    print(json.dumps(summary))
    return 0


def _collection_for(notification_id: str):
    # Outbox requests of the pipeline are "<event_id>:<provider>:<list_id>"; ours start with a kind.
    kinds = ("forward:", "auto_reply:", "digest:", "alert:", "webhook:")
    return NOTIFICATIONS if notification_id.startswith(kinds) else MAIL_OUTBOX


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_LIST:
        raise CommandError(f"--limit must be between 1 and {MAX_LIST}")
    db = get_database(get_settings())
    rows = []
    for collection in (NOTIFICATIONS, MAIL_OUTBOX):
        fields = {"kind": 1, "provider": 1, "project_hash": 1, "attempts": 1, "last_error": 1, "status": 1}
        for document in db[collection].find({"status": args.status}, fields).limit(args.limit - len(rows)):
            rows.append(
                {
                    "id": document["_id"],
                    "kind": document.get("kind") or f"list_sync/{document.get('provider')}",
                    "project_hash": document.get("project_hash"),
                    "attempts": document.get("attempts", 0),
                    "last_error": document.get("last_error"),
                }
            )
        if len(rows) >= args.limit:
            break
    for row in rows:
        print(f"{row['id']}  {row['kind']}  attempts={row['attempts']}  {row['last_error'] or ''}".rstrip())
    print(f"{len(rows)} {args.status}")
    print(json.dumps({"status": args.status, "notifications": rows}))
    return 0


def _retry(args: argparse.Namespace) -> int:
    db = get_database(get_settings())
    try:
        document = retry(db[_collection_for(args.id)], args.id, datetime.now(UTC))
    except OutboxError as exc:
        raise CommandError(str(exc)) from exc
    was = document["status"]
    note = " (it may already have been sent once)" if was == "review" else ""
    print(f"queued {args.id} again (was {was}){note}; the next `deact notify run` sends it")
    print(json.dumps({"id": args.id, "was": was, "status": "pending"}))
    return 0


# --- `deact projects notify`: a project's notification settings (registered by projects.py) -------
def register_project_notify(actions: argparse._SubParsersAction) -> None:
    notify = actions.add_parser(
        "notify",
        help="Set a project's forwards, auto-replies, digest and spike alerts (options not given stay).",
        description="Each option given replaces that setting; an option given with no value turns it "
        "off (e.g. `--forward-to` alone). An auto-reply template file starts with a `Subject: ...` "
        "line, then a blank line, then the body; both are Jinja2 templates with the fields listed in "
        "docs/notifications.md.",
    )
    notify.add_argument("--project", required=True, metavar="PROJECT", help="The project's name or hash.")
    notify.add_argument(
        "--forward-to", nargs="*", metavar="EMAIL", help="The team: one mail per deactivation."
    )
    notify.add_argument(
        "--auto-reply",
        nargs="*",
        metavar="REASON_ID=TEMPLATE_FILE",
        help="Reply to the site admin for these reasons (replaces all auto-replies).",
    )
    notify.add_argument(
        "--digest", choices=("off", "daily", "weekly"), default=None, help="A digest of the period's numbers."
    )
    notify.add_argument("--digest-to", nargs="*", metavar="EMAIL", help="Who gets the digest.")
    notify.add_argument("--timezone", default=None, help="IANA zone the digest's days and weeks use.")
    notify.add_argument("--alerts", choices=("on", "off"), default=None, help="Spike alerts.")
    notify.add_argument("--alerts-to", nargs="*", metavar="EMAIL", help="Who gets spike alerts.")
    notify.add_argument(
        "--webhook",
        default=None,
        metavar="URL",
        help="Signed webhook for deactivation.created and alert.spike ('' turns it off).",
    )
    add_json_option(notify, "the project's notification settings")
    notify.set_defaults(handler=_project_notify)


def read_auto_reply(path_text: str, reason_id: str):
    """An auto-reply template file → AutoReply (checked: size, shape, Jinja2 syntax)."""
    path = Path(path_text)
    try:
        if path.stat().st_size > MAX_TEMPLATE_CHARS * 4:
            raise CommandError(f"{path}: larger than {MAX_TEMPLATE_CHARS} characters")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read the auto-reply template {path}: {exc}") from exc
    first, _, rest = text.replace("\r\n", "\n").partition("\n")
    if not first.lower().startswith("subject:") or not rest.strip():
        raise CommandError(f"{path}: start with a 'Subject: ...' line, then a blank line and the body")
    subject, body = first[len("subject:") :].strip(), rest.strip("\n")
    try:
        check_author_template(subject, f"{path} subject")
        check_author_template(body, f"{path} body")
        return AutoReply(subject=subject, body=body)
    except AuthorTemplateError as exc:
        raise CommandError(str(exc)) from exc
    except ValueError as exc:
        raise CommandError(f"{path} ({reason_id}): {validation_messages(exc)}") from exc


def _project_notify(args: argparse.Namespace) -> int:
    db = registry_database(get_settings())
    project = resolve_project(db, args.project)
    changes: dict = {}
    for option in ("forward_to", "digest_to", "alerts_to"):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    for option in ("digest", "timezone", "alerts"):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    if args.webhook is not None:
        changes["webhook_url"] = args.webhook.strip() or None
    if args.auto_reply is not None:
        replies = {}
        for item in args.auto_reply:
            reason_id, found, path = item.partition("=")
            if not found or not reason_id.strip() or not path.strip():
                raise CommandError(f"--auto-reply expects REASON_ID=TEMPLATE_FILE, got {item!r}")
            replies[reason_id.strip()] = read_auto_reply(path.strip(), reason_id.strip())
        changes["auto_replies"] = replies
    if not changes:
        raise CommandError("nothing to change: give --forward-to, --auto-reply, --digest, --alerts, ...")
    try:
        settings = NotificationSettings.model_validate({**project.notifications.model_dump(), **changes})
    except ValidationError as exc:
        raise CommandError(validation_messages(exc)) from exc
    updated = set_notifications(db, project.hash, settings)
    if args.json:
        print(json.dumps(updated.notifications.model_dump(mode="json")))
        return 0
    print(f"{updated.name} ({updated.hash}): {describe_notifications(updated)}")
    if updated.notifications.webhook_url and "webhook_url" in changes:
        secret = webhook_secret(get_settings(), updated.hash)
        print(
            "webhook deliveries are signed (X-Deactivation-Signature: t=…,v1=HMAC-SHA256); "
            f"verify them with this secret: {secret}"
        )
    return 0


def describe_notifications(project) -> str:
    """One line: what a project is notified of (for `deact projects list`)."""
    settings = project.notifications
    parts = []
    if settings.forward_to:
        parts.append(f"forward→{len(settings.forward_to)}")
    if settings.auto_replies:
        parts.append(f"auto-reply[{','.join(sorted(settings.auto_replies))}]")
    if settings.digest != "off":
        parts.append(f"digest {settings.digest}→{len(settings.digest_to)} ({settings.timezone})")
    if settings.alerts == "on":
        parts.append(f"alerts→{len(settings.alerts_to)}")
    if settings.webhook_url:
        parts.append("webhook")
    return " ".join(parts) or "-"
