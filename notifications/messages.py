"""Mail messages: our Jinja2 templates (HTML auto-escaped, a plain-text part always) and the
authors' auto-reply templates (sandboxed), assembled into RFC 5322 messages.

Everything user-supplied (free text, site URLs, names) reaches HTML only through auto-escaping; an
author's auto-reply template renders to plain text, and its HTML part is that text escaped.
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from deactivation.settings import Settings

#: Longest subject sent (collapsed to one line first) and longest rendered author template.
MAX_SUBJECT_CHARS = 200
MAX_RENDERED_CHARS = 100_000

_FILES = Environment(
    loader=PackageLoader("notifications", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
# Authors' templates: sandboxed (no attribute tricks, bounded range()), missing names render empty.
_AUTHOR = SandboxedEnvironment(autoescape=False)

#: The names an auto-reply template can use (documented in docs/notifications.md).
AUTO_REPLY_FIELDS = (
    "project_name",
    "site_url",
    "first_name",
    "last_name",
    "reason_id",
    "reason_label",
    "reason_info",
    "project_version",
    "unsubscribe_url",
)
_SAMPLE_CONTEXT = {name: f"<{name}>" for name in AUTO_REPLY_FIELDS}


class AuthorTemplateError(ValueError):
    """An auto-reply template that does not parse or render."""


def check_author_template(text: str, what: str) -> None:
    """Parse and render once with sample values; AuthorTemplateError says what is wrong."""
    render_author_template(text, _SAMPLE_CONTEXT, what)


def render_author_template(text: str, context: dict[str, Any], what: str = "template") -> str:
    try:
        rendered = _AUTHOR.from_string(text).render(**context)
    except TemplateError as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise AuthorTemplateError(f"{what}: {exc.message or type(exc).__name__}{line}") from None
    if len(rendered) > MAX_RENDERED_CHARS:
        raise AuthorTemplateError(f"{what} renders to more than {MAX_RENDERED_CHARS} characters")
    return rendered


def render_pair(name: str, context: dict[str, Any]) -> tuple[str, str]:
    """(plain text, HTML) of one of our templates: `<name>.txt` and `<name>.html`."""
    return _FILES.get_template(f"{name}.txt").render(**context), _FILES.get_template(f"{name}.html").render(
        **context
    )


def render_auto_reply_html(text: str, context: dict[str, Any]) -> str:
    """The HTML part of an auto-reply: the rendered text, escaped, one <p> per paragraph."""
    paragraphs = [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
    return _FILES.get_template("auto_reply.html").render({"title": "", **context, "paragraphs": paragraphs})


def one_line(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """Header-safe text: whitespace (CR and LF included) collapsed, bounded."""
    return " ".join(str(text).split())[:limit]


def project_link(settings: Settings, project_hash: str) -> str:
    return f"{settings.DASHBOARD_URL.rstrip('/')}/projects/{project_hash}"


def site_link(settings: Settings, project_hash: str, site_url: str) -> str:
    return f"{project_link(settings, project_hash)}/sites/{quote(site_url, safe='')}"


def unsubscribe_link(settings: Settings, token: str) -> str:
    return f"{settings.DASHBOARD_URL.rstrip('/')}/unsubscribe/{token}"


def message_id(notification_id: str, mail_from: str) -> str:
    """Deterministic Message-ID: the same notification always carries the same one (receivers and
    tests can spot a duplicate), without putting the id's content in the header."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{hashlib.sha256(notification_id.encode()).hexdigest()[:40]}@{domain}>"


def build_message(
    settings: Settings,
    *,
    notification_id: str,
    to: list[str],
    subject: str,
    text: str,
    html: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.MAIL_FROM
    message["To"] = [Address(addr_spec=address) for address in to]
    message["Subject"] = one_line(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(notification_id, settings.MAIL_FROM)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def envelope_sender(settings: Settings) -> str:
    return parseaddr(settings.MAIL_FROM)[1]
