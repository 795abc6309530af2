"""Mail-list providers: one interface, one adapter per provider, each calling its documented HTTP API.

Every adapter upserts the contact by e-mail address, so sending the same request twice leaves the
list as once (list sync is idempotent on the provider's side). Credentials come from the settings
(the environment or a secret manager), never from MongoDB. A provider without credentials is not
"configured": its requests wait in the outbox (counted as skipped) until they are set.

Documented contracts followed (checked request by request by tests/notifications/provider_contracts.py):
- mailchimp: Marketing API 3.0, PUT /3.0/lists/{list_id}/members/{md5(lowercase email)}
  ("Add or update list member"), HTTP basic auth with any user name and the API key; the data
  centre is the key's suffix (…-us6 → https://us6.api.mailchimp.com).
- mailerlite: POST https://connect.mailerlite.com/api/subscribers ("Create/upsert subscriber"),
  Bearer token, `groups` [group id]; 200 updated, 201 created.
- sendinblue (Brevo): POST https://api.brevo.com/v3/contacts with `updateEnabled: true`, header
  `api-key`, `listIds` [int]; 201 created, 204 updated.
- convertkit (Kit API v4): POST /v4/subscribers (upsert by e-mail) then
  POST /v4/forms/{form_id}/subscribers, header `X-Kit-Api-Key`; 200 existing, 201 created.
- webhook: POST of the contact as signed JSON to the list id (a URL); see notifications/webhooks.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import httpx

from deactivation.settings import Settings
from notifications.smtp import PermanentError
from notifications.webhooks import delivery_id, post_signed, request_status, webhook_secret


@dataclass(frozen=True)
class Contact:
    email: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class SyncRequest:
    """What one `mail_outbox` request asks for."""

    request_id: str
    project_hash: str
    list_id: str
    contact: Contact


class ListProvider(Protocol):
    name: str

    @property
    def configured(self) -> bool:
        """Whether credentials are set (requests wait in the outbox until they are)."""
        ...

    def upsert(self, client: httpx.Client, request: SyncRequest) -> None:
        """Add or update the contact on the list; TransientError / PermanentError on failure."""
        ...


def _send(client: httpx.Client, what: str, method: str, url: str, **kwargs) -> int:
    return request_status(client, what, method, url, **kwargs)


@dataclass(frozen=True)
class Mailchimp:
    api_key: str | None
    base_url: str | None = None
    name: str = "mailchimp"

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def _base(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        data_centre = (self.api_key or "").rpartition("-")[2]
        if not data_centre.isalnum():
            raise PermanentError("MAILCHIMP_API_KEY must end in -<data centre>, e.g. -us6")
        return f"https://{data_centre}.api.mailchimp.com"

    def upsert(self, client: httpx.Client, request: SyncRequest) -> None:
        member = hashlib.md5(request.contact.email.lower().encode()).hexdigest()
        _send(
            client,
            self.name,
            "PUT",
            f"{self._base()}/3.0/lists/{quote(request.list_id, safe='')}/members/{member}",
            auth=("deactivation", self.api_key or ""),
            json={
                "email_address": request.contact.email,
                "status_if_new": "subscribed",
                "merge_fields": {"FNAME": request.contact.first_name, "LNAME": request.contact.last_name},
            },
        )


@dataclass(frozen=True)
class MailerLite:
    api_token: str | None
    base_url: str | None = None
    name: str = "mailerlite"

    @property
    def configured(self) -> bool:
        return bool(self.api_token)

    def upsert(self, client: httpx.Client, request: SyncRequest) -> None:
        base = (self.base_url or "https://connect.mailerlite.com").rstrip("/")
        _send(
            client,
            self.name,
            "POST",
            f"{base}/api/subscribers",
            headers={"Authorization": f"Bearer {self.api_token}", "Accept": "application/json"},
            json={
                "email": request.contact.email,
                "fields": {"name": request.contact.first_name, "last_name": request.contact.last_name},
                "groups": [request.list_id],
            },
        )


@dataclass(frozen=True)
class Brevo:
    api_key: str | None
    base_url: str | None = None
    name: str = "sendinblue"

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def upsert(self, client: httpx.Client, request: SyncRequest) -> None:
        base = (self.base_url or "https://api.brevo.com").rstrip("/")
        if not request.list_id.isdigit():
            raise PermanentError("a Brevo list id is a number")
        _send(
            client,
            self.name,
            "POST",
            f"{base}/v3/contacts",
            headers={"api-key": self.api_key or "", "Accept": "application/json"},
            json={
                "email": request.contact.email,
                "attributes": {
                    "FIRSTNAME": request.contact.first_name,
                    "LASTNAME": request.contact.last_name,
                },
                "listIds": [int(request.list_id)],
                "updateEnabled": True,
            },
        )


@dataclass(frozen=True)
class Kit:
    api_key: str | None
    base_url: str | None = None
    name: str = "convertkit"

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def upsert(self, client: httpx.Client, request: SyncRequest) -> None:
        base = (self.base_url or "https://api.kit.com").rstrip("/")
        if not request.list_id.isdigit():
            raise PermanentError("a Kit form id is a number")
        headers = {"X-Kit-Api-Key": self.api_key or "", "Accept": "application/json"}
        _send(
            client,
            self.name,
            "POST",
            f"{base}/v4/subscribers",
            headers=headers,
            json={"email_address": request.contact.email, "first_name": request.contact.first_name},
        )
        _send(
            client,
            self.name,
            "POST",
            f"{base}/v4/forms/{int(request.list_id)}/subscribers",
            headers=headers,
            json={"email_address": request.contact.email},
        )


@dataclass(frozen=True)
class Webhook:
    settings: Settings
    name: str = "webhook"

    @property
    def configured(self) -> bool:
        return True  # the secret is derived per project; the URL is the list id

    def upsert(self, client: httpx.Client, request: SyncRequest) -> None:
        post_signed(
            client,
            request.list_id,
            webhook_secret(self.settings, request.project_hash),
            "contact.upsert",
            delivery_id(request.request_id),
            {
                "type": "contact.upsert",
                "project_hash": request.project_hash,
                "contact": {
                    "email": request.contact.email,
                    "first_name": request.contact.first_name,
                    "last_name": request.contact.last_name,
                },
            },
        )


def list_providers(settings: Settings) -> dict[str, ListProvider]:
    """Every adapter, by the provider name projects use."""
    base = settings.NOTIFY_PROVIDER_BASE_URLS
    adapters: list[ListProvider] = [
        Webhook(settings),
        Mailchimp(settings.MAILCHIMP_API_KEY, base.get("mailchimp")),
        MailerLite(settings.MAILERLITE_API_TOKEN, base.get("mailerlite")),
        Brevo(settings.BREVO_API_KEY, base.get("sendinblue")),
        Kit(settings.CONVERTKIT_API_KEY, base.get("convertkit")),
    ]
    return {adapter.name: adapter for adapter in adapters}
