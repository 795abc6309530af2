"""The plugin author's dashboard: pages and a JSON API over one project's deactivations (issue 13).

Reads MongoDB for every page view (latest state, published aggregates, projects, keys) and the
warehouse only for the CSV export and one site's history. Run it with `deact dashboard serve`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import plotly
from flask import Flask, Response, request, send_file
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect

from dashboard_app.api import api
from dashboard_app.auth import identify, rate_limit_key
from dashboard_app.context import Dashboard
from dashboard_app.errors import register_error_handlers
from dashboard_app.pages import pages
from dashboard_app.state import Cursors
from dashboard_app.unsubscribe import unsubscribe
from deactivation.mongo import connect, ensure_latest_state_indexes
from deactivation.secret_keys import derived_key
from deactivation.settings import Settings, get_settings
from deactivation.warehouse import open_warehouse

log = logging.getLogger(__name__)

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
#: No inline script, no framing, nothing from other origins. Plotly sets inline styles on its SVG.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(settings: Settings | None = None) -> Flask:
    """Build the dashboard; `settings` defaults to the process settings (the environment)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=derived_key(settings, "dashboard-session"),
        SESSION_COOKIE_NAME="dashboard_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.DASHBOARD_SECURE_COOKIES,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=16 * 1024,  # the only bodies are the login and logout forms
        WTF_CSRF_TIME_LIMIT=12 * 3600,
    )
    app.url_map.merge_slashes = False  # site URLs (https://…) are path segments
    client = connect(settings)
    dashboard = Dashboard(
        settings=settings, client=client, warehouse=open_warehouse(settings), cursors=Cursors(settings)
    )
    dashboard.init_app(app)
    try:
        ensure_latest_state_indexes(dashboard.db)
    except Exception as exc:  # MongoDB down at start: serve errors per request, retry indexes next start
        log.warning("dashboard indexes not ensured (MongoDB unreachable?): %s", type(exc).__name__)

    app.before_request(identify)  # before the limiter: limits count per key
    Limiter(
        rate_limit_key,
        app=app,
        default_limits=[settings.DASHBOARD_RATE_LIMIT],
        default_limits_exempt_when=_is_static_request,
        storage_uri=settings.DASHBOARD_RATE_LIMIT_STORAGE,
        headers_enabled=True,
    )
    csrf = CSRFProtect(app)
    csrf.exempt(api)  # keyed by the Authorization header, which a cross-site form cannot set

    # --- blueprints: every part of the dashboard is registered here ---
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(unsubscribe)  # notifications: /unsubscribe/<token> (RFC 8058)

    app.add_url_rule("/static/vendor/plotly.min.js", "plotly_js", _plotly_js)
    app.after_request(_security_headers)
    register_error_handlers(app)
    return app


def _is_static_request() -> bool:
    return request.endpoint in {"static", "plotly_js"}


def _plotly_js() -> Response:
    return send_file(PLOTLY_JS, mimetype="text/javascript", max_age=86400)


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype in {"application/json", "text/csv", "text/html"}:
        response.headers.setdefault("Cache-Control", "no-store")
    return response
