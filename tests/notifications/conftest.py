"""Fixtures for notification tests: a real SMTP server in-process, settings pointing at it, and
helpers that put deactivations in the warehouse (and the admin contact in MongoDB `sites`) the way
the pipeline does."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from deactivation.hours import hour_floor
from deactivation.mongo import SITES
from deactivation.schemas import DEACTIVATIONS, HOUR_LOADS
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse, rows_to_arrow
from notifications.sink import MailSink, read_messages
from notifications.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
    webhook_secret,
)

DASHBOARD = "https://dash.example.org"


@pytest.fixture
def mail_sink(tmp_path: Path):
    with MailSink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def notify_settings(settings: Settings, mail_sink: MailSink) -> Settings:
    return settings.model_copy(
        update={
            "SMTP_URL": mail_sink.url,
            "DASHBOARD_URL": DASHBOARD,
            "SECRET_KEY": "test-secret-key",
            "MAIL_FROM": "Deactivations <notify@example.org>",
        }
    )


def sink_messages(sink: MailSink) -> list[EmailMessage]:
    return read_messages(sink.directory)


def by_kind(messages: Iterable[EmailMessage]) -> dict[str, list[EmailMessage]]:
    """Messages grouped by what they are (our subjects and headers say it)."""
    groups: dict[str, list[EmailMessage]] = {"forward": [], "auto_reply": [], "digest": [], "alert": []}
    for message in messages:
        subject = message["Subject"]
        if message["Auto-Submitted"] == "auto-replied":
            groups["auto_reply"].append(message)
        elif "deactivated on" in subject:
            groups["forward"].append(message)
        elif "spiked" in subject:
            groups["alert"].append(message)
        else:
            groups["digest"].append(message)
    return groups


def deactivation_row(
    event_id: str,
    project_hash: str,
    received_at: datetime,
    *,
    site_url: str = "https://site.example.com",
    reason_id: str = "is-not-working",
    reason_label: str = "Not working",
    reason_info: str = "",
    project_version: str = "2.4.0",
) -> dict:
    return {
        "event_id": event_id,
        "raw_hour": hour_floor(received_at),
        "received_at": received_at,
        "project_hash": project_hash,
        "project_kind": "plugin",
        "site_url": site_url,
        "reason_id": reason_id,
        "reason_label": reason_label,
        "reason_info": reason_info,
        "project_version": project_version,
        "wp_version": "6.5.3",
        "wp_version_mm": "6.5",
        "php_version": "8.2.36",
        "php_version_mm": "8.2",
    }


def load_rows(settings: Settings, db, rows: list[dict], *, loaded_at: datetime, contacts: dict | None = None):
    """Replace the rows' hours in the warehouse (with hour_loads) and write `sites` contacts:
    site_url → admin e-mail (None: no contact), as the pipeline does."""
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables()
    hours = sorted({row["raw_hour"] for row in rows})
    loads = [
        {
            "raw_hour": hour,
            "loaded_at": loaded_at,
            "files": 1,
            "records_read": 0,
            "deactivations": sum(row["raw_hour"] == hour for row in rows),
            "sites": 0,
            "errors": 0,
        }
        for hour in hours
    ]
    warehouse.replace_hours(
        hours,
        {
            DEACTIVATIONS.name: rows_to_arrow(DEACTIVATIONS, rows),
            HOUR_LOADS.name: rows_to_arrow(HOUR_LOADS, loads),
        },
    )
    for row in rows:
        email = (contacts or {}).get(row["site_url"], f"admin@{row['site_url'].split('//')[1]}")
        db[SITES].replace_one(
            {"_id": f"{row['project_hash']}|{row['site_url']}"},
            {
                "_id": f"{row['project_hash']}|{row['site_url']}",
                "project_hash": row["project_hash"],
                "site_url": row["site_url"],
                "admin_email": email,
                "first_name": "Jane" if email else None,
                "last_name": "Doe" if email else None,
                "received_at": row["received_at"],
            },
            upsert=True,
        )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def helpers():
    """The helpers above, for tests (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        sink_messages=sink_messages,
        by_kind=by_kind,
        deactivation_row=deactivation_row,
        load_rows=load_rows,
        utc=utc,
        dashboard=DASHBOARD,
    )


# --- A local HTTP server that checks each request against the providers' documented contracts -----
class ContractServer:
    """Plays Mailchimp, MailerLite, Brevo, Kit and a webhook receiver on one local port.

    Each request is checked against what the provider documents (method, path, authentication,
    body fields and types); a violation is recorded and answered 400, so a test asserts there were
    none. Contacts are kept per provider and list, so idempotency shows as "still one contact".
    `fail_next` makes the next requests answer a given status (429, 500, 400 ...).
    """

    def __init__(self, credentials: dict[str, str], webhook_secret_for) -> None:
        self.credentials = credentials
        self.webhook_secret_for = webhook_secret_for
        self.violations: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.contacts: dict[tuple[str, str], dict[str, dict]] = {}
        self.webhooks: list[dict] = []
        self.fail_next: list[int] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        contract = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _answer(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with contract._lock:
                    contract.requests.append((self.command, self.path))
                    if contract.fail_next:
                        return self._answer(contract.fail_next.pop(0), {"error": "injected"})
                    try:
                        status, body = contract.check(self.command, self.path, self.headers, raw)
                    except AssertionError as violation:
                        contract.violations.append(f"{self.command} {self.path}: {violation}")
                        return self._answer(400, {"error": str(violation)})
                self._answer(status, body)

            do_PUT = do_POST = _handle

        return Handler

    def list_contacts(self, provider: str, list_id: str) -> dict[str, dict]:
        return self.contacts.get((provider, list_id), {})

    def _upsert(self, provider: str, list_id: str, email: str, fields: dict) -> bool:
        contacts = self.contacts.setdefault((provider, list_id), {})
        created = email.lower() not in contacts
        contacts[email.lower()] = fields
        return created

    def check(self, method: str, path: str, headers, raw: bytes) -> tuple[int, dict | None]:
        body = json.loads(raw) if raw else None
        parts = path.strip("/").split("/")
        if parts[0] == "3.0":  # Mailchimp: PUT /3.0/lists/{list_id}/members/{subscriber_hash}
            assert method == "PUT" and len(parts) == 5 and parts[1] == "lists" and parts[3] == "members"
            auth = headers.get("Authorization", "")
            assert auth.startswith("Basic "), "HTTP basic auth required"
            assert base64.b64decode(auth[6:]).decode().split(":", 1)[1] == self.credentials["mailchimp"]
            assert isinstance(body.get("email_address"), str), "email_address is required"
            assert parts[4] == hashlib.md5(body["email_address"].lower().encode()).hexdigest(), (
                "subscriber_hash must be the MD5 of the lowercase e-mail"
            )
            assert body.get("status_if_new") in {
                "subscribed",
                "unsubscribed",
                "cleaned",
                "pending",
                "transactional",
            }
            assert set(body) <= {"email_address", "status_if_new", "status", "merge_fields", "tags"}
            assert all(isinstance(v, str) for v in body.get("merge_fields", {}).values())
            self._upsert("mailchimp", parts[2], body["email_address"], body.get("merge_fields", {}))
            return 200, {"id": parts[4], "email_address": body["email_address"], "status": "subscribed"}
        if parts[:2] == ["api", "subscribers"]:  # MailerLite: POST /api/subscribers
            assert method == "POST"
            assert headers.get("Authorization") == f"Bearer {self.credentials['mailerlite']}"
            assert isinstance(body.get("email"), str), "email is required"
            assert set(body) <= {"email", "fields", "groups", "status", "subscribed_at", "ip_address"}
            assert all(isinstance(g, str) for g in body.get("groups", [])), "groups are string ids"
            created = True
            for group in body.get("groups", []):
                created = self._upsert("mailerlite", group, body["email"], body.get("fields", {}))
            return (201 if created else 200), {"data": {"email": body["email"]}}
        if parts[:2] == ["v3", "contacts"]:  # Brevo: POST /v3/contacts
            assert method == "POST" and headers.get("api-key") == self.credentials["sendinblue"]
            assert isinstance(body.get("email"), str), "email is required"
            assert set(body) <= {"email", "attributes", "listIds", "updateEnabled", "emailBlacklisted"}
            assert all(isinstance(i, int) for i in body.get("listIds", [])), "listIds are integers"
            existed = any(
                body["email"].lower() in self.list_contacts("sendinblue", str(i)) for i in body["listIds"]
            )
            if existed and not body.get("updateEnabled"):
                return 400, {"code": "duplicate_parameter", "message": "Contact already exist"}
            for list_id in body["listIds"]:
                self._upsert("sendinblue", str(list_id), body["email"], body.get("attributes", {}))
            return (204, None) if existed else (201, {"id": 1})
        if parts[0] == "v4":  # Kit: POST /v4/subscribers, POST /v4/forms/{id}/subscribers
            assert method == "POST" and headers.get("X-Kit-Api-Key") == self.credentials["convertkit"]
            assert isinstance(body.get("email_address"), str), "email_address is required"
            email = body["email_address"].lower()
            if parts[1:] == ["subscribers"]:
                assert set(body) <= {"email_address", "first_name", "state", "fields"}
                created = self._upsert("convertkit", "*", email, {"first_name": body.get("first_name")})
                return (201 if created else 200), {"subscriber": {"email_address": email}}
            assert parts[1] == "forms" and parts[2].isdigit() and parts[3:] == ["subscribers"]
            if email not in self.list_contacts("convertkit", "*"):
                return 404, {"errors": ["Not Found"]}
            created = self._upsert("convertkit", parts[2], email, {})
            return (201 if created else 200), {"subscriber": {"email_address": email}}
        if parts[0] == "hooks":  # a webhook receiver: checks the signature like a real one should
            project_hash = parts[1]
            verify_signature(self.webhook_secret_for(project_hash), headers.get(SIGNATURE_HEADER), raw)
            assert headers.get(EVENT_HEADER) and headers.get(DELIVERY_HEADER)
            self.webhooks.append(
                {"event": headers[EVENT_HEADER], "delivery": headers[DELIVERY_HEADER], **body}
            )
            if body.get("type") == "contact.upsert":
                self._upsert("webhook", project_hash, body["contact"]["email"], body["contact"])
            return 204, None
        raise AssertionError("no such endpoint")


CREDENTIALS = {
    "mailchimp": "0123456789abcdef-us6",
    "mailerlite": "ml-token",
    "sendinblue": "xkeysib-test",
    "convertkit": "kit-key",
}


@pytest.fixture
def contract_server(notify_settings):
    server = ContractServer(CREDENTIALS, lambda project_hash: webhook_secret(notify_settings, project_hash))
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def provider_settings(notify_settings, contract_server):
    """Settings with every provider's credentials set and its API base URL on the contract server."""
    return notify_settings.model_copy(
        update={
            "MAILCHIMP_API_KEY": CREDENTIALS["mailchimp"],
            "MAILERLITE_API_TOKEN": CREDENTIALS["mailerlite"],
            "BREVO_API_KEY": CREDENTIALS["sendinblue"],
            "CONVERTKIT_API_KEY": CREDENTIALS["convertkit"],
            "NOTIFY_PROVIDER_BASE_URLS": {
                name: contract_server.url for name in ("mailchimp", "mailerlite", "sendinblue", "convertkit")
            },
        }
    )
