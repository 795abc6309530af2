"""retention: remove what is older than its limit from every store (settings RETENTION_*).

Deployed daily (prefect.yaml: retention, "40 3 * * *" UTC), away from the hourly pipeline and
analytics runs. What "older than the limit" means exactly: privacy/retention.py. The production
equivalents (GCS lifecycle rules, BigQuery partition expiration) are in docs/privacy.md; this flow
still runs there, for MongoDB and as a backstop.
"""

from __future__ import annotations

from prefect import flow, task

from deactivation.settings import get_settings
from flows.artifacts import publish
from flows.tasks import IO_RETRIES, IO_RETRY_DELAYS
from privacy.retention import RetentionSummary, apply_retention

RETENTION_KEY = "retention"


@task(name="apply-retention", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS)
def apply_retention_task(dry_run: bool) -> RetentionSummary:
    """Idempotent: a retry removes what the failed attempt had not yet removed."""
    return apply_retention(get_settings(), dry_run=dry_run)


def retention_markdown(summary: RetentionSummary) -> str:
    """The run's artifact: per store, what is kept from, and what went."""
    title = "Retention (dry run: nothing removed)" if summary.dry_run else "Retention"
    lines = [f"# {title}", "", f"Run at {summary.now:%Y-%m-%d %H:%M} UTC in {summary.seconds:.1f} s.", ""]
    lines += ["| store | kept from | removed |", "|---|---|---|"]
    for prefix, files in summary.raw_files.items():
        hours = summary.raw_hours[prefix]
        lines.append(
            f"| raw {prefix}/ | {summary.kept_from[f'raw:{prefix}']} | {files} files in {hours} hours |"
        )
    for table, rows in summary.warehouse_rows.items():
        lines.append(f"| warehouse {table} | {summary.kept_from['warehouse']} | {rows} rows |")
    for collection, documents in summary.mongo_documents.items():
        kept = summary.kept_from[f"mongo:{collection}"]
        lines.append(f"| MongoDB {collection} | {kept} | {documents} documents |")
    return "\n".join(lines) + "\n"


@flow(name="retention")
def retention(dry_run: bool = False) -> RetentionSummary:
    """Apply every retention limit once; `dry_run` only counts."""
    summary = apply_retention_task(dry_run)
    publish(RETENTION_KEY, retention_markdown(summary), "Retention: what was removed")
    return summary
