"""The collector: receives the SDK's requests and stores them as raw envelopes (see README).

`create_app` builds the Flask app, the one definition of every route's behaviour (tests drive it
with `test_client()`); `deact serve` runs it behind the async front of `ingest_app.fast_path`
(`create_asgi_app`), which reads bodies with a deadline and answers accepted SDK requests itself.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from deactivation.raw_store import open_raw_store
from deactivation.settings import Settings, get_settings
from ingest_app.collect import collect
from ingest_app.counters import IngestCounters
from ingest_app.errors import register_error_handlers
from ingest_app.health import health
from ingest_app.rate_limits import RateLimits
from ingest_app.state import IngestState
from ingest_app.writer import GroupCommitWriter


def create_app(settings: Settings | None = None) -> Flask:
    """Build the collector app; `settings` defaults to the process settings (the environment)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    store = open_raw_store(settings)
    state = IngestState(
        settings=settings,
        store=store,
        writer=GroupCommitWriter(store, settings.INGEST_BATCH_MAX, settings.INGEST_COMMITTERS),
        counters=IngestCounters(),
        rate_limits=RateLimits(settings),
    )
    state.init_app(app)
    app.register_blueprint(collect)
    app.register_blueprint(health)
    register_error_handlers(app)
    if settings.INGEST_PROXY_HOPS:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.INGEST_PROXY_HOPS)  # type: ignore[method-assign]
    return app
