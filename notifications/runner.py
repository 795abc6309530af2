"""One notification pass: plan what is due, then claim, send and record it.

`run_once` is what `deact notify run` and the Prefect flow call. It (1) settles expired leases
(never handed over: back to the queue; maybe sent: review, except idempotent list sync), (2) plans
forwards, auto-replies and webhooks for newly loaded deactivations, due digests and spike alerts,
(3) drains the `notifications` outbox, NOTIFY_CONCURRENCY messages at a time (one SMTP connection
per delivery thread, one HTTP client), and (4) drains the pipeline's `mail_outbox` list-sync
requests for providers whose credentials are set.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pymongo.collection import Collection
from pymongo.database import Database

from deactivation.erasure import ERASURES, email_key, erasure_key, site_key
from deactivation.mongo import MAIL_OUTBOX, NOTIFICATIONS, SITES, get_database
from deactivation.projects import Project, load_registry
from deactivation.settings import Settings
from deactivation.suppression import is_suppressed, suppress, unsubscribe_token
from deactivation.warehouse import open_warehouse
from notifications import outbox
from notifications.digests import change_text, plan_digests
from notifications.events import loaded_hours_since, plan_event_notifications
from notifications.messages import (
    build_message,
    envelope_sender,
    project_link,
    render_author_template,
    render_auto_reply_html,
    render_pair,
    site_link,
    unsubscribe_link,
)
from notifications.outbox import Kind, Lease, Status
from notifications.providers import Contact, SyncRequest, list_providers
from notifications.smtp import DeliveryError, PermanentError, SmtpSender, SmtpTarget, UnknownOutcome
from notifications.spikes import plan_alerts
from notifications.webhooks import delivery_id, post_signed, webhook_secret

log = logging.getLogger(__name__)

#: Notifications claimed per read. Large, because the local MongoDB-compatible server does not stop an
#: index scan at the limit (each claim costs a scan of everything due); a real MongoDB does not care.
BATCH_SIZE = 1000
SENT_KINDS = ("forward", "auto_reply", "digest", "alert", "webhook", "list_sync")


@dataclass
class RunSummary:
    sent: Counter[str] = field(default_factory=Counter)
    failed: int = 0  # this pass: failed attempts that will be retried
    dead: int = 0  # this pass: given up (attempts used, or a permanent error)
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    review: int = 0  # this pass: outcome unknown (expired claims, connection lost mid-message)
    planned: Counter[str] = field(default_factory=Counter)
    waiting_for_credentials: int = 0  # list-sync requests of providers without credentials

    def count(self, outcomes: list[outbox.Outcome], documents: list[dict]) -> None:
        kinds = {document["_id"]: document.get("kind") or Kind.list_sync.value for document in documents}
        for outcome in outcomes:
            if outcome.status is Status.sent:
                self.sent[kinds[outcome.notification_id]] += 1
            elif outcome.status is Status.skipped:
                self.skipped[outcome.update["skip_reason"]] += 1
            elif outcome.status is Status.review:
                self.review += 1
            elif outcome.status is Status.dead:
                self.dead += 1
            else:
                self.failed += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": {kind: self.sent.get(kind, 0) for kind in SENT_KINDS},
            "failed": self.failed,
            "dead": self.dead,
            "skipped": sum(self.skipped.values()) + self.waiting_for_credentials,
            "skipped_by_reason": dict(
                sorted({**self.skipped, "waiting_for_credentials": self.waiting_for_credentials}.items())
            ),
            "review": self.review,
            "planned": dict(sorted(self.planned.items())),
        }


#: Called after a message went out and before it is recorded (tests simulate a crash there).
AfterSend = Callable[[dict[str, Any]], None]


class _Skip(Exception):
    """This notification is not sent, by design (the reason is recorded)."""


def run_once(
    settings: Settings,
    *,
    now: datetime | None = None,
    plan: bool = True,
    batch_size: int = BATCH_SIZE,
    limit: int | None = None,
    after_send: AfterSend | None = None,
    http_client: httpx.Client | None = None,
) -> RunSummary:
    summary = RunSummary()
    now = now or datetime.now(UTC)
    db = get_database(settings)
    client = http_client or httpx.Client()
    try:
        outbox.ensure_indexes(db)
        projects = load_registry(db)
        summary.review += outbox.expire_claims(db[NOTIFICATIONS], now)
        outbox.expire_claims(db[MAIL_OUTBOX], now, requeue=True)
        if plan:
            summary.planned.update(_plan(settings, db, projects, now))
        lease = Lease.new(now)
        with (
            ThreadPoolExecutor(settings.NOTIFY_CONCURRENCY, thread_name_prefix="notify") as pool,
            _Delivery(settings, db, projects, client, lease) as delivery,
        ):
            _drain(db[NOTIFICATIONS], lease, batch_size, limit, delivery.deliver, summary, after_send, pool)
            _drain_list_sync(settings, db, now, batch_size, limit, client, summary, after_send, pool)
    finally:
        if http_client is None:
            client.close()
        db.client.close()
    log.info("notification pass done: %s", summary.as_json())
    return summary


def _plan(settings: Settings, db: Database, projects: dict[str, Project], now: datetime) -> Counter[str]:
    warehouse = open_warehouse(settings)
    if not warehouse.table_exists("hour_loads"):
        return Counter()
    planned = plan_event_notifications(db, warehouse, projects, now)
    all_loaded, _ = loaded_hours_since(warehouse, None)
    loaded = set(all_loaded)
    planned.update(plan_digests(db, warehouse, projects, now, max(loaded) if loaded else None))
    planned.update(plan_alerts(db, warehouse, projects, now, loaded))
    return planned


#: Delivers one claimed document and says what became of it (never raises for a delivery failure).
Deliver = Callable[[dict], outbox.Outcome]


def _drain(
    collection: Collection,
    lease: Lease,
    batch_size: int,
    limit: int | None,
    deliver: Deliver,
    summary: RunSummary,
    after_send: AfterSend | None,
    pool: ThreadPoolExecutor,
    extra_filter: dict | None = None,
) -> None:
    """Claim batches until none is due; send each in chunks marked `sending` and recorded together,
    `pool` delivering a chunk's messages in parallel."""

    def deliver_one(document: dict) -> outbox.Outcome:
        outcome = deliver(document)
        if outcome.status is Status.sent and after_send is not None:
            after_send(document)
        return outcome

    handled = 0
    while limit is None or handled < limit:
        size = batch_size if limit is None else min(batch_size, limit - handled)
        batch = outbox.claim_batch(collection, lease, size, extra_filter)
        if not batch:
            return
        for start in range(0, len(batch), outbox.SENDING_CHUNK):
            chunk = batch[start : start + outbox.SENDING_CHUNK]
            held = outbox.mark_sending(collection, chunk, lease)
            # A claim lost to expiry (taken back) is not ours to send any more.
            mine = [document for document in chunk if document["_id"] in held]
            outcomes = list(pool.map(deliver_one, mine))
            outbox.record(collection, outcomes, lease)
            summary.count(outcomes, chunk)
        handled += len(batch)


class _Delivery:
    """Sends one claimed notification of any kind and records the outcome."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        projects: dict[str, Project],
        client: httpx.Client,
        lease: Lease,
    ) -> None:
        self.settings, self.db, self.projects = settings, db, projects
        self.client, self.lease = client, lease
        self.erasure_key = erasure_key(settings)
        SmtpTarget.parse(settings.SMTP_URL)  # a bad SMTP_URL fails the pass up front, not per message
        self._local = threading.local()  # one SMTP connection per delivery thread
        self._senders: list[SmtpSender] = []
        self._senders_lock = threading.Lock()

    def __enter__(self) -> _Delivery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sender in self._senders:
            sender.close()

    @property
    def smtp(self) -> SmtpSender:
        sender = getattr(self._local, "smtp", None)
        if sender is None:
            sender = self._local.smtp = SmtpSender(self.settings.SMTP_URL)
            with self._senders_lock:
                self._senders.append(sender)
        return sender

    def deliver(self, document: dict) -> outbox.Outcome:
        kind = document.get("kind")
        try:
            project = self.projects.get(document["project_hash"])
            if project is None:
                raise _Skip("project_removed")
            handler = getattr(self, f"_send_{kind}", None)
            if handler is None:
                raise PermanentError(f"unknown notification kind {kind!r}")
            handler(document, project)
        except _Skip as skip:
            return outbox.skipped(document, str(skip))
        except UnknownOutcome as exc:
            return outbox.unknown(document, str(exc))
        except DeliveryError as exc:
            if isinstance(exc, PermanentError) and exc.hard_bounce and kind == Kind.auto_reply:
                self._suppress_bounced(document)
            outcome = outbox.failed(document, self.lease, str(exc), permanent=isinstance(exc, PermanentError))
            log.warning(
                "notification %s (%s) not delivered: %s", kind, outcome.status.value, type(exc).__name__
            )
            return outcome
        except Exception as exc:  # a bug must not stop the pass, nor resend something maybe sent
            where = traceback.extract_tb(exc.__traceback__)[-1]
            # Type and place only: an exception's message may carry an address.
            log.error(
                "notification %s failed unexpectedly (%s at %s:%d); moved to review",
                kind,
                type(exc).__name__,
                where.filename,
                where.lineno,
            )
            return outbox.unknown(document, f"unexpected {type(exc).__name__}")
        return outbox.sent(document)

    # --- kinds -----------------------------------------------------------------------------------
    def _mail(
        self, document: dict, to: list[str], subject: str, text: str, html: str, **headers: str
    ) -> None:
        message = build_message(
            self.settings,
            notification_id=document["_id"],
            to=to,
            subject=subject,
            text=text,
            html=html,
            headers=headers,
        )
        self.smtp.send(message, envelope_sender(self.settings), to)

    def _send_forward(self, document: dict, project: Project) -> None:
        to = project.notifications.forward_to
        if not to:
            raise _Skip("forwarding_off")
        event = document["payload"]
        context = {
            **event,
            "project_name": project.name,
            "site_link": site_link(self.settings, project.hash, event["site_url"]),
            "title": f"{project.name} deactivated",
            "unsubscribe_url": None,
        }
        text, html = render_pair("forward", context)
        subject = f"[{project.name}] deactivated on {event['site_url']}: {event['reason_label']}"
        self._mail(document, to, subject, text, html)

    def _send_auto_reply(self, document: dict, project: Project) -> None:
        event = document["payload"]
        reply = project.notifications.auto_replies.get(event["reason_id"])
        if reply is None:
            raise _Skip("auto_reply_off")
        site = self.db[SITES].find_one(
            {"_id": f"{project.hash}|{event['site_url']}"},
            {"admin_email": 1, "first_name": 1, "last_name": 1},
        )
        address = (site or {}).get("admin_email")
        if not address:
            raise _Skip("no_admin_email")
        if is_suppressed(self.db, self.settings, project.hash, address):
            raise _Skip("suppressed")
        erased = [site_key(self.erasure_key, project.hash, event["site_url"])]
        erased.append(email_key(self.erasure_key, project.hash, address))
        if self.db[ERASURES].count_documents({"_id": {"$in": erased}}, limit=1):
            raise _Skip("erased")  # erased on request after this was planned
        unsubscribe_url = unsubscribe_link(
            self.settings, unsubscribe_token(self.settings, project.hash, address)
        )
        context = {
            "project_name": project.name,
            "site_url": event["site_url"],
            "first_name": site.get("first_name") or "",
            "last_name": site.get("last_name") or "",
            "reason_id": event["reason_id"],
            "reason_label": event["reason_label"],
            "reason_info": event["reason_info"],
            "project_version": event["project_version"],
            "unsubscribe_url": unsubscribe_url,
        }
        try:
            subject = render_author_template(reply.subject, context, "auto-reply subject")
            body = render_author_template(reply.body, context, "auto-reply body")
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc
        text = f"{body.rstrip()}\n\n--\nUnsubscribe: {unsubscribe_url}\n"
        html = render_auto_reply_html(body, {**context, "title": subject})
        self._mail(
            document,
            [address],
            subject,
            text,
            html,
            **{
                "List-Unsubscribe": f"<{unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Auto-Submitted": "auto-replied",
            },
        )

    def _suppress_bounced(self, document: dict) -> None:
        site = self.db[SITES].find_one(
            {"_id": f"{document['project_hash']}|{document['payload']['site_url']}"}, {"admin_email": 1}
        )
        if site and site.get("admin_email"):
            suppress(self.db, self.settings, document["project_hash"], site["admin_email"], "hard_bounce")

    def _send_digest(self, document: dict, project: Project) -> None:
        to = project.notifications.digest_to
        if project.notifications.digest == "off" or not to:
            raise _Skip("digest_off")
        payload = document["payload"]
        numbers = payload["digest"]
        if numbers["deactivations"] == 0 and numbers["previous_deactivations"] == 0:
            raise _Skip("empty_digest")  # nothing happened in either period: no mail to say so
        context = {
            **payload,
            "project_name": project.name,
            "project_link": project_link(self.settings, project.hash),
            "change_text": change_text(numbers["deactivations"], numbers["previous_deactivations"]),
            "title": f"{project.name} digest",
            "unsubscribe_url": None,
        }
        text, html = render_pair("digest", context)
        subject = f"[{project.name}] {numbers['deactivations']} deactivations, {payload['period_label']}"
        self._mail(document, to, subject, text, html)

    def _send_alert(self, document: dict, project: Project) -> None:
        to = project.notifications.alerts_to
        if project.notifications.alerts != "on" or not to:
            raise _Skip("alerts_off")
        alert = document["payload"]["alert"]
        context = {
            "alert": alert,
            "project_name": project.name,
            "project_link": project_link(self.settings, project.hash),
            "title": f"{project.name} spike",
            "unsubscribe_url": None,
        }
        text, html = render_pair("alert", context)
        self._mail(document, to, f"[{project.name}] Deactivations spiked: {alert['headline']}", text, html)

    def _send_webhook(self, document: dict, project: Project) -> None:
        url = project.notifications.webhook_url
        if not url:
            raise _Skip("webhook_off")
        event = document["event"]
        payload: dict[str, Any] = {"type": event, "project_hash": project.hash, "project_name": project.name}
        if event == "deactivation.created":
            payload["deactivation"] = {**document["payload"], "event_id": document["event_id"]}
            payload["dashboard_url"] = site_link(self.settings, project.hash, document["payload"]["site_url"])
        else:
            payload["alert"] = document["payload"]["alert"]
            payload["dashboard_url"] = project_link(self.settings, project.hash)
        post_signed(
            self.client,
            url,
            webhook_secret(self.settings, project.hash),
            event,
            delivery_id(document["_id"]),
            payload,
        )


def _drain_list_sync(
    settings: Settings,
    db: Database,
    now: datetime,
    batch_size: int,
    limit: int | None,
    client: httpx.Client,
    summary: RunSummary,
    after_send: AfterSend | None,
    pool: ThreadPoolExecutor,
) -> None:
    providers = list_providers(settings)
    configured = sorted(name for name, adapter in providers.items() if adapter.configured)
    collection = db[MAIL_OUTBOX]
    summary.waiting_for_credentials = sum(
        collection.count_documents({"status": status.value, "provider": {"$nin": configured}})
        for status in outbox.CLAIMABLE
    )
    if not configured:
        return

    lease = Lease.new(now)

    def deliver(document: dict) -> outbox.Outcome:
        try:
            contact = document.get("contact") or {}
            if not contact.get("email"):
                raise PermanentError("request without a contact e-mail")
            providers[document["provider"]].upsert(
                client,
                SyncRequest(
                    request_id=document["_id"],
                    project_hash=document["project_hash"],
                    list_id=document["list_id"],
                    contact=Contact(
                        contact["email"], contact.get("first_name") or "", contact.get("last_name") or ""
                    ),
                ),
            )
        except DeliveryError as exc:
            return outbox.failed(document, lease, str(exc), permanent=isinstance(exc, PermanentError))
        return outbox.sent(document)

    only_configured = {"provider": {"$in": configured}}
    _drain(collection, lease, batch_size, limit, deliver, summary, after_send, pool, only_configured)
