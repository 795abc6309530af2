"""The trailing window, Dataflow wiring, conditional upserts (the `deact` commands' tests: tests/deact/)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from unittest import mock

import pytest

from beam.io import latest_per_site, state_document, upsert_if_newer
from beam.pipeline import (
    PipelineInputs,
    build_pipeline,
    build_state_pipeline,
    pipeline_options,
    staging_root,
)
from deactivation.erasure import ErasureRegister
from deactivation.hours import trailing_hours


def test_trailing_hours_are_the_last_complete_hours():
    now = datetime(2026, 11, 28, 3, 5, 12, tzinfo=UTC)
    assert trailing_hours(now) == [
        datetime(2026, 11, 28, 1, tzinfo=UTC),
        datetime(2026, 11, 28, 2, tzinfo=UTC),
    ]
    assert trailing_hours(now, count=1) == [datetime(2026, 11, 28, 2, tzinfo=UTC)]


def test_dataflow_is_chosen_by_options_alone_and_the_graph_builds(settings, tmp_path, kit):
    dataflow = settings.model_copy(
        update={
            "BEAM_RUNNER": "DataflowRunner",
            "GCP_PROJECT": "acme",
            "DATAFLOW_TEMP_LOCATION": "gs://acme-tmp/beam",
        }
    )
    options = pipeline_options(dataflow)
    everything = options.get_all_options()
    assert (everything["runner"], everything["project"], everything["region"]) == (
        "DataflowRunner",
        "acme",
        "us-central1",
    )
    assert everything["setup_file"].endswith("setup.py") and os.path.exists(everything["setup_file"])
    assert staging_root(dataflow, options) == "gs://acme-tmp/beam/deactivation-staging"
    inputs = PipelineInputs(
        files=[(kit.hour_label, "deactivate/2026/11/28/01/x.ndjson")],
        registry=kit.rules,
        erasures=ErasureRegister(),
        raw_store_url="gs://acme-raw",
        gcs_endpoint=None,
        staging_dir="gs://acme-tmp/beam/deactivation-staging/run",
        duplicate_window_minutes=10,
    )
    # Building talks to no cloud service, except Beam's option check of the temp bucket's soft-delete
    # policy (a warning only), which is switched off here along with the credential lookup.
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from google.auth.credentials import AnonymousCredentials

    with (
        mock.patch("google.auth.default", return_value=(AnonymousCredentials(), "acme")),
        mock.patch.object(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled"),
    ):
        pipeline = build_pipeline(options, inputs)
        proto = pipeline.to_runner_api()
    labels = {t.unique_name for t in proto.components.transforms.values()}
    assert {"ReadRawFiles", "Process/ParseEnvelopes", "StageDeactivations", "StageLatestState"} <= labels
    # The job itself writes no store: MongoDB is written by the second job, after the commit.
    assert not [label for label in labels if label.startswith("Write_")]
    assert type(pipeline.runner).__name__ == "DataflowRunner"
    with (
        mock.patch("google.auth.default", return_value=(AnonymousCredentials(), "acme")),
        mock.patch.object(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled"),
    ):
        state_job = build_state_pipeline(
            options, {"sites": ["gs://acme-tmp/run/mongo_sites/part-0.ndjson"]}, "mongodb://db", "d", 4
        )
        state_labels = {t.unique_name for t in state_job.to_runner_api().components.transforms.values()}
    assert {"Read_sites", "Write_sites"} <= state_labels


def test_conditional_upserts_keep_the_newest_state_in_any_order_and_equal_keys_repair(mongo_db):
    def document(minute: int, event_id: str, reason: str) -> dict:
        row = {
            "project_hash": "p",
            "site_url": "https://a.example",
            "event_id": event_id,
            "received_at": f"2026-11-28T01:{minute:02d}:00.000000Z",
            "reason_id": reason,
        }
        return state_document(row)

    collection = mongo_db["latest_probe"]
    newest = document(30, "0000000b", "newest")
    assert upsert_if_newer(collection, [newest]) == 1
    assert upsert_if_newer(collection, [document(10, "0000000a", "older")]) == 0
    collection.update_one({"_id": newest["_id"]}, {"$set": {"reason_id": "damaged by hand"}})
    assert upsert_if_newer(collection, [newest]) == 1  # the same event again rewrites: a re-run repairs
    assert collection.find_one({"_id": newest["_id"]})["reason_id"] == "newest"
    tie_winner = document(30, "0000000c", "same time, larger id")
    assert upsert_if_newer(collection, latest_per_site([document(20, "00000001", "x"), tie_winner])) == 1
    stored = collection.find_one({"_id": "p|https://a.example"})
    assert (stored["reason_id"], collection.count_documents({})) == ("same time, larger id", 1)


def test_one_write_inserts_new_sites_replaces_older_ones_and_keeps_newer_ones(mongo_db):
    def document(site: str, minute: int, reason: str) -> dict:
        row = {
            "project_hash": "p",
            "site_url": f"https://{site}.example",
            "event_id": f"{minute:08x}",
            "received_at": f"2026-11-28T01:{minute:02d}:00.000000Z",
            "reason_id": reason,
        }
        return state_document(row)

    collection = mongo_db["latest_mixed"]
    stored_first = [document("older", 10, "stored"), document("newer", 50, "stored")]
    assert upsert_if_newer(collection, stored_first) == 2
    batch = [document("new", 30, "run"), document("older", 30, "run"), document("newer", 30, "run")]

    assert upsert_if_newer(collection, batch) == 2  # "newer" keeps its own, newer state

    stored = {d["site_url"]: (d["reason_id"], d["order_key"]) for d in collection.find()}
    assert stored == {
        "https://new.example": ("run", batch[0]["order_key"]),
        "https://older.example": ("run", batch[1]["order_key"]),
        "https://newer.example": ("stored", stored_first[1]["order_key"]),
    }


def test_a_replace_that_lost_a_race_is_tried_again():
    from types import SimpleNamespace

    from pymongo.errors import BulkWriteError

    class RacingCollection:
        """Both sites exist; the first replace of b collides on _id (another worker wrote it
        meanwhile)."""

        def __init__(self):
            self.bulks = []

        def insert_many(self, documents, ordered):
            errors = [{"index": i, "code": 11000} for i in range(len(documents))]
            raise BulkWriteError({"writeErrors": errors, "nInserted": 0})

        def bulk_write(self, operations, ordered):
            self.bulks.append(operations)
            if len(self.bulks) == 1:
                raise BulkWriteError(
                    {"writeErrors": [{"index": 1, "code": 11000}], "nUpserted": 0, "nMatched": 1}
                )
            return SimpleNamespace(upserted_count=0, matched_count=1)

    row = {"project_hash": "p", "event_id": "e", "received_at": "2026-11-28T01:00:00.000000Z"}
    documents = [
        state_document({**row, "site_url": "https://a.example"}),
        state_document({**row, "site_url": "https://b.example"}),
    ]
    collection = RacingCollection()
    assert upsert_if_newer(collection, documents) == 2
    assert [[op._doc["_id"] for op in bulk] for bulk in collection.bulks] == [
        ["p|https://a.example", "p|https://b.example"],
        ["p|https://b.example"],
    ]


def test_a_write_error_other_than_a_collision_is_raised():
    from pymongo.errors import BulkWriteError

    class FailingCollection:
        def insert_many(self, documents, ordered):
            raise BulkWriteError({"writeErrors": [{"index": 0, "code": 2}], "nInserted": 0})

    row = {"project_hash": "p", "site_url": "https://a.example", "event_id": "e"}
    with pytest.raises(BulkWriteError):
        upsert_if_newer(FailingCollection(), [state_document({**row, "received_at": "2026-11-28T01:00:00Z"})])


def test_file_groups_are_per_hour_and_stable():
    from beam.pipeline import file_groups

    files = [("h1", f"a{i}") for i in range(5)] + [("h2", "b0")]
    assert file_groups(files, size=2) == [
        ("h1", ["a0", "a1"]),
        ("h1", ["a2", "a3"]),
        ("h1", ["a4"]),
        ("h2", ["b0"]),
    ]
