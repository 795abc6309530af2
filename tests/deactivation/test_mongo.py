"""The local MongoDB server of the embedded stack (SecantusDB) and the client settings."""

from __future__ import annotations

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from deactivation.mongo import LocalMongoServer


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
