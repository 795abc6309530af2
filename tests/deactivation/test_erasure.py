"""The erasure register's write side and audit log: keyed hashes only, idempotent, read back by the
pipeline's loader; audit entries carry counts and the operator, never the erased values."""

from __future__ import annotations

from datetime import UTC, datetime

from deactivation.erasure import (
    ERASURE_AUDIT,
    ERASURES,
    email_key,
    erasure_key,
    is_registered,
    load_erasure_register,
    record_erasure_audit,
    register_erasure,
    site_key,
    sites_erased_via,
)

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
OTHER_PROJECT = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"


def test_registering_a_site_stores_its_keyed_hash_only(settings, mongo_db):
    keys = register_erasure(mongo_db, settings, PROJECT, site_urls=["https://shop.example/ "])

    key = site_key(erasure_key(settings), PROJECT, "https://shop.example")
    assert keys == [key]
    (document,) = mongo_db[ERASURES].find()
    assert document["_id"] == key and document["kind"] == "site" and document["project_hash"] == PROJECT
    assert "shop.example" not in str(document)
    register = load_erasure_register(mongo_db, settings)
    assert register.is_erased(PROJECT, "https://shop.example//", None)
    assert not register.is_erased(OTHER_PROJECT, "https://shop.example", None)
    assert not register.is_erased(PROJECT, "https://shop.example.org", None)
    assert is_registered(mongo_db, settings, PROJECT, "https://shop.example")


def test_registering_an_email_marks_its_sites_and_is_idempotent(settings, mongo_db):
    for _ in range(2):
        register_erasure(
            mongo_db,
            settings,
            PROJECT,
            site_urls=["https://a.example", "https://b.example"],
            email="Ann@Example.org",
        )

    assert mongo_db[ERASURES].count_documents({}) == 3
    key = erasure_key(settings)
    (email_document,) = mongo_db[ERASURES].find({"kind": "email"})
    assert email_document["_id"] == email_key(key, PROJECT, "ann@example.org")
    assert "example.org" not in str(list(mongo_db[ERASURES].find()))
    assert sites_erased_via(mongo_db, settings, PROJECT, " ANN@example.org") == {
        site_key(key, PROJECT, "https://a.example"),
        site_key(key, PROJECT, "https://b.example"),
    }
    assert sites_erased_via(mongo_db, settings, OTHER_PROJECT, "ann@example.org") == set()
    register = load_erasure_register(mongo_db, settings)
    assert register.is_erased(PROJECT, "https://elsewhere.example", "ann@EXAMPLE.org")
    assert not register.is_erased(PROJECT, "https://elsewhere.example", "bob@example.org")


def test_keys_depend_on_the_secret(settings, mongo_db):
    other = settings.model_copy(update={"SECRET_KEY": "another secret"})
    assert site_key(erasure_key(settings), PROJECT, "https://a.example") != site_key(
        erasure_key(other), PROJECT, "https://a.example"
    )


def test_an_audit_entry_holds_counts_and_the_operator(settings, mongo_db):
    started = datetime(2026, 11, 29, 20, tzinfo=UTC)
    entry_id = record_erasure_audit(
        mongo_db,
        project_hash=PROJECT,
        subject="site",
        subject_key="k" * 64,
        counts={"warehouse": {"deactivations": 3}},
        started_at=started,
    )

    (entry,) = mongo_db[ERASURE_AUDIT].find()
    assert entry["_id"] == entry_id and entry["counts"] == {"warehouse": {"deactivations": 3}}
    assert entry["operator"] and entry["started_at"] == started and entry["finished_at"] >= started
    assert set(entry) == {
        "_id",
        "started_at",
        "finished_at",
        "project_hash",
        "subject",
        "subject_key",
        "counts",
        "operator",
    }


def test_an_empty_request_writes_nothing(settings, mongo_db):
    assert register_erasure(mongo_db, settings, PROJECT) == []
    assert mongo_db[ERASURES].count_documents({}) == 0
