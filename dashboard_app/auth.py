"""Who is asking: an API key from `Authorization: Bearer KEY`, or a browser session after /login.

The session cookie (signed, HttpOnly, SameSite=Strict) holds only the key's id; the key itself is
looked up on every request, so a revoked key stops working at once in the browser too. A key is
never accepted in a URL. A project the key does not cover answers 404, exactly like a project that
does not exist.
"""

from __future__ import annotations

from flask import g, request, session

from dashboard_app.context import dashboard
from dashboard_app.errors import not_found, unauthorized
from deactivation.api_keys import ApiKey, live_key, verify_key
from deactivation.projects import Project, ProjectError, get_project, list_projects, normalise_hash

SESSION_KEY_ID = "key_id"
_MAX_AUTHORIZATION = 200


def identify() -> None:
    """Before every request: who is asking (g.api_key, None when nobody valid). Never raises, so
    the rate limiter can count failed attempts per client address."""
    g.api_key = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, presented = header[:_MAX_AUTHORIZATION].partition(" ")
        if scheme.lower() == "bearer":
            g.api_key = verify_key(dashboard().db, dashboard().settings, presented.strip())
        return
    if not request.path.startswith("/api/") and SESSION_KEY_ID in session:
        g.api_key = live_key(dashboard().db, session[SESSION_KEY_ID])
        if g.api_key is None:  # revoked since login
            session.clear()


def rate_limit_key() -> str:
    key: ApiKey | None = getattr(g, "api_key", None)
    return f"key:{key.key_id}" if key else f"addr:{request.remote_addr}"


def require_key() -> ApiKey:
    key: ApiKey | None = getattr(g, "api_key", None)
    if key is None:
        if request.headers.get("Authorization"):
            raise unauthorized("the API key is not valid (unknown, malformed or revoked)")
        raise unauthorized()
    return key


def project_for(key: ApiKey, project_hash: str) -> Project:
    """The project, if the key covers it; 404 otherwise (whether or not it exists)."""
    try:
        canonical = normalise_hash(project_hash)
    except ValueError:
        raise not_found("no such project") from None
    if not key.covers(canonical):
        raise not_found("no such project")
    try:
        return get_project(dashboard().db, canonical)
    except ProjectError:
        raise not_found("no such project") from None


def projects_of(key: ApiKey) -> list[Project]:
    return [p for p in list_projects(dashboard().db) if key.covers(p.hash)]
