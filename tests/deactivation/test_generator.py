"""The synthetic generator: seeded, SDK-shaped, with a known mix and a few bad events by design."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from deactivation.envelope import envelope_problem, parse_timestamp
from deactivation.generator import (
    DEMO_PROJECTS,
    UNKNOWN_PROJECT_HASH,
    generate_events,
    write_to_raw_store,
)
from deactivation.hours import hour_floor
from deactivation.raw_store import LocalRawStore
from deactivation.reasons import BUILT_IN_REASONS, THEME_SWITCH

START = datetime(2026, 11, 27, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated():
    return generate_events(seed=5, start_hour=START, hours=6, events_per_hour=200)


def _strings_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _strings_only(v) for k, v in value.items())
    return isinstance(value, str)


def test_same_seed_same_events_other_seed_other_events(generated):
    assert (
        generate_events(seed=5, start_hour=START, hours=6, events_per_hour=200).envelopes
        == generated.envelopes
    )
    assert (
        generate_events(seed=6, start_hour=START, hours=6, events_per_hour=200).envelopes
        != generated.envelopes
    )


def test_envelopes_are_valid_raw_envelopes_in_their_hours(generated):
    assert len(generated.envelopes) == 6 * 200
    ids = [e["event_id"] for e in generated.envelopes]
    assert len(set(ids)) == len(ids)
    for envelope in generated.envelopes:
        assert envelope_problem(envelope, envelope["received_at"][:13]) is None
        received_at = parse_timestamp(envelope["received_at"])
        assert uuid.UUID(envelope["event_id"]).version == 7
        # UUIDv7 carries the receive time in its first 48 bits.
        assert uuid.UUID(envelope["event_id"]).int >> 80 == int(received_at.timestamp() * 1000)
        assert START <= received_at < START + timedelta(hours=6)
        assert _strings_only(envelope["body"]), "a decoded form body holds only strings"
    for hour_index in range(6):
        hour = START + timedelta(hours=hour_index)
        assert len(generated.bodies_for_hour(hour)) == 200


def test_bodies_look_like_the_sdk(generated, sdk_captures):
    capture_keys = set(sdk_captures["004-v2x-found-better-plugin"]["body"])
    v2 = [b for b in generated.bodies_for_hour(START) if "project_version" in b and "reason_id" in b]
    assert v2 and {"hash", "url", "server", "wp", "users", "project_version", "client"} <= set(v2[0])
    assert set(v2[0]) <= capture_keys | {"extra", "plugins"}
    legacy = [b for b in generated.bodies_for_hour(START) if "version" in b]
    assert legacy and all("users" not in b and "project_version" not in b for b in legacy)


def test_theme_switches_carry_no_reason_fields(generated):
    theme = next(p for p in DEMO_PROJECTS if p.kind == "theme")
    theme_bodies = [e["body"] for e in generated.envelopes if e["body"]["hash"] == theme.hash]
    assert theme_bodies and all("reason_id" not in b and "reason_info" not in b for b in theme_bodies)
    assert {e.reason_id for e in generated.truth.events if e.project_hash == theme.hash} == {THEME_SWITCH}


def test_truth_covers_every_reason_kind_and_the_bad_events(generated):
    reasons = Counter(e.reason_id for e in generated.truth.events)
    custom = set(DEMO_PROJECTS[0].custom_reasons)
    assert set(BUILT_IN_REASONS) | custom | {THEME_SWITCH} == set(reasons)
    assert set(generated.truth.rejected) == {
        "unknown_project",
        "invalid_reason",
        "invalid_field",
        "duplicate",
    }
    assert len(generated.truth.events) + sum(generated.truth.rejected.values()) == len(generated.envelopes)
    bodies = [e["body"] for e in generated.envelopes]
    assert (
        sum(b["hash"] == UNKNOWN_PROJECT_HASH for b in bodies) == generated.truth.rejected["unknown_project"]
    )
    assert sum(b["wp"]["memory_limit"] == "lots" for b in bodies) == generated.truth.rejected["invalid_field"]
    for event in generated.truth.events[:50]:
        assert event.hour == hour_floor(event.received_at)


def test_writing_twice_rewrites_the_same_files(tmp_path, generated):
    store = LocalRawStore(str(tmp_path / "raw"))
    first = write_to_raw_store(store, generated.envelopes)
    second = write_to_raw_store(store, generated.envelopes)
    assert first == second
    on_disk = sorted(p for p in (tmp_path / "raw").rglob("*") if p.is_file())
    assert len(on_disk) == len(first)
    lines = [line for path in on_disk for line in path.read_bytes().splitlines() if line]
    assert len(lines) == len(generated.envelopes)
    stored = {parse_timestamp(e["received_at"]).strftime("%Y/%m/%d/%H") for e in generated.envelopes}
    assert {"/".join(p.relative_to(tmp_path / "raw").parts[1:5]) for p in on_disk} == stored


def test_a_resent_answer_within_the_window_is_a_duplicate_in_the_truth(generated):
    # 200 events an hour over 400 sites a project: some site gives the same answer twice.
    assert generated.truth.rejected["duplicate"] > 0
    kept = {
        (e.hour, e.project_hash, e.site_url, e.reason_id, e.reason_info): e for e in generated.truth.events
    }
    assert len(kept) <= len(generated.truth.events)
    without_window = generate_events(
        seed=5, start_hour=START, hours=6, events_per_hour=200, duplicate_window_minutes=0
    )
    assert without_window.envelopes == generated.envelopes, "the window changes the record, not the events"
    assert (
        len(without_window.truth.events)
        == len(generated.truth.events) + generated.truth.rejected["duplicate"]
    )


def test_an_hour_generated_in_chunks_draws_from_the_whole_hours_site_pool():
    def site_numbers(sites_per_project: int | None) -> set[int]:
        chunk = generate_events(
            seed=1, start_hour=START, hours=1, events_per_hour=300, sites_per_project=sites_per_project
        )
        return {int(e.site_url.rsplit("-", 1)[1].split(".")[0]) for e in chunk.truth.events}

    assert max(site_numbers(None)) < 400  # a small hour: the floor of 400 sites a project
    assert max(site_numbers(1_000_000)) >= 400  # a chunk of a 1M-event hour: its pool is 1M sites
    assert max(site_numbers(1)) < 400  # never below the floor
