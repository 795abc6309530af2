"""MongoDB: collection names, the client, and the local server for the embedded stack.

Code talks only standard pymongo. Locally, `deact mongo serve` runs SecantusDB (a MongoDB
wire-protocol server on WiredTiger, installed from PyPI as `secantusdb`) as a separate process;
in production MONGODB_URI points at a real MongoDB.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure

from deactivation.processes import stop_process_group
from deactivation.settings import Settings

log = logging.getLogger(__name__)

# Collection names (stable: dashboards and later tooling read them).
PROJECTS = "projects"
DEACTIVATIONS = "deactivations"
SITES = "sites"
MAIL_OUTBOX = "mail_outbox"
#: Notification records (forwards, auto-replies, digests, alerts, webhooks; notifications/outbox.py).
NOTIFICATIONS = "notifications"
#: What the analytics build published last: one document, `{_id: PUBLISHED_MARKER_ID, watermark,
#: built_at}` (the dashboard keys its caches of aggregate rows on it).
ANALYTICS_PUBLISHED = "analytics_published"
PUBLISHED_MARKER_ID = "published"
#: One lease document per raw hour a pipeline run is processing (beam/hour_lock.py).
PIPELINE_LOCKS = "pipeline_locks"


#: MongoDB's error code for dropping an index that is not there (any more).
INDEX_NOT_FOUND = 27
#: Indexes earlier versions created that nothing reads any more: `_id` (project|site) is already
#: the unique key of a site, the list sorts each window itself, and the outbox is claimed through
#: the notifier's own indexes (notifications/outbox.py). Each one cost every write of latest state
#: an index entry, so they are dropped where found.
RETIRED_LATEST_STATE_INDEXES = {
    DEACTIVATIONS: ("project_site_unique", "dashboard_project_time_id", "dashboard_project_reason_time_id"),
    SITES: ("project_site_unique",),
    MAIL_OUTBOX: ("status_time", "event_id"),
}


def ensure_latest_state_indexes(db: Database) -> None:
    """The indexes of latest state (idempotent; the pipeline and the dashboard both create them, so
    either works on a database the other has not touched yet).

    A site's document is keyed by `_id` = project|site (the conditional upserts' key), so latest
    state needs only what the readers filter on: the dashboard's list reads windows of
    `received_at` per project (and reason); lookups by project (site names, erasure, counts) use
    the same index's leading field. Every index is written on every upsert, so there are no more.
    """
    for collection, retired in RETIRED_LATEST_STATE_INDEXES.items():
        for name in set(db[collection].index_information()).intersection(retired):
            try:
                db[collection].drop_index(name)
            except OperationFailure as exc:  # the dashboard and a pipeline run starting together
                if exc.code != INDEX_NOT_FOUND:
                    raise
    by_time = [("project_hash", ASCENDING), ("received_at", DESCENDING)]
    for collection in (DEACTIVATIONS, SITES):
        db[collection].create_index(by_time, name="project_time")
    by_reason = [("project_hash", ASCENDING), ("reason_id", ASCENDING), ("received_at", DESCENDING)]
    db[DEACTIVATIONS].create_index(by_reason, name="project_reason_time")


def connect(settings: Settings, *, timeout_ms: int = 5000) -> MongoClient:
    return MongoClient(settings.MONGODB_URI, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)


def get_database(settings: Settings, client: MongoClient | None = None) -> Database:
    return (client or connect(settings))[settings.MONGODB_DB]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: install the project's requirements (make venv)")
    return found


def server_command(port: int, data_dir: Path | str, host: str = "127.0.0.1") -> list[str]:
    return [
        _server_executable(),
        "--host",
        host,
        "--port",
        str(port),
        "--storage-path",
        str(data_dir),
        "--log-level",
        "WARNING",
        # A standalone server: nothing here uses change streams or transactions, and advertising
        # the single-node replica set makes SecantusDB write an oplog entry per document written
        # (about a fifth of its insert throughput, measured with latest-state documents).
        "--standalone",
    ]


def wait_until_ready(uri: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=500) as client:
                client.admin.command("ping")
                return
        except Exception as exc:  # not up yet
            last_error = exc
            time.sleep(0.2)
    raise TimeoutError(f"MongoDB at {uri} did not answer within {timeout_s:.0f}s: {last_error}")


class LocalMongoServer:
    """A local MongoDB-compatible server process, started and stopped by PID."""

    def __init__(self, data_dir: Path | str, port: int | None = None, log_path: Path | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout_s: float = 60.0) -> LocalMongoServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            server_command(self.port, self.data_dir.resolve()),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_ready(self.uri, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is not None:
            stop_process_group(self.process, timeout_s)

    def __enter__(self) -> LocalMongoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
