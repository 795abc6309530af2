"""The pipeline's edges (beam/io.py): latest state combined over the whole window, staged files
counted from their footers."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import orjson
import pytest

from beam import io as edges
from beam.elements import Batch, ValidEvent
from beam.io import (
    StageLatestState,
    list_staged,
    list_staged_state,
    staged_table_dir,
    write_staged,
)
from deactivation.mongo import DEACTIVATIONS, SITES
from deactivation.schemas import DEACTIVATION_ERRORS
from deactivation.schemas import DEACTIVATIONS as DEACTIVATIONS_TABLE


def event(site: str, minute: int, event_id: str, reason: str) -> ValidEvent:
    row = {
        "event_id": event_id,
        "raw_hour": "2026-11-28T01:00:00.000000Z",
        "received_at": f"2026-11-28T01:{minute:02d}:00.000000Z",
        "project_hash": "p",
        "site_url": site,
        "reason_id": reason,
    }
    return ValidEvent(deactivation=row, site=dict(row), contact=None)


@pytest.mark.parametrize("held", [1, 50_000])  # flushed after every batch, or once per bundle
def test_latest_state_is_the_newest_per_site_over_the_whole_window(tmp_path, kit, monkeypatch, held):
    monkeypatch.setattr(edges, "MAX_HELD_DOCUMENTS", held)
    batches = [
        Batch(
            "b0",
            kit.hour_label,
            [event("https://a.example", 5, "e1", "old"), event("https://b.example", 1, "e2", "b")],
        ),
        Batch("b1", kit.hour_label, [event("https://a.example", 40, "e3", "newest")]),
        Batch("b2", kit.hour_label, [event("https://a.example", 20, "e4", "middle")]),
    ]
    with kit.pipeline() as pipeline:
        _ = pipeline | beam.Create(batches) | StageLatestState(str(tmp_path))

    staged = list_staged_state(str(tmp_path))
    for collection in (DEACTIVATIONS, SITES):
        documents = [
            orjson.loads(line) for path in staged[collection] for line in Path(path).read_bytes().splitlines()
        ]
        assert sorted((d["_id"], d["reason_id"]) for d in documents) == [
            ("p|https://a.example", "newest"),
            ("p|https://b.example", "b"),
        ]


def test_the_combine_carries_positions_and_the_chosen_lines_are_read_back(tmp_path):
    stage = edges._StageBundleCandidates(str(tmp_path))
    stage.start_bundle()
    batch = Batch(
        "b0",
        "2026-11-28T01",
        [event("https://a.example", 5, "e1", "old"), event("https://a.example", 9, "e2", "new")],
    )
    assert list(stage.process(batch)) == []  # held until the bundle ends

    keyed = {output.tag: output.value.value for output in stage.finish_bundle()}

    assert set(keyed) == {DEACTIVATIONS, SITES}
    site_id, (order_key, path, line) = keyed[DEACTIVATIONS]
    assert (site_id, order_key, line) == ("p|https://a.example", "2026-11-28T01:09:00.000000Z|e2", 0)
    (chosen,) = edges._ReadChosenLines().process((path, [line]))
    assert orjson.loads(chosen)["reason_id"] == "new"  # the document stayed in the worker's file


def test_staged_files_are_counted_from_their_footers(tmp_path):
    rows = [event(f"https://{i}.example", i, f"e{i}", "r").deactivation for i in range(3)]
    directory = staged_table_dir(str(tmp_path), DEACTIVATIONS_TABLE.name)
    write_staged(f"{directory}/b0.parquet", DEACTIVATIONS_TABLE, rows, {edges.HOUR_KEY: b"2026-11-28T01"})
    errors = [
        {
            "error_id": f"x{i}",
            "raw_hour": "2026-11-28T02:00:00.000000Z",
            "error_type": "duplicate",
            "raw_file": "f",
            "raw_line": i,
        }
        for i in range(2)
    ]
    metadata = {edges.HOUR_KEY: b"2026-11-28T02", edges.ERROR_TYPES_KEY: b'{"duplicate": 2}'}
    write_staged(
        f"{staged_table_dir(str(tmp_path), DEACTIVATION_ERRORS.name)}/f.parquet",
        DEACTIVATION_ERRORS,
        errors,
        metadata,
    )

    [deactivations] = list_staged(str(tmp_path), DEACTIVATIONS_TABLE.name)
    [dead_letters] = list_staged(str(tmp_path), DEACTIVATION_ERRORS.name)

    assert (deactivations.raw_hour, deactivations.rows, deactivations.error_types) == ("2026-11-28T01", 3, {})
    assert (dead_letters.raw_hour, dead_letters.rows, dead_letters.error_types) == (
        "2026-11-28T02",
        2,
        {"duplicate": 2},
    )
