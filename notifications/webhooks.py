"""Signed outbound webhooks (the `webhook` list provider, deactivation.created, alert.spike).

Each POST carries a JSON body and

    X-Deactivation-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    X-Deactivation-Event: deactivation.created | alert.spike | contact.upsert
    X-Deactivation-Delivery: <stable id of this delivery; the same on every retry>

so a receiver checks the signature, refuses a timestamp older than a few minutes (a replay), and
drops a delivery id it has already handled (a retry of one it answered too slowly). The secret is
per project, derived from SECRET_KEY (never stored); `deact projects notify --webhook` shows it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from deactivation.secret_keys import derived_key
from deactivation.settings import Settings
from notifications.smtp import PermanentError, TransientError

SIGNATURE_HEADER = "X-Deactivation-Signature"
EVENT_HEADER = "X-Deactivation-Event"
DELIVERY_HEADER = "X-Deactivation-Delivery"
#: A receiver should refuse signatures older than this (what verify_signature does).
TOLERANCE_S = 300
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class SignatureError(ValueError):
    """A webhook signature that is missing, malformed, wrong or too old."""


def webhook_secret(settings: Settings, project_hash: str) -> str:
    return derived_key(settings, f"webhook:{project_hash}").hex()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str | None, body: bytes, *, now: float | None = None, tolerance_s: int = TOLERANCE_S
) -> None:
    """What a receiver does: SignatureError unless `header` signs `body` within the tolerance."""
    if not header or len(header) > 200:
        raise SignatureError("missing or oversized signature header")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise SignatureError("malformed signature header") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError("signature timestamp outside the tolerance (replay?)")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise SignatureError("signature does not match")


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def post_signed(
    client: httpx.Client, url: str, secret: str, event: str, delivery_id: str, payload: dict[str, Any]
) -> int:
    """POST one signed delivery; TransientError (retry) or PermanentError by the answer."""
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
    }
    return request_status(client, "webhook", "POST", url, content=body, headers=headers)


def request_status(client: httpx.Client, what: str, method: str, url: str, **kwargs: Any) -> int:
    """One request whose answer is judged by its status alone: the body is never read (a receiver
    cannot make us hold a large answer), redirects are not followed, time is bounded."""
    try:
        with client.stream(method, url, timeout=TIMEOUT, follow_redirects=False, **kwargs) as response:
            raise_for_answer(response, what)
            return response.status_code
    except httpx.HTTPError as exc:
        raise TransientError(f"{what} request failed: {type(exc).__name__}") from exc


def raise_for_answer(response: httpx.Response, what: str) -> None:
    """2xx passes; 408, 409, 425, 429 and 5xx are transient; any other answer is permanent."""
    code = response.status_code
    if 200 <= code < 300:
        return
    text = f"{what} answered HTTP {code}"
    if code in (408, 409, 425, 429) or code >= 500:
        raise TransientError(text)
    raise PermanentError(text)


def delivery_id(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()[:32]
