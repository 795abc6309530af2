"""Mail-list sync: every adapter against a local server that checks each request against the
provider's documented contract; idempotent upserts; failures retried or dead; signing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deactivation.mongo import MAIL_OUTBOX
from deactivation.projects import SUPPORTED_PROVIDERS
from notifications import outbox
from notifications.providers import list_providers
from notifications.runner import run_once
from notifications.webhooks import SignatureError, sign, verify_signature

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
LISTS = {"mailchimp": "a1b2c3d4e5", "mailerlite": "117", "sendinblue": "7", "convertkit": "4242"}


def _request(event_id: str, provider: str, list_id: str, email: str) -> dict:
    """A mail_outbox request exactly as the pipeline writes it."""
    return {
        "_id": f"{event_id}:{provider}:{list_id}",
        "event_id": event_id,
        "project_hash": PROJECT,
        "site_url": "https://site.example.com",
        "provider": provider,
        "list_id": list_id,
        "contact": {"email": email, "first_name": "Jane", "last_name": "Doe"},
        "received_at": NOW - timedelta(hours=1),
        "status": "pending",
    }


def _lists(contract_server) -> dict[str, str]:
    return {**LISTS, "webhook": f"{contract_server.url}/hooks/{PROJECT}"}


def test_every_supported_provider_has_an_adapter(notify_settings):
    assert set(list_providers(notify_settings)) == set(SUPPORTED_PROVIDERS)


def test_list_sync_follows_each_documented_contract_and_is_idempotent(
    provider_settings, mongo_db, contract_server
):
    lists = _lists(contract_server)
    requests = [
        _request(f"ev{i}", provider, list_id, f"Admin{i}@Site{i}.example.com")
        for provider, list_id in lists.items()
        for i in range(3)
    ]
    # The same admin deactivating twice: two requests, one contact.
    requests += [
        _request("ev9", provider, list_id, "admin0@site0.example.com") for provider, list_id in lists.items()
    ]
    mongo_db[MAIL_OUTBOX].insert_many(requests)

    summary = run_once(provider_settings, now=NOW, plan=False).as_json()

    assert contract_server.violations == []
    assert summary["sent"]["list_sync"] == len(requests)
    for provider, list_id in lists.items():
        key = PROJECT if provider == "webhook" else list_id
        assert len(contract_server.list_contacts(provider, key)) == 3, provider
    assert mongo_db[MAIL_OUTBOX].count_documents({"status": "sent"}) == len(requests)

    # Nothing new on a second pass; an operator re-sending a request changes no list.
    assert run_once(provider_settings, now=NOW, plan=False).as_json()["sent"]["list_sync"] == 0
    for request in requests:
        mongo_db[MAIL_OUTBOX].update_one({"_id": request["_id"]}, {"$set": {"status": "dead"}})
        outbox.retry(mongo_db[MAIL_OUTBOX], request["_id"], NOW)
    assert run_once(provider_settings, now=NOW, plan=False).as_json()["sent"]["list_sync"] == len(requests)
    assert contract_server.violations == []
    for provider, list_id in lists.items():
        key = PROJECT if provider == "webhook" else list_id
        assert len(contract_server.list_contacts(provider, key)) == 3, provider


def test_webhook_deliveries_are_signed_and_carry_a_stable_delivery_id(
    provider_settings, mongo_db, contract_server
):
    hook = _lists(contract_server)["webhook"]
    mongo_db[MAIL_OUTBOX].insert_one(_request("ev1", "webhook", hook, "a@b.example.com"))
    contract_server.fail_next = [503]
    first = run_once(provider_settings, now=NOW, plan=False).as_json()
    assert first["failed"] == 1
    retry_at = mongo_db[MAIL_OUTBOX].find_one()["next_attempt_at"]
    assert run_once(provider_settings, now=retry_at, plan=False).as_json()["sent"]["list_sync"] == 1
    assert contract_server.violations == []  # the receiver verified the signature
    assert len(contract_server.webhooks) == 1 and contract_server.webhooks[0]["event"] == "contact.upsert"


def test_rate_limits_and_server_errors_retry_but_a_refusal_is_dead(
    provider_settings, mongo_db, contract_server
):
    mongo_db[MAIL_OUTBOX].insert_many(
        [
            _request("ev1", "mailerlite", "117", "a@b.example.com"),
            _request("ev2", "mailerlite", "117", "c@d.example.com"),
        ]
    )
    contract_server.fail_next = [429, 422]
    summary = run_once(provider_settings, now=NOW, plan=False).as_json()
    assert summary["failed"] == 1 and summary["dead"] == 1
    dead = mongo_db[MAIL_OUTBOX].find_one({"status": "dead"})
    assert dead["last_error"] == "mailerlite answered HTTP 422"
    failed = mongo_db[MAIL_OUTBOX].find_one({"status": "failed"})
    assert failed["next_attempt_at"] == NOW + outbox.backoff(1)


def test_requests_wait_while_a_provider_has_no_credentials(notify_settings, mongo_db, contract_server):
    mongo_db[MAIL_OUTBOX].insert_one(_request("ev1", "mailchimp", "a1b2c3d4e5", "a@b.example.com"))
    summary = run_once(notify_settings, now=NOW, plan=False).as_json()
    assert summary["sent"]["list_sync"] == 0 and summary["skipped_by_reason"]["waiting_for_credentials"] == 1
    assert mongo_db[MAIL_OUTBOX].find_one()["status"] == "pending"
    assert contract_server.requests == []


def test_signature_verification_refuses_tampering_and_replays():
    body = b'{"type":"alert.spike"}'
    header = sign("secret", body, 1_700_000_000)
    verify_signature("secret", header, body, now=1_700_000_010)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("secret", header, body + b" ", now=1_700_000_010)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("other", header, body, now=1_700_000_010)
    with pytest.raises(SignatureError, match="replay"):
        verify_signature("secret", header, body, now=1_700_000_000 + 3600)
    with pytest.raises(SignatureError):
        verify_signature("secret", "t=abc,v1=00", body)
    with pytest.raises(SignatureError):
        verify_signature("secret", None, body)
