"""Each composite transform under TestPipeline, on good input and on every kind of bad input.

One pipeline per transform: all cases go through it together and assert_that checks both the main
output and the typed dead letters (the FnApiRunner costs seconds to start, a case costs nothing).
"""

from __future__ import annotations

import json

import apache_beam as beam
import orjson
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from beam.elements import Batch, RawFileContent, RawFileGroup, registry_rules
from beam.shaping import shape_event
from beam.transforms import (
    CheckEach,
    CleanSiteFields,
    DropDuplicates,
    DropErasedSites,
    ParseEnvelopes,
    ProcessDeactivations,
    RequestMailSync,
    ValidateProjects,
    ValidateReasons,
)
from deactivation.dead_letters import DeadLetterType
from deactivation.erasure import ErasureRegister, email_key, site_key
from deactivation.projects import MailIntegration, Project


def as_form_strings(value):
    """A JSON body as PHP form encoding delivers it: every scalar a string, booleans as 1/0."""
    if isinstance(value, dict):
        return {key: as_form_strings(item) for key, item in value.items()}
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def items_of(pcoll, label):
    return pcoll | label >> beam.FlatMap(lambda batch: batch.items)


def dead_letter_summary(pcoll, label):
    return pcoll | label >> beam.Map(lambda d: (d.error_type, d.raw_line, d.detail))


RAW_FILE = "deactivate/2026/11/28/01/x.ndjson"


def batch_of(kit, items):
    return Batch("b-00000", kit.hour_label, items)


def test_parse_envelopes_keeps_envelopes_and_rejects_what_is_not_one(kit, sdk_captures):
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    good = [kit.envelope(body, minute=m) for m in range(3)]
    other_hour = kit.envelope(body, hour=kit.hour.replace(hour=2))
    wrong_route = {**kit.envelope(body), "route": "track"}
    lines = [
        orjson.dumps(good[0]),
        b"",  # blank lines are no records
        orjson.dumps(good[1]),
        b"{not json",
        b"[1, 2]",
        orjson.dumps({k: v for k, v in good[2].items() if k != "event_id"}),
        orjson.dumps({**good[2], "received_at": "2026-11-28 01:00:00"}),
        orjson.dumps(other_hour),
        orjson.dumps(wrong_route),
        orjson.dumps({**good[2], "body": "url=x"}),
    ]
    hour_dir = "deactivate/2026/11/28/01"
    files = [
        RawFileContent(kit.hour_label, f"{hour_dir}/a.ndjson", b"\n".join(lines) + b"\n"),
        # A .json file is one envelope, even pretty-printed over many lines.
        RawFileContent(
            kit.hour_label, f"{hour_dir}/b.json", orjson.dumps(good[2], option=orjson.OPT_INDENT_2)
        ),
        RawFileContent(kit.hour_label, f"{hour_dir}/c.json", b"\x00\xffnot an envelope"),
    ]
    groups = [RawFileGroup(kit.hour_label, files[:2]), RawFileGroup(kit.hour_label, files[2:])]
    with kit.pipeline() as p:
        parsed = p | beam.Create(groups) | ParseEnvelopes(records_per_batch=2)
        kept = items_of(parsed.batches, "Items") | beam.Map(
            lambda item: (item[0][0].rsplit("/", 1)[1], item[0][1], item[1]["event_id"])
        )
        assert_that(
            kept,
            equal_to(
                [
                    ("a.ndjson", 1, good[0]["event_id"]),
                    ("a.ndjson", 3, good[1]["event_id"]),
                    ("b.json", 1, good[2]["event_id"]),
                ]
            ),
        )
        batch_sizes = parsed.batches | beam.Map(lambda b: (b.batch_id[-5:], len(b.items)))
        assert_that(batch_sizes, equal_to([("00000", 2), ("00001", 1)]), label="BatchesSpanFiles")
        assert_that(
            dead_letter_summary(parsed.dead_letters, "Dead"),
            equal_to(
                [
                    ("unparseable", 4, "not valid JSON"),
                    ("unparseable", 5, "not a JSON object"),
                    ("unparseable", 6, "event_id missing or not a UUID"),
                    ("unparseable", 7, "received_at missing or not YYYY-MM-DDTHH:MM:SS.ffffffZ"),
                    (
                        "unparseable",
                        8,
                        f"received_at {other_hour['received_at']} lies outside its hour folder 2026-11-28T01",
                    ),
                    ("unparseable", 9, "route 'track' is not deactivate"),
                    ("unparseable", 10, "body missing or not an object"),
                    ("unparseable", 1, "not valid JSON"),
                ]
            ),
            label="CheckDeadLetters",
        )


def test_validate_projects_by_normalised_hash(kit, sdk_captures):
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    cases = {
        "registered": body,
        "uppercase": {**body, "hash": kit.plugin_hash.upper()},
        "unregistered": {**body, "hash": kit.unregistered_hash},
        "not-uuid": {**body, "hash": "my-plugin"},
        "missing": {k: v for k, v in body.items() if k != "hash"},
        "not-text": {**body, "hash": ["x"]},
    }
    envelopes = {name: kit.envelope(b) for name, b in cases.items()}
    items = [((RAW_FILE, line), envelopes[name]) for line, name in enumerate(cases, start=1)]
    with kit.pipeline() as p:
        registry = beam.pvalue.AsSingleton(p | "Registry" >> beam.Create([kit.rules]))
        checked = p | beam.Create([batch_of(kit, items)]) | ValidateProjects(registry)
        kept = items_of(checked.batches, "Items") | beam.Map(lambda item: (item[0][1], item[2].hash))
        assert_that(kept, equal_to([(1, kit.plugin_hash), (2, kit.plugin_hash)]))
        dead = checked.dead_letters | beam.Map(lambda d: (d.error_type, d.raw_line, d.project_hash, d.detail))
        assert_that(
            dead,
            equal_to(
                [
                    (
                        "unknown_project",
                        3,
                        kit.unregistered_hash,
                        f"project {kit.unregistered_hash} is not registered",
                    ),
                    ("unknown_project", 4, None, "hash 'my-plugin' is not a UUID"),
                    ("unknown_project", 5, None, "hash missing"),
                    ("unknown_project", 6, None, "hash ['x'] is not a UUID"),
                ]
            ),
            label="CheckDeadLetters",
        )


def test_validate_reasons_against_built_in_custom_and_theme(kit, sdk_captures):
    plugin_body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    theme_body = sdk_captures["021-theme"]["body"]
    plugin, theme = kit.rules[kit.plugin_hash], kit.rules[kit.theme_hash]
    cases = [
        (plugin, plugin_body),
        (plugin, {**plugin_body, "reason_id": "none"}),
        (plugin, {**plugin_body, "reason_id": "too-expensive"}),
        (theme, theme_body),
        (theme, {**theme_body, "reason_id": ""}),
        (theme, {**theme_body, "reason_id": "other"}),
        (plugin, {**plugin_body, "reason_id": "made-up"}),
        (plugin, {k: v for k, v in plugin_body.items() if k != "reason_id"}),
        (plugin, {**plugin_body, "reason_id": "theme-switch"}),
        (plugin, {**plugin_body, "reason_id": 7}),
        (theme, {**theme_body, "reason_id": "too-expensive"}),  # another project's custom reason
    ]
    items = [
        ((RAW_FILE, line), kit.envelope(body), rules) for line, (rules, body) in enumerate(cases, start=1)
    ]
    with kit.pipeline() as p:
        checked = p | beam.Create([batch_of(kit, items)]) | ValidateReasons()
        kept = items_of(checked.batches, "Items") | beam.Map(lambda item: (item[0][1], item[3]))
        assert_that(
            kept,
            equal_to(
                [
                    (1, "found-better-plugin"),
                    (2, "none"),
                    (3, "too-expensive"),
                    (4, "theme-switch"),
                    (5, "theme-switch"),
                    (6, "other"),
                ]
            ),
        )
        unknown = "is neither built-in nor registered for this project"
        assert_that(
            dead_letter_summary(checked.dead_letters, "Dead"),
            equal_to(
                [
                    ("invalid_reason", 7, f"reason_id 'made-up' {unknown}"),
                    ("invalid_reason", 8, "reason_id missing"),
                    ("invalid_reason", 9, f"reason_id 'theme-switch' {unknown}"),
                    ("invalid_reason", 10, f"reason_id 7 {unknown}"),
                    ("invalid_reason", 11, f"reason_id 'too-expensive' {unknown}"),
                ]
            ),
            label="CheckDeadLetters",
        )


def test_clean_site_fields_casts_form_and_json_bodies_and_names_bad_fields(kit, sdk_captures):
    json_body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    form_body = as_form_strings(json_body)
    legacy_body = as_form_strings(sdk_captures["022-v1-is-not-working"]["body"])
    plugin = kit.rules[kit.plugin_hash]
    bad_memory = {**form_body, "wp": {**form_body["wp"], "memory_limit": "lots"}}
    bad_soap = {**form_body, "server": {**form_body["server"], "php_soap": "maybe"}}
    cases = [
        form_body,
        json_body,
        legacy_body,
        bad_memory,
        bad_soap,
        {**form_body, "users": {"total": "-3"}},
        {**form_body, "server": "nginx"},
        {k: v for k, v in form_body.items() if k != "url"},
        {**form_body, "reason_info": {"html": "<b>"}},
    ]
    envelopes = [kit.envelope(body, minute=line) for line, body in enumerate(cases, start=1)]
    items = [
        ((RAW_FILE, line), env, plugin, env["body"].get("reason_id"))
        for line, env in enumerate(envelopes, start=1)
    ]
    with kit.pipeline() as p:
        cleaned = p | beam.Create([batch_of(kit, items)]) | CleanSiteFields()
        events = items_of(cleaned.batches, "Items") | "Events" >> beam.Map(lambda item: item[1])
        sites = events | "Sites" >> beam.Map(
            lambda e: {
                k: e.site[k]
                for k in (
                    "event_id",
                    "site_url",
                    "php_max_upload_size_bytes",
                    "wp_memory_limit_bytes",
                    "php_soap",
                    "php_fsockopen",
                    "users_total",
                    "active_plugins",
                    "tracking_skipped",
                    "custom_fields",
                    "php_version_mm",
                    "theme_slug",
                )
            }
        )
        site_expected = {
            "site_url": "https://shop.example.com",
            "php_max_upload_size_bytes": 64 * 1024**2,
            "wp_memory_limit_bytes": 40 * 1024**2,
            "php_soap": False,
            "php_fsockopen": True,
            "users_total": 3,
            "active_plugins": 2,
            "tracking_skipped": False,
            "custom_fields": '{"total_forms":"12"}',
            "php_version_mm": "8.2",
            "theme_slug": "twentytwentyfour",
        }
        legacy_site = {
            **site_expected,
            "users_total": None,
            "active_plugins": None,
            "tracking_skipped": None,
            "custom_fields": "{}",
        }
        assert_that(
            sites,
            equal_to(
                [
                    {**site_expected, "event_id": envelopes[0]["event_id"]},
                    {
                        **site_expected,
                        "event_id": envelopes[1]["event_id"],
                        "custom_fields": '{"total_forms":12}',
                    },
                    {**legacy_site, "event_id": envelopes[2]["event_id"]},
                ]
            ),
            label="CheckSites",
        )
        deactivations = events | "Deactivations" >> beam.Map(
            lambda e: (
                e.deactivation["reason_id"],
                e.deactivation["reason_label"],
                e.deactivation["project_version"],
                e.deactivation["sdk_generation"],
                e.deactivation["received_at"] == e.site["received_at"],
                "admin_email" in e.deactivation,
                e.contact["email"],
            )
        )
        assert_that(
            deactivations,
            equal_to(
                [
                    (
                        "found-better-plugin",
                        "Found a better plugin",
                        "2.3.1",
                        "v2",
                        True,
                        False,
                        "admin@example.com",
                    ),
                    (
                        "found-better-plugin",
                        "Found a better plugin",
                        "2.3.1",
                        "v2",
                        True,
                        False,
                        "admin@example.com",
                    ),
                    ("is-not-working", "Not working", "2.3.1", "legacy", True, False, "admin@example.com"),
                ]
            ),
            label="CheckDeactivations",
        )
        assert_that(
            dead_letter_summary(cleaned.dead_letters, "Dead"),
            equal_to(
                [
                    ("invalid_field", 4, "wp.memory_limit: cannot read 'lots' as a size in bytes"),
                    ("invalid_field", 5, "server.php_soap: cannot read 'maybe' as yes/no"),
                    ("invalid_field", 6, "users.total: cannot read '-3' as a count"),
                    ("invalid_field", 7, "server: cannot read 'nginx' as an object"),
                    ("invalid_field", 8, "url: cannot read None as a site URL"),
                    ("invalid_field", 9, "reason_info: cannot read {'html': '<b>'} as text"),
                ]
            ),
            label="CheckDeadLetters",
        )


def test_request_mail_sync_only_for_projects_with_a_list_and_a_contact(kit, sdk_captures):
    plugin_body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    theme_body = sdk_captures["021-theme"]["body"]
    plugin, theme = kit.rules[kit.plugin_hash], kit.rules[kit.theme_hash]
    with_contact = kit.envelope(plugin_body)
    events = [
        shape_event(kit.hour_label, with_contact, plugin, "found-better-plugin"),
        shape_event(kit.hour_label, kit.envelope({**plugin_body, "admin_email": ""}), plugin, "other"),
        shape_event(kit.hour_label, kit.envelope(theme_body), theme, "theme-switch"),
    ]
    with kit.pipeline() as p:
        registry = beam.pvalue.AsSingleton(p | "Registry" >> beam.Create([kit.rules]))
        requests = p | beam.Create([batch_of(kit, events)]) | RequestMailSync(registry)
        assert_that(
            items_of(requests, "Items"),
            equal_to(
                [
                    {
                        "_id": f"{with_contact['event_id']}:mailchimp:deactivated",
                        "event_id": with_contact["event_id"],
                        "project_hash": kit.plugin_hash,
                        "site_url": "https://shop.example.com",
                        "provider": "mailchimp",
                        "list_id": "deactivated",
                        "contact": {"email": "admin@example.com", "first_name": "Jane", "last_name": "Doe"},
                        "received_at": with_contact["received_at"],
                        "status": "pending",
                    }
                ]
            ),
        )


# --- One record never fails an hour ------------------------------------------------------------------
def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_check_each_turns_any_unexpected_error_into_a_dead_letter_of_its_step(kit, sdk_captures):
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    envelopes = [kit.envelope(body, minute=m) for m in range(3)]
    items = [((RAW_FILE, line), env) for line, env in enumerate(envelopes, start=1)]

    def explodes_on_the_second(item, raw_hour):
        if item[0][1] == 2:
            raise RuntimeError("Jane Doe admin@example.com 203.0.113.7")  # a message quoting the sender
        return item

    with kit.pipeline() as p:
        batches = p | beam.Create([batch_of(kit, items)])
        for step in (DeadLetterType.INVALID_FIELD, DeadLetterType.ERASED):
            checked = batches | f"Check{step}" >> beam.ParDo(
                CheckEach(explodes_on_the_second, step)
            ).with_output_types(Batch).with_outputs("dead_letters", main="batches")
            kept = items_of(checked.batches, f"Items{step}") | f"Lines{step}" >> beam.Map(
                lambda item: item[0][1]
            )
            assert_that(kept, equal_to([1, 3]), label=f"CheckKept{step}")
            dead = checked.dead_letters | f"Dead{step}" >> beam.Map(
                lambda d: (
                    d.error_type,
                    d.raw_line,
                    d.detail,
                    d.event_id,
                    "Jane" in d.raw_envelope or "admin@example.com" in d.raw_envelope,
                    d.raw_envelope == "",
                )
            )
            # A failed erasure check may concern an erased site: that dead letter keeps no envelope.
            no_envelope = step is DeadLetterType.ERASED
            expected = (
                step.value,
                2,
                "could not be read (RuntimeError)",
                envelopes[1]["event_id"],
                False,
                no_envelope,
            )
            assert_that(dead, equal_to([expected]), label=f"CheckDeadLetters{step}")


def test_clean_site_fields_turns_hostile_values_into_named_invalid_fields(kit, sdk_captures):
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    plugin = kit.rules[kit.plugin_hash]
    cases = [
        {**body, "users": {"total": "9" * 5000}},  # beyond Python's int-from-text limit
        {**body, "active_plugins": 2**64 - 1},  # beyond int64
        {**body, "server": {**body["server"], "php_max_upload_size": "9" * 30 + " GB"}},  # float overflow
        {**body, "wp": {**body["wp"], "version": "6." + "5" * 5000}},  # a version of thousands of digits
        {**body, "reason_info": _nested(100)},  # shown short, not in full
        {**body, "extra": {"total_forms": _nested(300)}},  # deeper than orjson writes
        body,
    ]
    envelopes = [{**kit.envelope({}, minute=line), "body": case} for line, case in enumerate(cases, start=1)]
    items = [((RAW_FILE, line), env, plugin, "other") for line, env in enumerate(envelopes, start=1)]
    with kit.pipeline() as p:
        cleaned = p | beam.Create([batch_of(kit, items)]) | CleanSiteFields()
        kept = items_of(cleaned.batches, "Items") | beam.Map(lambda item: item[0][1])
        assert_that(kept, equal_to([7]))
        dead = cleaned.dead_letters | beam.Map(
            lambda d: (d.error_type, d.raw_line, d.detail.split(":")[0], len(d.detail) < 200)
        )
        assert_that(
            dead,
            equal_to(
                [
                    ("invalid_field", 1, "users.total", True),
                    ("invalid_field", 2, "active_plugins", True),
                    ("invalid_field", 3, "server.php_max_upload_size", True),
                    ("invalid_field", 4, "wp.version", True),
                    ("invalid_field", 5, "reason_info", True),
                    ("invalid_field", 6, "extra", True),
                ]
            ),
            label="CheckDeadLetters",
        )


def test_parse_envelopes_keeps_no_personal_data_of_a_torn_line(kit):
    torn = (
        b'{"event_id": "0190a4f0-0000-7000-8000-000000000009", "remote_addr": "198.51.100.4", '
        b'"body": {"first_name": "Jane", "last_name": "Doe", "admin_email": "jane@example.com", '
        b'"ip_address": "203.0.113.7", "reason_info": "call me from 2001:db8::1", "url": "https://shop.exa'
    )
    form_torn = (
        b"hash=x&first_name=Jane&last_name=Doe&ip_address=203.0.113.7&admin_email=jane%40example.com&u"
    )
    files = [RawFileContent(kit.hour_label, RAW_FILE, torn + b"\n" + form_torn + b"\n")]
    with kit.pipeline() as p:
        parsed = p | beam.Create([RawFileGroup(kit.hour_label, files)]) | ParseEnvelopes()
        kept = parsed.dead_letters | beam.Map(
            lambda d: (
                d.error_type,
                d.raw_line,
                [
                    s
                    for s in ("Jane", "Doe", "jane@", "203.0.113.7", "198.51.100.4", "2001:db8")
                    if s in d.raw_envelope
                ],
                "<redacted>" in d.raw_envelope,
            )
        )
        assert_that(kept, equal_to([("unparseable", 1, [], True), ("unparseable", 2, [], True)]))


# --- Erased sites ------------------------------------------------------------------------------------
ERASURE_KEY = b"e" * 32


def test_drop_erased_sites_keeps_nothing_of_them_but_ids(kit, sdk_captures):
    plugin_body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    theme_body = sdk_captures["021-theme"]["body"]
    erasures = ErasureRegister(
        ERASURE_KEY,
        site_keys=frozenset(
            {
                site_key(ERASURE_KEY, kit.plugin_hash, "https://erased.example"),
                site_key(ERASURE_KEY, kit.unregistered_hash, "https://shop.example.com"),
            }
        ),
        email_keys=frozenset({email_key(ERASURE_KEY, kit.theme_hash, "gone@example.com")}),
    )
    cases = [
        plugin_body,
        {**plugin_body, "url": "https://erased.example/"},  # the same site, as history keys it
        {**plugin_body, "hash": kit.plugin_hash.upper(), "url": " https://erased.example"},
        {**theme_body, "admin_email": "Gone@Example.com"},
        {**plugin_body, "admin_email": "gone@example.com"},  # erased for another project only
        {**plugin_body, "hash": kit.unregistered_hash},  # not registered, still erased
        {**plugin_body, "hash": ["x"], "url": {"a": 1}},  # no hash to check: left to later steps
    ]
    envelopes = [kit.envelope(body, minute=m) for m, body in enumerate(cases)]
    items = [((RAW_FILE, line), env) for line, env in enumerate(envelopes, start=1)]
    with kit.pipeline() as p:
        register = beam.pvalue.AsSingleton(p | "Erasures" >> beam.Create([erasures]))
        checked = p | beam.Create([batch_of(kit, items)]) | DropErasedSites(register)
        kept = items_of(checked.batches, "Items") | beam.Map(lambda item: item[0][1])
        assert_that(kept, equal_to([1, 5, 7]))
        dead = checked.dead_letters | beam.Map(tuple)

        def erased(line, project_hash):
            env = envelopes[line - 1]
            return (
                "erased",
                "erased on request",
                kit.hour_label,
                RAW_FILE,
                line,
                "",
                env["event_id"],
                project_hash,
                env["received_at"],
            )

        assert_that(
            dead,
            equal_to(
                [
                    erased(2, kit.plugin_hash),
                    erased(3, kit.plugin_hash),
                    erased(4, kit.theme_hash),
                    erased(6, kit.unregistered_hash),
                ]
            ),
            label="CheckDeadLetters",
        )


# --- Duplicates --------------------------------------------------------------------------------------
def test_drop_duplicates_gives_the_same_result_however_records_are_batched(kit, sdk_captures):
    body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    plugin = kit.rules[kit.plugin_hash]
    same_id = "0190a4f0-0000-7000-8000-0000000000aa"

    def sourced(raw_file, line, minute, event_id=None, reason_info="slow"):
        env = kit.envelope({**body, "reason_info": reason_info}, minute=minute, event_id=event_id)
        return (raw_file, line), shape_event(kit.hour_label, env, plugin, "other")

    items = [
        sourced("b.ndjson", 1, 30, same_id),
        sourced("a.ndjson", 2, 30, same_id),
        sourced("a.ndjson", 1, 0),
        sourced("a.ndjson", 3, 9),  # the same answer within 10 minutes
        sourced("c.ndjson", 1, 45),  # 15 minutes after the kept copy of the same_id answer: kept
        sourced("c.ndjson", 2, 46, reason_info="another answer"),
    ]
    arrangements = {
        "OneBatch": [Batch("x", kit.hour_label, items)],
        "OnePerItem": [Batch(f"x{n}", kit.hour_label, [item]) for n, item in enumerate(reversed(items))],
        "Pairs": [Batch(f"y{n}", kit.hour_label, items[n : n + 2]) for n in range(0, len(items), 2)],
    }
    expected_kept = [items[n][1].deactivation["event_id"] for n in (2, 1, 4, 5)]
    expected_dead = [
        ("duplicate", "a.ndjson", 3, "same answer within 10 minutes as a.ndjson#1"),
        ("duplicate", "b.ndjson", 1, "same event_id as a.ndjson#2"),
    ]
    with kit.pipeline() as p:
        for name, batches in arrangements.items():
            unique = p | f"Create{name}" >> beam.Create(batches) | name >> DropDuplicates(10)
            kept = items_of(unique["batches"], f"Items{name}") | f"EventIds{name}" >> beam.Map(
                lambda event: event.deactivation["event_id"]
            )
            assert_that(kept, equal_to(expected_kept), label=f"CheckKept{name}")
            # Batches keep their ids (the staging files are named by them); emptied ones are dropped.
            ids = unique["batches"] | f"Ids{name}" >> beam.Map(lambda b: b.batch_id)
            input_ids = [batch.batch_id for batch in batches]
            assert_that(ids, _distinct_and_among(input_ids), label=f"KeptIds{name}")
            dead = unique["dead_letters"] | f"Dead{name}" >> beam.Map(
                lambda d: (d.error_type, d.raw_file, d.raw_line, d.detail)
            )
            assert_that(dead, equal_to(expected_dead), label=f"CheckDead{name}")


def _distinct_and_among(allowed: list[str]):
    def check(ids: list[str]) -> None:
        if not ids or len(set(ids)) != len(ids) or not set(ids) <= set(allowed):
            raise BeamAssertException(f"batch ids {sorted(ids)} not distinct ids among {sorted(allowed)}")

    return check


# --- The whole path ----------------------------------------------------------------------------------
PRIVATE_HASH = "c0c0c0c0-0000-4000-8000-00000000c0c0"


def test_process_deactivations_one_poison_record_fails_only_itself(kit, sdk_captures):
    """Poison records, an erased site, re-sends and a contact-dropping project share an hour with
    good records of other projects: every record becomes exactly one event or one typed dead letter."""
    plugin_body = sdk_captures["004-v2x-found-better-plugin"]["body"]
    theme_body = sdk_captures["021-theme"]["body"]
    private = Project(
        hash=PRIVATE_HASH,
        name="Private",
        contact_policy="drop",
        mail_integrations=[MailIntegration(provider="mailchimp", list_id="private")],
    )
    registry = {**kit.rules, **registry_rules_of([private])}
    erasures = ErasureRegister(
        ERASURE_KEY,
        site_keys=frozenset({site_key(ERASURE_KEY, kit.plugin_hash, "https://erased.example")}),
        email_keys=frozenset({email_key(ERASURE_KEY, kit.theme_hash, "gone@example.com")}),
    )
    good = kit.envelope(plugin_body, minute=1)
    a_lines = [
        orjson.dumps(good),
        json.dumps({**kit.envelope({}, minute=2), "body": {**plugin_body, "users": {"total": "9" * 5000}}}),
        orjson.dumps(kit.envelope({**plugin_body, "wp": {"version": "1." + "0" * 3000}}, minute=3)),
        json.dumps(
            {**kit.envelope({}, minute=4), "body": {**plugin_body, "extra": {"total_forms": _nested(300)}}}
        ),
        orjson.dumps(kit.envelope({**plugin_body, "url": "https://erased.example/"}, minute=5)),
        orjson.dumps(kit.envelope({**theme_body, "admin_email": "gone@example.com"}, minute=6)),
        orjson.dumps(kit.envelope({**plugin_body, "hash": PRIVATE_HASH, "reason_info": "x"}, minute=7)),
        b'{"event_id": "0190a4f0-0000-7000-8000-000000000009", "body": {"first_name": "Jane", "ip_addr',
    ]
    resent = kit.envelope(plugin_body, minute=5)
    later = kit.envelope(plugin_body, minute=20)
    theme_good = kit.envelope(theme_body, minute=8)
    b_lines = [orjson.dumps(good), orjson.dumps(resent), orjson.dumps(later), orjson.dumps(theme_good)]
    hour_dir = "deactivate/2026/11/28/01"
    a_file = RawFileContent(kit.hour_label, f"{hour_dir}/a.ndjson", b"\n".join(map(_bytes, a_lines)))
    b_file = RawFileContent(kit.hour_label, f"{hour_dir}/b.ndjson", b"\n".join(b_lines))
    arrangements = {
        "TogetherBatchesOf1000": ([RawFileGroup(kit.hour_label, [a_file, b_file])], 1000),
        "ApartBatchesOf1": (
            [RawFileGroup(kit.hour_label, [b_file]), RawFileGroup(kit.hour_label, [a_file])],
            1,
        ),
    }
    a_ids = [orjson.loads(line)["event_id"] for line in a_lines[:7]]
    expected_events = sorted([good["event_id"], a_ids[6], later["event_id"], theme_good["event_id"]])
    expected_dead = [
        ("invalid_field", "a.ndjson", 2, "users.total", a_ids[1], True),
        ("invalid_field", "a.ndjson", 3, "wp.version", a_ids[2], True),
        ("unparseable", "a.ndjson", 4, "nested deeper than 128 levels", None, True),
        ("erased", "a.ndjson", 5, "erased on request", a_ids[4], False),
        ("erased", "a.ndjson", 6, "erased on request", a_ids[5], False),
        ("unparseable", "a.ndjson", 8, "not valid JSON", None, True),
        ("duplicate", "b.ndjson", 1, f"same event_id as {hour_dir}/a.ndjson#1", good["event_id"], False),
        (
            "duplicate",
            "b.ndjson",
            2,
            f"same answer within 10 minutes as {hour_dir}/a.ndjson#1",
            resent["event_id"],
            False,
        ),
    ]
    with kit.pipeline() as p:
        registry_input = beam.pvalue.AsSingleton(p | "Registry" >> beam.Create([registry]))
        erasures_input = beam.pvalue.AsSingleton(p | "Erasures" >> beam.Create([erasures]))
        for name, (groups, per_batch) in arrangements.items():
            processed = (
                p
                | f"Create{name}" >> beam.Create(groups)
                | name
                >> ProcessDeactivations(
                    registry_input, erasures_input, records_per_batch=per_batch, duplicate_window_minutes=10
                )
            )
            events = items_of(processed["events"], f"Events{name}")
            assert_that(
                events | f"EventIds{name}" >> beam.Map(lambda e: e.deactivation["event_id"]),
                equal_to(expected_events),
                label=f"CheckEvents{name}",
            )
            contacts = events | f"Contacts{name}" >> beam.Map(
                lambda e: (e.deactivation["project_hash"], e.contact is None)
            )
            assert_that(
                contacts,
                equal_to(
                    [
                        (kit.plugin_hash, False),
                        (kit.plugin_hash, False),
                        (kit.theme_hash, False),
                        (PRIVATE_HASH, True),
                    ]
                ),
                label=f"CheckContacts{name}",
            )
            mail = items_of(processed["mail_requests"], f"Mail{name}") | f"MailIds{name}" >> beam.Map(
                lambda r: r["event_id"]
            )
            assert_that(
                mail, equal_to(sorted([good["event_id"], later["event_id"]])), label=f"CheckMail{name}"
            )
            dead = processed["dead_letters"] | f"Dead{name}" >> beam.Map(
                lambda d: (
                    d.error_type,
                    d.raw_file.rsplit("/", 1)[1],
                    d.raw_line,
                    d.detail.split(":")[0],
                    d.event_id,
                    d.raw_envelope != "",
                )
            )
            assert_that(dead, equal_to(expected_dead), label=f"CheckDead{name}")


def registry_rules_of(projects):
    return registry_rules({project.hash: project for project in projects})


def _bytes(line) -> bytes:
    return line.encode() if isinstance(line, str) else line
