"""Benchmark: drain queued notifications through a real local SMTP server.

Queues N forward notifications (default 100,000) in a local MongoDB, runs the notification pass
that `deact notify run` runs (claim in batches, mark sending, render the templates, SMTP, record),
against `deact mail sink` in its own process (so the sink does not share this process's CPU), and
prints messages/s and this process's peak memory. Every message is checked to have arrived once.

    .venv/bin/python bench/notify.py [--messages 100000] [--batch 1000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from deactivation.mongo import NOTIFICATIONS, LocalMongoServer, free_port, get_database
from deactivation.projects import NotificationSettings, Project, upsert_project
from deactivation.settings import Settings
from notifications import outbox
from notifications.runner import BATCH_SIZE, run_once

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def queue(db, count: int) -> None:
    outbox.ensure_indexes(db)
    chunk = 10_000
    for start in range(0, count, chunk):
        documents = [
            {
                "_id": f"forward:bench-{i:07d}",
                "kind": "forward",
                "project_hash": PROJECT,
                "event_id": f"bench-{i:07d}",
                "payload": {
                    "site_url": f"https://site-{i}.example.com",
                    "received_at": NOW.isoformat(),
                    "reason_id": "is-not-working",
                    "reason_label": "Not working",
                    "reason_info": "The settings page stays blank <b>after</b> the update",
                    "project_version": "2.4.0",
                    "wp_version": "6.5.3",
                    "php_version": "8.2.36",
                },
            }
            for i in range(start, min(start + chunk, count))
        ]
        outbox.enqueue(db[NOTIFICATIONS], documents, NOW)


def wait_for_sink(port: int, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("the mail sink did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=BATCH_SIZE)
    parser.add_argument("--dir", type=Path, default=None, help="Work directory (default: a temporary one).")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-notify-"))
    smtp_port = free_port()
    mail_dir = root / "mail"
    with LocalMongoServer(root / "mongo") as mongo:
        settings = Settings(
            MONGODB_URI=mongo.uri,
            MONGODB_DB="bench",
            DATA_DIR=root / "data",
            WAREHOUSE_URL=f"duckdb:///{root / 'warehouse.duckdb'}",
            SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
            SECRET_KEY="bench",
            _env_file=None,
        )
        db = get_database(settings)
        upsert_project(
            db,
            Project(
                hash=PROJECT,
                name="Form Builder Pro",
                notifications=NotificationSettings(forward_to=["team@example.org"]),
            ),
        )
        started = time.perf_counter()
        queue(db, args.messages)
        queued_s = time.perf_counter() - started
        sink = subprocess.Popen(
            [sys.executable, "-m", "deact", "mail", "sink", "--port", str(smtp_port), "--dir", str(mail_dir)],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_sink(smtp_port)
            started = time.perf_counter()
            summary = run_once(settings, now=NOW, plan=False, batch_size=args.batch).as_json()
            seconds = time.perf_counter() - started
        finally:
            sink.terminate()
            sink.wait(30)
        arrived = len(list(mail_dir.glob("*.eml")))
        sent_status = db[NOTIFICATIONS].count_documents({"status": "sent"})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"queued {args.messages} notifications in {queued_s:.1f} s")
    sent = summary["sent"]["forward"]
    print(
        f"drained {sent} in {seconds:.1f} s: {sent / seconds:.0f} messages/s (batch {args.batch}); "
        f"{arrived} .eml files arrived, {sent_status} recorded sent"
    )
    print(f"peak memory of the runner process: {peak_mb:.0f} MB (ru_maxrss)")
    if not (summary["sent"]["forward"] == arrived == sent_status == args.messages):
        raise SystemExit("not every message arrived exactly once")


if __name__ == "__main__":
    main()
