"""The local MongoDB server of the embedded stack (SecantusDB) and the client settings."""

from __future__ import annotations

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from deactivation.mongo import (
    DEACTIVATIONS,
    MAIL_OUTBOX,
    RETIRED_LATEST_STATE_INDEXES,
    SITES,
    LocalMongoServer,
    ensure_latest_state_indexes,
)


def test_local_mongo_fixture_starts_accepts_a_unique_index_and_stops(tmp_path):

    with LocalMongoServer(tmp_path / "mongo") as server:
        client = pymongo.MongoClient(server.uri)
        collection = client.check.sites
        collection.create_index([("project_hash", 1), ("site_url", 1)], unique=True)
        collection.insert_one({"project_hash": "p", "site_url": "https://a.example"})
        with pytest.raises(DuplicateKeyError):
            collection.insert_one({"project_hash": "p", "site_url": "https://a.example"})
        client.close()
        pid = server.process.pid
    assert server.process.poll() is not None, f"server {pid} still running after stop"


def test_latest_state_indexes_are_only_what_readers_use_and_retired_ones_are_dropped(mongo_db):
    for collection, retired in RETIRED_LATEST_STATE_INDEXES.items():  # a database of an older version
        for name in retired:
            mongo_db[collection].create_index([("project_hash", 1), (name, 1)], name=name)
    mongo_db[SITES].insert_one({"_id": "p|https://a.example", "project_hash": "p"})
    mongo_db[MAIL_OUTBOX].create_index("lease_token", name="lease_token", sparse=True)  # the notifier's

    ensure_latest_state_indexes(mongo_db)
    ensure_latest_state_indexes(mongo_db)  # idempotent

    assert set(mongo_db[DEACTIVATIONS].index_information()) == {"_id_", "project_time", "project_reason_time"}
    assert set(mongo_db[SITES].index_information()) == {"_id_", "project_time"}
    assert set(mongo_db[MAIL_OUTBOX].index_information()) == {"_id_", "lease_token"}
    assert mongo_db[SITES].count_documents({}) == 1  # dropping an index touches no document


def test_a_retired_index_dropped_meanwhile_by_another_process_is_no_error(mongo_db, monkeypatch):
    mongo_db[SITES].create_index([("project_hash", 1), ("site_url", 1)], name="project_site_unique")
    listing = pymongo.collection.Collection.index_information

    def listed_then_dropped_by_another(collection):
        names = listing(collection)
        if "project_site_unique" in names:
            collection.database[collection.name].drop_index("project_site_unique")  # the other one
        return names

    monkeypatch.setattr(pymongo.collection.Collection, "index_information", listed_then_dropped_by_another)

    ensure_latest_state_indexes(mongo_db)

    assert "project_site_unique" not in listing(mongo_db[SITES])
