"""What every request of the dashboard shares: settings, the MongoDB database, the warehouse, the
cursor signer and the chart list. Built once by create_app and kept in `app.extensions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from flask import Flask, current_app
from pymongo import MongoClient
from pymongo.database import Database

from dashboard_app.charts import DashboardChart, dashboard_charts
from dashboard_app.state import Cursors
from deactivation.settings import Settings
from deactivation.warehouse import Warehouse
from reports.promotion import DEFAULT_REVIEW_DIR
from reports.registry import DEFAULT_CHARTS_DIR, DEFAULT_SQL_DIR

_EXTENSION = "dashboard"


@dataclass
class Dashboard:
    settings: Settings
    client: MongoClient
    warehouse: Warehouse
    cursors: Cursors
    review_dir: Path = DEFAULT_REVIEW_DIR
    _charts: list[DashboardChart] = field(default_factory=list)
    _charts_signature: tuple = ()
    _charts_lock: Lock = field(default_factory=Lock)

    @property
    def db(self) -> Database:
        return self.client[self.settings.MONGODB_DB]

    def init_app(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self

    def charts(self) -> list[DashboardChart]:
        """The registered and in-review charts, re-read when a chart file changed (a promotion or
        a preview shows up without a restart)."""
        signature = tuple(
            (path.name, path.stat().st_mtime_ns)
            for folder in (DEFAULT_CHARTS_DIR, DEFAULT_SQL_DIR, self.review_dir)
            if folder.is_dir()
            for path in sorted(folder.iterdir())
        )
        with self._charts_lock:
            if signature != self._charts_signature:
                self._charts = dashboard_charts(self.review_dir)
                self._charts_signature = signature
            return self._charts


def dashboard() -> Dashboard:
    return current_app.extensions[_EXTENSION]
