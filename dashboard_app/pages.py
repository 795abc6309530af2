"""The pages: login, projects, a project's overview, its deactivations list and one site's history.

Server-rendered; the list, its filters and paging work without JavaScript; the charts are drawn by
plotly.js (served from the installed plotly package) from figure JSON embedded as data blocks, so
the Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import plotly.graph_objects as go
from flask import Blueprint, Response, abort, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from dashboard_app import service
from dashboard_app.auth import SESSION_KEY_ID, project_for, projects_of
from dashboard_app.context import dashboard
from dashboard_app.errors import bad_parameter
from dashboard_app.filters import parse_period
from dashboard_app.summary import dead_letters_by_day
from deactivation.api_keys import ApiKey, verify_key

pages = Blueprint("pages", __name__)

PERIODS = ("7", "30", "90", "custom")


class LoginForm(FlaskForm):
    key = PasswordField("API key", validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    """No fields: a POST with the CSRF token."""


@pages.app_context_processor
def _forms() -> dict:
    return {"logout_form": LogoutForm(), "current_key": getattr(g, "api_key", None)}


def _page_key() -> ApiKey:
    key = getattr(g, "api_key", None)
    if key is None:
        abort(redirect(url_for("pages.login")))
    return key


@pages.get("/")
def home() -> Response:
    return redirect(url_for("pages.projects" if getattr(g, "api_key", None) else "pages.login"))


@pages.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        key = verify_key(dashboard().db, dashboard().settings, form.key.data.strip())
        if key is not None:
            session.clear()
            session.permanent = True
            session[SESSION_KEY_ID] = key.key_id
            return redirect(url_for("pages.projects"))
        error = "That key is not valid (unknown, mistyped or revoked)."
    elif request.method == "POST":
        error = "Enter an API key."
    status = 401 if error else 200
    return render_template("login.html", form=form, error=error), status


@pages.post("/logout")
def logout() -> Response:
    LogoutForm()  # CSRF checked by CSRFProtect before this runs
    session.clear()
    return redirect(url_for("pages.login"))


@pages.get("/projects")
def projects() -> str:
    key = _page_key()
    return render_template("projects.html", projects=projects_of(key))


def _period_args() -> tuple[str, dict[str, str]]:
    period = request.args.get("period", "30")
    if period not in PERIODS:
        raise bad_parameter("period", "must be 7, 30, 90 or custom")
    if period == "custom":
        start_day, end_day = parse_period(request.args)
    else:
        end_day = datetime.now(UTC).date()
        start_day = end_day - timedelta(days=int(period) - 1)
    return period, {"from": start_day.isoformat(), "to": end_day.isoformat()}


@pages.get("/projects/<project_hash>")
def overview(project_hash: str) -> str:
    key = _page_key()
    project = project_for(key, project_hash)
    period, period_args = _period_args()
    summary = service.summary(project, period_args)
    charts = service.charts(project, period_args)
    quality = None
    if key.is_operator:
        start_day, end_day = parse_period(period_args)
        quality = dead_letters_by_day(dashboard().db, start_day, end_day)
        quality["figure"] = _quality_figure(quality)
    return render_template(
        "overview.html",
        project=project,
        period=period,
        period_args=period_args,
        summary=summary,
        charts=charts,
        quality=quality,
    )


def _quality_figure(quality: dict) -> dict:
    figure = go.Figure(
        [
            go.Bar(name=error_type, x=quality["days"], y=counts)
            for error_type, counts in quality["by_type"].items()
        ]
    )
    figure.update_layout(
        barmode="stack", template="plotly_white", height=320, margin={"l": 50, "r": 20, "t": 30, "b": 50}
    )
    figure.update_yaxes(title_text="Dead letters")
    return json.loads(figure.to_json())


@pages.get("/projects/<project_hash>/deactivations")
def deactivations(project_hash: str) -> str:
    key = _page_key()
    project = project_for(key, project_hash)
    page, filters = service.deactivations_page(project, key, request.args)
    base = filters.query_args()
    limit = request.args.get("limit")
    if limit:
        base["limit"] = limit
    return render_template(
        "deactivations.html",
        project=project,
        page=page,
        filters=filters,
        reasons=project.reasons,
        personal=key.sees_personal_data,
        limit=limit,
        next_url=_list_url(project.hash, base, page.next_cursor),
        previous_url=_list_url(project.hash, base, page.previous_cursor),
        csv_url=url_for("pages.deactivations_csv", project_hash=project.hash) + _query(base),
        site_path=service.site_path,
    )


def _query(args: dict[str, str]) -> str:
    return "?" + urlencode(args) if args else ""


def _list_url(project_hash: str, base: dict[str, str], cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return url_for("pages.deactivations", project_hash=project_hash) + _query({**base, "cursor": cursor})


@pages.get("/projects/<project_hash>/deactivations.csv")
def deactivations_csv(project_hash: str) -> Response:
    key = _page_key()
    return service.csv_download(project_for(key, project_hash), key, request.args)


@pages.get("/projects/<project_hash>/sites/<path:site_url>")
def site(project_hash: str, site_url: str) -> str:
    key = _page_key()
    project = project_for(key, project_hash)
    return render_template("site.html", project=project, site=service.site(project, key, site_url))
