"""Accepted means processed: whatever body the collector accepts becomes, in the pipeline, exactly
one valid event or exactly one typed dead letter, and never an exception that fails the hour.

Bodies are SDK-shaped (the captured SDK requests with any of their fields replaced by anything:
extreme numbers, deep nesting, odd unicode, wrong types), sent as PHP form bodies (with brackets)
and as JSON, and go through the collector's real decoder, project-hash check, envelope and
serialisation; what those refuse is a 4xx at the collector and not the pipeline's business. What
they accept is written to raw files and processed by ProcessDeactivations.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from beam.elements import RawFileContent, RawFileGroup
from beam.transforms import ProcessDeactivations
from deactivation.dead_letters import DEAD_LETTER_TYPES
from deactivation.envelope import make_envelope
from deactivation.erasure import ErasureRegister, site_key
from deactivation.raw_store import serialise_envelope
from deactivation.settings import Settings
from ingest_app.bodies import FORM, JSON, decode_body, project_hash
from ingest_app.errors import ApiError

HOUR = datetime(2026, 11, 28, 1, tzinfo=UTC)
HOUR_DIR = "deactivate/2026/11/28/01"
ERASURE_KEY = b"p" * 32
ERASED_SITE = "https://erased.example"
#: The collector's default nesting limit, and a limit an operator could raise it to: the pipeline
#: must cope with what either accepts.
NESTING_LIMITS = (Settings.model_fields["INGEST_MAX_NESTING"].default, 400)

# --- SDK-shaped bodies -------------------------------------------------------------------------------
FIELDS = (
    "url",
    "site",
    "admin_email",
    "first_name",
    "last_name",
    "hash",
    "reason_id",
    "reason_info",
    "project_version",
    "version",
    "client",
    "is_local",
    "tracking_skipped",
    "active_plugins",
    "inactive_plugins",
    "theme",
    "ip_address",
    "server",
    "server.software",
    "server.php_version",
    "server.mysql_version",
    "server.php_max_upload_size",
    "server.php_default_timezone",
    "server.php_soap",
    "server.php_fsockopen",
    "server.php_curl",
    "wp",
    "wp.memory_limit",
    "wp.debug_mode",
    "wp.locale",
    "wp.version",
    "wp.multisite",
    "wp.theme_slug",
    "wp.theme_name",
    "wp.theme_version",
    "users",
    "users.total",
    "extra",
    "extra.total_forms",
    "plugins",
)

EXTREME_TEXTS = st.sampled_from(
    [
        "9" * 5000,  # beyond Python's int-from-text limit
        "9223372036854775808",  # int64 + 1
        "18446744073709551616",
        "1." + "0" * 3000,  # a version of thousands of digits
        "9" * 400 + " GB",  # a size whose number overflows a float
        "1e400",
        "-1",
        "-5M",
        "1.5 PB",
        "8191 PB",
        "١٢",  # Arabic-Indic digits
        "²",
        "Yes",
        "no",
        "",
        " ",
        "/",
        "\u0000",
        "\u202e\u200b",
        "😀" * 50,
        "a" * 20_000,
        "https://erased.example/",
        "a4a8da5b-b419-4656-98e9-4a42e9044891",
        "A4A8DA5B-B419-4656-98E9-4A42E9044891",
        "b1b2c3d4-0000-4000-8000-000000000001",
        "0d0e0a0d-0000-4000-8000-00000000beef",
        "found-better-plugin",
        "theme-switch",
        "other",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    EXTREME_TEXTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _nest(value, depth: int):
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


DEEP_VALUES = st.builds(_nest, SCALARS, st.integers(min_value=2, max_value=450))
ANY_VALUE = st.one_of(SCALARS, VALUES, DEEP_VALUES)
CHANGES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), ANY_VALUE, max_size=6)


def changed_body(base: dict, changes: dict) -> dict:
    body = copy.deepcopy(base)
    for path, value in changes.items():
        section, _, field = path.partition(".")
        if field and isinstance(body.get(section), dict):
            body[section][field] = value
        else:
            body[path] = value
    return body


# --- Encodings as a client would send them -----------------------------------------------------------
def _form_pairs(name: str, value) -> list[str]:
    """PHP http_build_query: nested arrays as name[key]=..., true as 1, false as 0, null skipped."""
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _form_pairs(f"{name}[{key}]", item)]
    if isinstance(value, list):
        return [pair for index, item in enumerate(value) for pair in _form_pairs(f"{name}[{index}]", item)]
    if value is None:
        return []
    text = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return [f"{quote(name, safe='[]')}={quote(text, safe='')}"]


def form_encoded(body: dict) -> bytes | None:
    try:
        return "&".join(pair for key, value in body.items() for pair in _form_pairs(key, value)).encode()
    except (ValueError, RecursionError, UnicodeEncodeError):  # str() of a huge int, lone surrogates
        return None


def json_encoded(body: dict) -> bytes | None:
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return None


def accepted_line(media: str, raw: bytes | None, nesting_limit: int, minute: int) -> bytes | None:
    """What the collector stores for this body, or None if it answers 4xx."""
    if not raw:
        return None
    try:
        body = decode_body(media, raw, nesting_limit)
        project_hash(body)
    except ApiError:
        return None
    envelope = make_envelope(
        route="deactivate",
        body=body,
        content_type=media,
        user_agent="WordPress/6.5.3; https://shop.example.com",
        remote_addr="203.0.113.9",
        received_at=HOUR + timedelta(minutes=minute),
    )
    try:
        return serialise_envelope(envelope).line
    except (TypeError, ValueError):  # the collector answers 400 unstorable_body
        return None


def assert_each_record_once(kit, groups: list[RawFileGroup], expected_events: list[str] | None = None):
    """Every record of `groups` comes out exactly once: as a valid event or as a typed dead letter."""
    records = [
        (content.raw_file, line, orjson.loads(text)["event_id"])
        for group in groups
        for content in group.files
        for line, text in enumerate(content.data.split(b"\n"), start=1)
    ]
    line_of_event = {event_id: (raw_file, line) for raw_file, line, event_id in records}
    erasures = ErasureRegister(ERASURE_KEY, frozenset({site_key(ERASURE_KEY, kit.plugin_hash, ERASED_SITE)}))
    with kit.pipeline() as p:
        registry = beam.pvalue.AsSingleton(p | "Registry" >> beam.Create([kit.rules]))
        erased = beam.pvalue.AsSingleton(p | "Erasures" >> beam.Create([erasures]))
        processed = (
            p
            | beam.Create(groups)
            | ProcessDeactivations(registry, erased, records_per_batch=7, duplicate_window_minutes=10)
        )
        events = (
            processed["events"]
            | "Events" >> beam.FlatMap(lambda batch: batch.items)
            | "EventSources"
            >> beam.Map(lambda event: ("event", *line_of_event[event.deactivation["event_id"]]))
        )
        dead = processed["dead_letters"] | "DeadSources" >> beam.Map(
            lambda d: (
                d.error_type if d.error_type in DEAD_LETTER_TYPES else f"untyped {d.error_type}",
                d.raw_file,
                d.raw_line,
            )
        )
        sources = (events, dead) | beam.Flatten() | "Sources" >> beam.Map(lambda outcome: outcome[1:])
        assert_that(sources, equal_to([(raw_file, line) for raw_file, line, _ in records]), label="EachOnce")
        typed = (
            (events, dead)
            | "AllOutcomes" >> beam.Flatten()
            | "IsTyped" >> beam.Map(lambda outcome: outcome[0] == "event" or outcome[0] in DEAD_LETTER_TYPES)
        )
        assert_that(typed, equal_to([True] * len(records)), label="Typed")
        if expected_events is not None:
            ids = processed["events"] | "Ids" >> beam.FlatMap(
                lambda batch: [event.deactivation["event_id"] for event in batch.items]
            )
            assert_that(ids, equal_to(expected_events), label="ExpectedEvents")


# --- The property ------------------------------------------------------------------------------------
@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    bodies=st.lists(
        st.tuples(
            st.sampled_from(["004-v2x-found-better-plugin", "021-theme", "022-v1-is-not-working"]),
            CHANGES,
            st.sampled_from([FORM, JSON]),
            st.sampled_from(NESTING_LIMITS),
            st.integers(min_value=0, max_value=59),
        ),
        min_size=1,
        max_size=12,
    ),
    split=st.integers(min_value=0, max_value=12),
)
def test_every_accepted_body_becomes_one_event_or_one_typed_dead_letter(kit, sdk_captures, bodies, split):
    lines = []
    for capture, changes, media, nesting_limit, minute in bodies:
        body = changed_body(sdk_captures[capture]["body"], changes)
        raw = form_encoded(body) if media == FORM else json_encoded(body)
        line = accepted_line(media, raw, nesting_limit, minute)
        if line is not None:
            lines.append(line)
    assume(lines)  # when the collector refused every body there is nothing to process
    files = [
        RawFileContent(kit.hour_label, f"{HOUR_DIR}/{name}.ndjson", b"\n".join(part))
        for name, part in (("a", lines[:split]), ("b", lines[split:]))
        if part
    ]
    assert_each_record_once(kit, [RawFileGroup(kit.hour_label, [content]) for content in files])


# --- Poison and good records in one hour -------------------------------------------------------------
def test_a_poison_record_does_not_stop_another_projects_record_of_its_hour(kit, sdk_captures):
    plugin_body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    theme_body = sdk_captures["021-theme"]["body"]
    poisons = [
        changed_body(plugin_body, {"users.total": "9" * 5000}),
        changed_body(plugin_body, {"active_plugins": "9223372036854775808"}),
        changed_body(plugin_body, {"server.php_max_upload_size": "9" * 400 + " GB"}),
        changed_body(plugin_body, {"wp.version": "1." + "0" * 3000}),
        changed_body(plugin_body, {"extra": {"total_forms": _nest("x", 200)}}),  # stored, but deeper than 128
    ]
    lines = [accepted_line(FORM, form_encoded(body), 400, minute) for minute, body in enumerate(poisons)]
    lines += [accepted_line(JSON, json_encoded(body), 400, 10 + m) for m, body in enumerate(poisons)]
    good = accepted_line(JSON, json_encoded(theme_body), 32, 30)
    assert None not in lines and good is not None, "the collector accepts every one of these"
    content = RawFileContent(kit.hour_label, f"{HOUR_DIR}/a.ndjson", b"\n".join([*lines, good]))
    assert_each_record_once(
        kit, [RawFileGroup(kit.hour_label, [content])], expected_events=[orjson.loads(good)["event_id"]]
    )
