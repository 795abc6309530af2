"""The pipeline's pure record logic (beam/shaping.py), without Beam: checks, rows, contact policy,
erasure and the duplicate decisions."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import random
from datetime import timedelta

import orjson
import pytest

from beam.shaping import (
    MAX_RECORD_NESTING,
    first_of_each_event_id,
    first_of_each_resend,
    is_erased,
    mail_requests,
    mark_of,
    project_problem,
    reason_of,
    record_problem,
    resend_key,
    shape_event,
)
from deactivation.erasure import ErasureRegister, email_key, site_key
from deactivation.site_fields import FieldError

ERASURE_KEY = b"k" * 32


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def plugin_body(sdk_captures):
    return copy.deepcopy(sdk_captures["004-v2x-found-better-plugin"]["body"])


def envelope_of(kit, body):
    """An envelope around `body` as it is (kit.envelope deep-copies, which deep nesting defeats)."""
    return {**kit.envelope({}), "body": body}


def with_policy(kit, policy):
    return dataclasses.replace(kit.rules[kit.plugin_hash], contact_policy=policy)


# --- Checks ------------------------------------------------------------------------------------------
def test_record_problem_accepts_an_envelope_of_its_hour_only(kit, plugin_body):
    good = kit.envelope(plugin_body)
    assert record_problem(orjson.dumps(good), kit.hour_label) == (good, None)
    assert record_problem(b"{torn", kit.hour_label) == (None, "not valid JSON")
    assert record_problem(orjson.dumps([good]), kit.hour_label)[1] == "not a JSON object"
    assert "lies outside its hour folder" in record_problem(orjson.dumps(good), "2026-11-28T02")[1]


@pytest.mark.parametrize("depth", [MAX_RECORD_NESTING, 200, 1000])
def test_record_problem_refuses_records_nested_deeper_than_the_pipeline_can_carry(kit, plugin_body, depth):
    # Written as text: json.dumps itself recurses too deep for a thousand levels.
    text = json.dumps({**kit.envelope(plugin_body), "body": {**plugin_body, "extra": "DEEP"}})
    text = text.replace('"DEEP"', "[" * depth + "]" * depth)
    envelope, problem = record_problem(text.encode(), kit.hour_label)
    assert (envelope, problem) == (None, f"nested deeper than {MAX_RECORD_NESTING} levels")
    shallow = {**kit.envelope(plugin_body), "body": {**plugin_body, "extra": _nested(MAX_RECORD_NESTING - 3)}}
    assert record_problem(json.dumps(shallow).encode(), kit.hour_label) == (shallow, None)


def test_project_problem_normalises_and_names_the_problem(kit):
    registry = kit.rules
    assert project_problem(kit.plugin_hash.upper(), registry) == (kit.plugin_hash, None)
    assert project_problem(None, registry) == (None, "hash missing")
    assert project_problem({"a": 1}, registry) == (None, "hash {'a': 1} is not a UUID")
    assert project_problem("x" * 10_000, registry)[1] == f"hash '{'x' * 76}... is not a UUID"


def test_reason_of_a_plugin_and_a_theme(kit, plugin_body):
    plugin, theme = kit.rules[kit.plugin_hash], kit.rules[kit.theme_hash]
    assert reason_of(plugin_body, plugin) == ("found-better-plugin", None)
    assert reason_of({}, theme) == ("theme-switch", None)
    assert reason_of({"reason_id": ["x"]}, plugin)[1] == (
        "reason_id ['x'] is neither built-in nor registered for this project"
    )


# --- Rows --------------------------------------------------------------------------------------------
def test_shape_event_normalises_the_site_url_as_erasure_does(kit, plugin_body):
    plugin = kit.rules[kit.plugin_hash]
    event = shape_event(
        kit.hour_label, kit.envelope({**plugin_body, "url": " https://a.example// "}), plugin, "other"
    )
    assert event.site["site_url"] == event.deactivation["site_url"] == "https://a.example"
    with pytest.raises(FieldError, match="url: cannot read '/' as a site URL"):
        shape_event(kit.hour_label, kit.envelope({**plugin_body, "url": "/"}), plugin, "other")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"users": {"total": "9" * 5000}}, "users.total"),
        ({"active_plugins": 2**64 - 1}, "active_plugins"),
        ({"server": {"php_max_upload_size": "9" * 400 + " GB"}}, "server.php_max_upload_size"),
        ({"wp": {"version": "6." + "5" * 5000}}, "wp.version"),
        ({"project_version": _nested(900)}, "project_version"),
        ({"extra": {"total_forms": _nested(400)}}, "extra"),
        ({"reason_info": _nested(900)}, "reason_info"),
        ({"tracking_skipped": 10**30}, "tracking_skipped"),
    ],
    ids=lambda part: next(iter(part)) if isinstance(part, dict) else part,
)
def test_shape_event_raises_only_field_errors_for_hostile_values(kit, plugin_body, change, field):
    plugin = kit.rules[kit.plugin_hash]
    with pytest.raises(FieldError) as raised:
        shape_event(kit.hour_label, envelope_of(kit, {**plugin_body, **change}), plugin, "other")
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("policy", "tracking_skipped", "kept"),
    [
        ("keep", True, True),
        ("keep", False, True),
        ("only_if_tracking_allowed", False, True),
        ("only_if_tracking_allowed", None, True),  # legacy SDKs do not say
        ("only_if_tracking_allowed", True, False),
        ("only_if_tracking_allowed", "1", False),  # form bodies send 1/0
        ("drop", False, False),
        ("drop", True, False),
    ],
)
def test_contact_policy_decides_whether_the_contact_and_its_mail_requests_exist(
    kit, plugin_body, policy, tracking_skipped, kept
):
    rules = with_policy(kit, policy)
    event = shape_event(
        kit.hour_label, kit.envelope({**plugin_body, "tracking_skipped": tracking_skipped}), rules, "other"
    )
    if kept:
        assert event.contact == {"email": "admin@example.com", "first_name": "Jane", "last_name": "Doe"}
        assert len(mail_requests(event, rules)) == 1
    else:
        assert event.contact is None
        assert mail_requests(event, rules) == []
    # Neither row ever holds the contact, whatever the policy.
    for row in (event.deactivation, event.site):
        assert "admin@example.com" not in str(row) and "Jane" not in str(row)


def test_project_rules_carry_the_projects_contact_policy(kit):
    from beam.elements import registry_rules

    project = kit.projects[0].model_copy(update={"contact_policy": "drop"})
    assert registry_rules({project.hash: project})[project.hash].contact_policy == "drop"
    assert kit.rules[kit.plugin_hash].contact_policy == "keep"


# --- Erasure -----------------------------------------------------------------------------------------
def test_is_erased_by_site_or_by_admin_email(kit, plugin_body):
    by_site = ErasureRegister(
        ERASURE_KEY, frozenset({site_key(ERASURE_KEY, kit.plugin_hash, "https://shop.example.com/")})
    )
    by_email = ErasureRegister(
        ERASURE_KEY, email_keys=frozenset({email_key(ERASURE_KEY, kit.plugin_hash, "Admin@Example.com")})
    )
    assert is_erased(plugin_body, kit.plugin_hash, by_site)
    assert is_erased(plugin_body, kit.plugin_hash, by_email)
    assert not is_erased(plugin_body, kit.theme_hash, by_site)  # another project's site of that URL
    assert not is_erased({**plugin_body, "url": "https://other.example"}, kit.plugin_hash, by_site)
    assert not is_erased({**plugin_body, "url": ["x"], "admin_email": 7}, kit.plugin_hash, by_email)
    assert not is_erased(plugin_body, kit.plugin_hash, ErasureRegister())


# --- Duplicates --------------------------------------------------------------------------------------
def _sourced(
    kit, plugin_body, source, minute, *, event_id=None, reason_info="too slow", url="https://a.example"
):
    body = {**plugin_body, "reason_info": reason_info, "url": url}
    envelope = kit.envelope(body, minute=minute, event_id=event_id)
    return source, shape_event(kit.hour_label, envelope, kit.rules[kit.plugin_hash], "other")


def _marks(items):
    return [mark_of(source, event) for source, event in items]


def _decided(decision):
    kept, duplicates = decision
    return [mark.source for mark in kept], [(mark.source, kept_source) for mark, kept_source in duplicates]


def test_first_of_each_event_id_keeps_the_copy_read_first_in_any_order(kit, plugin_body):
    same_id = "0190a4f0-0000-7000-8000-000000000001"
    marks = _marks(
        [
            _sourced(kit, plugin_body, ("b.ndjson", 1), 5, event_id=same_id),
            _sourced(kit, plugin_body, ("a.ndjson", 9), 5, event_id=same_id),
            _sourced(kit, plugin_body, ("a.ndjson", 2), 5, event_id=same_id),
            _sourced(kit, plugin_body, ("c.ndjson", 1), 6),
        ]
    )
    expected = (
        [("a.ndjson", 2), ("c.ndjson", 1)],
        [(("a.ndjson", 9), ("a.ndjson", 2)), (("b.ndjson", 1), ("a.ndjson", 2))],
    )
    for order in itertools.permutations(marks):
        assert _decided(first_of_each_event_id(iter(order))) == expected


def test_first_of_each_resend_counts_an_answer_once_per_window(kit, plugin_body):
    marks = _marks(
        [
            _sourced(kit, plugin_body, ("a", 1), 0),
            _sourced(kit, plugin_body, ("a", 2), 4),  # re-send within 10 minutes of the kept one
            _sourced(kit, plugin_body, ("a", 3), 10),  # exactly 10 minutes after: still within
            _sourced(kit, plugin_body, ("a", 4), 11),  # 11 minutes after the kept one: kept
            _sourced(kit, plugin_body, ("a", 5), 12),  # within 10 minutes of the second kept one
            _sourced(kit, plugin_body, ("a", 6), 4, reason_info="other text"),
            _sourced(kit, plugin_body, ("a", 7), 4, url="https://b.example/"),
        ]
    )
    expected = (
        [("a", 1), ("a", 4), ("a", 6), ("a", 7)],
        [(("a", 2), ("a", 1)), (("a", 3), ("a", 1)), (("a", 5), ("a", 4))],
    )
    assert _decided(first_of_each_resend(marks, window_minutes=10)) == expected
    rng = random.Random(7)
    for _ in range(20):
        assert _decided(first_of_each_resend(rng.sample(marks, len(marks)), window_minutes=10)) == expected
    assert _decided(first_of_each_resend(marks, window_minutes=0)) == ([m.source for m in marks], [])


def test_marks_are_equal_for_the_same_answer_only(kit, plugin_body):
    first = mark_of(*_sourced(kit, plugin_body, ("a", 1), 0, url="https://a.example/"))
    same = mark_of(*_sourced(kit, plugin_body, ("a", 2), 3, url=" https://a.example"))
    assert first.answer == same.answer and first.event_id != same.event_id
    for change in ({"reason_info": "other"}, {"url": "https://b.example"}):
        assert mark_of(*_sourced(kit, plugin_body, ("a", 3), 3, **change)).answer != first.answer


def test_resend_key_includes_the_hour_so_an_hours_rows_depend_on_that_hour_only(kit, plugin_body):
    plugin = kit.rules[kit.plugin_hash]
    body = {**plugin_body, "reason_info": "same"}
    late = shape_event(kit.hour_label, kit.envelope(body, minute=58), plugin, "other")
    next_hour = kit.hour + timedelta(hours=1)
    early = shape_event("2026-11-28T02", kit.envelope(body, hour=next_hour, minute=2), plugin, "other")
    assert resend_key(late)[1:] == resend_key(early)[1:]
    assert resend_key(late) != resend_key(early)
