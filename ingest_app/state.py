"""What the collector's views share: settings, the raw store, its writer, counters and rate limits."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from deactivation.raw_store import RawStore
from deactivation.settings import Settings
from ingest_app.counters import IngestCounters
from ingest_app.rate_limits import RateLimits
from ingest_app.writer import GroupCommitWriter

EXTENSION = "ingest"


@dataclass
class IngestState:
    settings: Settings
    store: RawStore
    writer: GroupCommitWriter
    counters: IngestCounters
    rate_limits: RateLimits

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self


def ingest_state() -> IngestState:
    return current_app.extensions[EXTENSION]
