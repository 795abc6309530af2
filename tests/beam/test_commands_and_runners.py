"""`deact projects` and `deact pipeline run`, the trailing window, Dataflow wiring, conditional upserts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from unittest import mock

import pytest

from beam.io import latest_per_site, state_document, upsert_if_newer
from beam.pipeline import (
    PipelineInputs,
    build_pipeline,
    pipeline_options,
    staging_root,
)
from deact.cli import main
from deactivation.hours import trailing_hours
from deactivation.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.store_environment()}


@pytest.fixture
def cli_settings(settings, monkeypatch):
    """The in-process CLI reads get_settings(): point it at this test's settings."""
    monkeypatch.setattr("deact.commands.projects.get_settings", lambda: settings)
    return settings


def test_projects_add_and_list(cli_settings, mongo_db, capsys):
    code = main(
        [
            "projects",
            "add",
            "--hash",
            "A4A8DA5B-B419-4656-98E9-4A42E9044891",
            "--name",
            "Forms",
            "--reason",
            "too-expensive=Too expensive",
            "--reason",
            "no-time=No time",
            "--custom-field",
            "total_forms",
            "pro",
            "--mail",
            "mailchimp:deactivated",
        ]
    )
    assert code == 0
    added = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert added["hash"] == "a4a8da5b-b419-4656-98e9-4a42e9044891"
    assert added["custom_reasons"] == {"too-expensive": "Too expensive", "no-time": "No time"}
    assert added["custom_fields"] == ["pro", "total_forms"]
    assert added["mail_integrations"] == [{"provider": "mailchimp", "list_id": "deactivated"}]
    assert (
        main(
            [
                "projects",
                "add",
                "--hash",
                "b1b2c3d4-0000-4000-8000-000000000001",
                "--name",
                "T",
                "--kind",
                "theme",
            ]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["projects", "list"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(p["name"], p["kind"]) for p in listed["projects"]] == [("Forms", "plugin"), ("T", "theme")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--hash", "not-a-uuid", "--name", "X"], "project hash must be a UUID, got 'not-a-uuid'"),
        (
            ["--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "X", "--reason", "nolabel"],
            "--reason expects REASON…=…, got 'nolabel'",
        ),
        (
            ["--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "X", "--reason", "other=Mine"],
            "custom reason id 'other' is a built-in reason",
        ),
        (
            ["--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "X", "--mail", "pigeon:l1"],
            "unknown mail provider 'pigeon'",
        ),
    ],
)
def test_projects_add_rejects_bad_input_with_a_clear_error(
    cli_settings, mongo_db, capsys, arguments, message
):
    assert main(["projects", "add", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_projects_add_rejects_a_duplicate(cli_settings, mongo_db, capsys):
    arguments = ["projects", "add", "--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "Forms"]
    assert main(arguments) == 0
    assert main(arguments) == 2
    assert (
        "a project with hash a4a8da5b-b419-4656-98e9-4a42e9044891 already exists" in capsys.readouterr().err
    )


def test_trailing_hours_are_the_last_complete_hours():
    now = datetime(2026, 11, 28, 3, 5, 12, tzinfo=UTC)
    assert trailing_hours(now) == [
        datetime(2026, 11, 28, 1, tzinfo=UTC),
        datetime(2026, 11, 28, 2, tzinfo=UTC),
    ]
    assert trailing_hours(now, count=1) == [datetime(2026, 11, 28, 2, tzinfo=UTC)]


@pytest.mark.slow
def test_pipeline_run_command_prints_the_summary_last(settings, mongo_db, kit):
    from deactivation.projects import upsert_project
    from deactivation.raw_store import open_raw_store

    upsert_project(mongo_db, kit.projects[1])
    theme_body = {"hash": kit.theme_hash, "url": "https://a.example", "wp": {"memory_limit": "64M"}}
    open_raw_store(settings).write_envelopes("deactivate", [kit.envelope(theme_body)])
    result = subprocess.run(
        [sys.executable, "-m", "deact", "pipeline", "run", "--hour", "2026-11-28T02", "--hours", "2"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["hours"] == ["2026-11-28T01", "2026-11-28T02"]
    assert (summary["files"], summary["read"], summary["deactivations"]) == (1, 1, 1)
    assert summary["rows_written"]["hour_loads"] == 2


def test_pipeline_run_command_rejects_a_malformed_hour(capsys):
    assert main(["pipeline", "run", "--hour", "2026-11-28 01"]) == 2
    assert "hour must look like YYYY-MM-DDTHH" in capsys.readouterr().err


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
        raw_store_url="gs://acme-raw",
        gcs_endpoint=None,
        staging_dir="gs://acme-tmp/beam/deactivation-staging/run",
        mongo_uri="mongodb://db.internal:27017",
        mongo_db="deactivation",
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
    assert {"ReadRawFiles", "Process/ParseEnvelopes", "StageDeactivations", "WriteLatestState"} <= labels
    assert type(pipeline.runner).__name__ == "DataflowRunner"


def test_conditional_upserts_keep_the_newest_state_in_any_order(mongo_db):
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
    assert upsert_if_newer(collection, [newest]) == 0  # the same event again: no change
    tie_winner = document(30, "0000000c", "same time, larger id")
    assert upsert_if_newer(collection, latest_per_site([document(20, "00000001", "x"), tie_winner])) == 1
    stored = collection.find_one({"_id": "p|https://a.example"})
    assert (stored["reason_id"], collection.count_documents({})) == ("same time, larger id", 1)


def test_pipeline_run_passes_beam_flags_after_the_separator(monkeypatch, settings, capsys):
    import beam.pipeline
    from beam.pipeline import PipelineSummary

    calls = []

    def fake_run(run_settings, hours, *, extra_pipeline_args=None):
        calls.append((hours, extra_pipeline_args))
        return PipelineSummary(
            hours=[], files=0, read=0, deactivations=0, sites=0, errors={}, rows_written={}, seconds=0.0
        )

    monkeypatch.setattr(beam.pipeline, "run_pipeline", fake_run)
    monkeypatch.setattr("deact.commands.pipeline.get_settings", lambda: settings)
    argv = ["pipeline", "run", "--hour", "2026-11-28T05", "--", "--runner=DataflowRunner", "--project=acme"]
    assert main(argv) == 0
    assert calls == [([datetime(2026, 11, 28, 5, tzinfo=UTC)], ["--runner=DataflowRunner", "--project=acme"])]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["read"] == 0


def test_a_write_that_lost_a_race_for_the_first_insert_is_tried_again():
    from types import SimpleNamespace

    from pymongo.errors import BulkWriteError

    class RacingCollection:
        """The first bulk collides on _id (another worker inserted the site meanwhile)."""

        def __init__(self):
            self.bulks = []

        def bulk_write(self, operations, ordered):
            self.bulks.append(operations)
            if len(self.bulks) == 1:
                raise BulkWriteError(
                    {"writeErrors": [{"index": 1, "code": 11000}], "nUpserted": 1, "nModified": 0}
                )
            return SimpleNamespace(upserted_count=0, modified_count=1)

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


def test_file_groups_are_per_hour_and_stable():
    from beam.pipeline import file_groups

    files = [("h1", f"a{i}") for i in range(5)] + [("h2", "b0")]
    assert file_groups(files, size=2) == [
        ("h1", ["a0", "a1"]),
        ("h1", ["a2", "a3"]),
        ("h1", ["a4"]),
        ("h2", ["b0"]),
    ]
