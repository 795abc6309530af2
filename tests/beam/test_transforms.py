"""Each composite transform under TestPipeline, on good input and on every kind of bad input.

One pipeline per transform: all cases go through it together and assert_that checks both the main
output and the typed dead letters (the FnApiRunner costs seconds to start, a case costs nothing).
"""

from __future__ import annotations

import apache_beam as beam
import orjson
from apache_beam.testing.util import assert_that, equal_to

from beam.transforms import (
    Batch,
    CleanSiteFields,
    ParseEnvelopes,
    RawFileContent,
    RawFileGroup,
    RequestMailSync,
    ValidateProjects,
    ValidateReasons,
)


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
        events = items_of(cleaned.batches, "Items")
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
    from beam.transforms import shape_event

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
