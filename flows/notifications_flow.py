"""deactivation-notifications: one notification pass (list sync, forwards, auto-replies, digests,
spike alerts), its summary as a Prefect artifact.

Deployed every 5 minutes (prefect.yaml: deactivation-notifications, "*/5 * * * *" UTC). A pass is
safe to repeat or overlap: notifications have deterministic ids and are sent under a lease, so a
retried or concurrent pass never sends one twice (notifications/outbox.py).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from deactivation.settings import get_settings
from flows.artifacts import publish
from flows.tasks import IO_RETRIES, IO_RETRY_DELAYS
from notifications.runner import run_once

NOTIFICATIONS_KEY = "deactivation-notifications"


@task(name="notification-pass", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS)
def notification_pass_task() -> dict[str, Any]:
    """Retrying is safe: what the failed attempt sent is recorded or under a lease."""
    return run_once(get_settings()).as_json()


def notifications_markdown(summary: dict[str, Any]) -> str:
    """The run's artifact: what was sent by kind, and what needs an operator."""
    lines = ["# Notifications", "", "| kind | sent |", "|---|---|"]
    lines += [f"| {kind} | {count} |" for kind, count in summary["sent"].items()]
    lines += [
        "",
        f"Failed (will retry): {summary['failed']}; dead: {summary['dead']}; "
        f"to review (maybe sent): {summary['review']}; skipped: {summary['skipped']}.",
    ]
    if summary["dead"] or summary["review"]:
        lines += [
            "",
            "Act on them with `deact notify list --status dead|review` and `deact notify retry ID`.",
        ]
    skipped = {reason: n for reason, n in summary.get("skipped_by_reason", {}).items() if n}
    if skipped:
        lines += ["", "Skipped: " + ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items())) + "."]
    return "\n".join(lines) + "\n"


@flow(name="deactivation-notifications")
def deactivation_notifications() -> dict[str, Any]:
    summary = notification_pass_task()
    publish(NOTIFICATIONS_KEY, notifications_markdown(summary), "Notification pass: what was sent")
    return summary
