"""What `deact demo` turns on for notifications, and one pass into the local mail sink.

The demo projects get: forwards of Simple SEO Meta's deactivations to its team; for Form Builder
Pro an auto-reply to admins who chose "Not working", a daily digest and spike alerts. The pass
sends through SMTP_URL; when that is the local default and nothing listens there, a mail sink is
started for the pass (like the demo's MongoDB), so the mails always land as .eml files.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from deactivation.generator import DEMO_PROJECTS
from deactivation.mongo import get_database
from deactivation.projects import AutoReply, NotificationSettings, set_notifications
from deactivation.settings import Settings
from notifications.runner import run_once
from notifications.sink import MailSink
from notifications.smtp import SmtpTarget

DEMO_TEAM = ["team@form-builder.example", "support@form-builder.example"]
DEMO_REPLY = AutoReply(
    subject="Sorry {{ project_name }} stopped working for you",
    body=(
        "Hi {{ first_name }},\n\n"
        "we saw that {{ project_name }} {{ project_version }} did not work on {{ site_url }}"
        '{% if reason_info %} (you wrote: "{{ reason_info }}"){% endif %}.\n\n'
        "Reply to this mail and we will help you get it running.\n\n"
        "The Form Builder team"
    ),
)
DEMO_NOTIFICATIONS = {
    DEMO_PROJECTS[0].hash: NotificationSettings(
        auto_replies={"is-not-working": DEMO_REPLY},
        digest="daily",
        digest_to=DEMO_TEAM[:1],
        alerts="on",
        alerts_to=DEMO_TEAM[:1],
    ),
    DEMO_PROJECTS[1].hash: NotificationSettings(forward_to=["team@seo-meta.example"]),
}


def mail_dir(settings: Settings) -> Path:
    return settings.DATA_DIR / "mail"


def demo_pass(settings: Settings) -> dict[str, Any]:
    """Turn on the demo's notifications and run one pass; what was sent and where to read it."""
    db = get_database(settings)
    try:
        for project_hash, notifications in DEMO_NOTIFICATIONS.items():
            set_notifications(db, project_hash, notifications)
    finally:
        db.client.close()
    with _sink_if_needed(settings) as note:
        summary = run_once(settings).as_json()
    directory = mail_dir(settings)
    return {
        "sent": summary["sent"],
        "skipped": summary["skipped_by_reason"],
        "failed": summary["failed"] + summary["dead"] + summary["review"],
        "smtp": note,
        "mail_dir": str(directory),
        "eml_files": len(list(directory.glob("*.eml"))) if directory.is_dir() else 0,
    }


def _sink_if_needed(settings: Settings) -> AbstractContextManager[str]:
    target = SmtpTarget.parse(settings.SMTP_URL)
    local = not target.implicit_tls and target.host in {"127.0.0.1", "localhost"}
    if not local:
        return nullcontext(f"sent through {target.describe()}")
    with socket.socket() as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((target.host, target.port)) == 0:
            return nullcontext(f"sent to the SMTP server already listening on {target.describe()}")
    return _started_sink(settings, target)


@contextmanager
def _started_sink(settings: Settings, target: SmtpTarget) -> Iterator[str]:
    with MailSink(mail_dir(settings), host=target.host, port=target.port):
        yield f"started a mail sink on {target.describe()} for the demo (`make up` runs one)"
