"""Unsubscribe links of auto-replies: /unsubscribe/<token> (RFC 8058 one-click).

GET shows a confirmation page with one button (mail scanners that follow links must not
unsubscribe anyone); POST unsubscribes: what a person's click on that button sends, and what a mail
client sends on its own for `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. The signed token is
the authority (it names the project and the keyed hash of the address, never the address), so the
POST is exempt from the dashboard's CSRF check (a mail client has no CSRF token) and needs no login.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, render_template_string

from dashboard_app.context import dashboard
from deactivation.suppression import UnsubscribeTokenError, read_unsubscribe_token, suppress_hash

log = logging.getLogger(__name__)

unsubscribe = Blueprint("unsubscribe", __name__)
# CSRFProtect keeps itself in app.extensions["csrf"]; exempting here keeps create_app to one line.
unsubscribe.record_once(
    lambda state: state.app.extensions["csrf"].exempt(unsubscribe) if "csrf" in state.app.extensions else None
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="robots" content="noindex"></head>
<body style="font-family: -apple-system, Segoe UI, Roboto, sans-serif; max-width: 36rem; margin: 3rem auto;">
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if confirm %}<form method="post"><button type="submit">Unsubscribe</button></form>{% endif %}
</body></html>"""


def _page(title: str, message: str, status: int = 200, confirm: bool = False) -> Response:
    html = render_template_string(_PAGE, title=title, message=message, confirm=confirm)
    return Response(html, status=status, mimetype="text/html")


def _invalid() -> Response:
    return _page(
        "Link not valid", "This unsubscribe link is not valid. Copy the whole link from the e-mail.", 404
    )


@unsubscribe.get("/unsubscribe/<token>")
def confirm(token: str) -> Response:
    try:
        read_unsubscribe_token(dashboard().settings, token)
    except UnsubscribeTokenError:
        return _invalid()
    return _page(
        "Unsubscribe",
        "Stop the automatic replies this plugin sends after a deactivation to this address?",
        confirm=True,
    )


@unsubscribe.post("/unsubscribe/<token>")
def one_click(token: str) -> Response:
    context = dashboard()
    try:
        project_hash, hashed = read_unsubscribe_token(context.settings, token)
    except UnsubscribeTokenError:
        return _invalid()
    suppress_hash(context.db, project_hash, hashed, "unsubscribed")
    log.info("unsubscribed one address from a project's auto-replies")
    return _page("Unsubscribed", "You will not receive these messages again.")
