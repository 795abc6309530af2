"""A seeded synthetic generator of deactivation requests, with its own record of the truth.

The envelopes look exactly like what the collector stores: server-stamped `event_id` (UUIDv7) and
`received_at`, and a body shaped like a decoded SDK form (every value a string, nested
`server[...]`, `wp[...]`, `users[...]`, `plugins[...]`, `extra[...]`). Everything is derived from
the seed, event ids included, so a re-run writes the very same raw files.

`GeneratedEvents.truth` is the generator's own record of every valid deactivation (project, reason,
hour, versions, locale, server, free text). Tests compute expected aggregates from it in plain
Python and compare them with what the pipeline and the SQL produced. A small share of events is
bad on purpose (unknown project, invalid reason id, an uncastable field) so dead letters show up;
they are recorded in `truth.rejected` with the dead-letter type they must get.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from deactivation.dead_letters import DeadLetterType
from deactivation.envelope import format_timestamp, make_envelope
from deactivation.hours import hour_floor
from deactivation.projects import MailIntegration, Project
from deactivation.raw_store import RawStore
from deactivation.reasons import THEME_SWITCH
from deactivation.settings import Settings

DEMO_PROJECTS: list[Project] = [
    Project(
        hash="6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c",
        name="Form Builder Pro",
        kind="plugin",
        custom_reasons={
            "too-expensive": "Too expensive",
            "temporary-debugging": "Temporary, while debugging",
        },
        custom_fields=["pro", "total_forms"],
        mail_integrations=[MailIntegration(provider="mailchimp", list_id="demo-deactivations")],
    ),
    Project(hash="0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d", name="Simple SEO Meta", kind="plugin"),
    Project(hash="3c4d5e6f-7a8b-4c9d-8e0f-a1b2c3d4e5f6", name="Nordic Blocks Theme", kind="theme"),
]

#: Sites each project's events come from, at the least (more when an hour has more events).
MIN_SITES_PER_PROJECT = 400

#: A hash no project is registered under: its events must end as `unknown_project` dead letters.
UNKNOWN_PROJECT_HASH = "deadbeef-0000-4000-8000-000000000000"

#: Share of events that are bad by design, and which kinds (equally likely).
BAD_EVENT_SHARE = 0.03
BAD_KINDS = (
    DeadLetterType.UNKNOWN_PROJECT.value,
    DeadLetterType.INVALID_REASON.value,
    DeadLetterType.INVALID_FIELD.value,
)

#: Share of plugin events sent by the legacy SDK (v1.1.x: `version` instead of `project_version`).
LEGACY_SHARE = 0.1

# Weighted choices: (value, weight).
PROJECT_WEIGHTS = (5, 3, 2)
BUILT_IN_REASON_WEIGHTS = {
    "could-not-understand": 4,
    "found-better-plugin": 12,
    "not-have-that-feature": 10,
    "is-not-working": 9,
    "looking-for-other": 6,
    "did-not-work-as-expected": 8,
    "other": 5,
    "none": 14,
}
CUSTOM_REASON_WEIGHT = 6
#: Each project's versions, oldest first; the newest is released halfway through the generated span.
PROJECT_VERSIONS = {0: ("2.2.0", "2.3.1", "2.4.0"), 1: ("1.8.3", "1.9.0", "1.10.0"), 2: ("1.3", "1.4", "1.5")}
WP_VERSIONS = (("6.6.1", 20), ("6.5.3", 30), ("6.5.5", 10), ("6.4.3", 15), ("6.3", 8), ("5.9.10", 4))
PHP_VERSIONS = (("8.3.7", 12), ("8.2.36", 30), ("8.1.29", 25), ("8.0.30", 10), ("7.4.33", 15))
MYSQL_VERSIONS = (("8.0.35", 5), ("5.7.44", 3), ("10.6.16", 2))
LOCALES = (("en_US", 45), ("de_DE", 12), ("fr_FR", 8), ("es_ES", 8), ("pt_BR", 7), ("ja", 5), ("nb_NO", 3))
SERVER_SOFTWARE = (
    ("nginx/1.24.0", 30),
    ("Apache/2.4.57", 35),
    ("LiteSpeed", 15),
    ("openresty/1.21.4.1", 5),
    ("Microsoft-IIS/10.0", 2),
    (None, 8),  # server[software] is optional in the SDK
)
FIRST_NAMES = ("Jane", "Ola", "Amir", "Mei", "Lucas", "Fatima", "Kari", "Diego")
LAST_NAMES = ("Doe", "Nordmann", "Haddad", "Chen", "Silva", "Khan", "Berg", "Lopez")

#: Free-text answers per reason; "" is an empty answer. Some carry personal data (an email, a URL,
#: numbers) that the top-terms summary must not show.
ANSWERS: dict[str, tuple[str, ...]] = {
    "found-better-plugin": (
        "",
        "Switched to WPForms, it is simpler",
        "Found a cheaper alternative with better support",
        "The other plugin has better templates",
    ),
    "not-have-that-feature": (
        "",
        "Missing conditional logic for payments",
        "No export to spreadsheet, please add it",
        "Need multi step forms and conditional logic",
    ),
    "is-not-working": (
        "",
        "Broke my checkout page after update 2.3.1",
        "Fatal error on PHP 8.3, contact me at jane.doe@example.com",
        "The settings page stays blank",
    ),
    "did-not-work-as-expected": (
        "",
        "Emails were not sent to customers",
        "Layout broken on mobile, see https://shop.example.com/contact",
    ),
    "could-not-understand": ("", "Too complicated settings, confusing interface"),
    "looking-for-other": ("", "Wanted a booking calendar instead"),
    "other": ("", "Temporary deactivation while testing", "Client project finished"),
    "none": ("",),
    "too-expensive": ("", "Pro license is too expensive for a small shop"),
    "temporary-debugging": ("", "Debugging a conflict with the theme, will be back"),
}
GENERIC_ANSWERS = ("", "Not what we needed")


@dataclass(frozen=True)
class TruthEvent:
    """One valid deactivation as the generator made it (what the warehouse must end up holding)."""

    event_id: str
    project_hash: str
    received_at: datetime
    reason_id: str
    reason_label: str
    reason_info: str
    project_version: str
    wp_version: str
    php_version: str
    locale: str
    server_software: str | None
    site_url: str

    @property
    def hour(self) -> datetime:
        return hour_floor(self.received_at)

    @property
    def day(self) -> date:
        return self.received_at.date()


@dataclass
class Truth:
    """The generator's own record: every valid deactivation, and the bad events by dead-letter type.

    A bad event is rejected whole (no deactivation row, no site row), whatever its kind.
    """

    events: list[TruthEvent] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    #: The same bad events by (project hash as the pipeline reads it, UTC day, dead-letter type).
    dead_letters: Counter[tuple[str, date, str]] = field(default_factory=Counter)


@dataclass
class GeneratedEvents:
    envelopes: list[dict[str, Any]]
    truth: Truth

    def bodies_for_hour(self, hour: datetime) -> list[dict[str, Any]]:
        """The request bodies received during `hour` (for posting them through the collector)."""
        prefix = format_timestamp(hour_floor(hour))[:13]
        return [e["body"] for e in self.envelopes if e["received_at"].startswith(prefix)]


def generate_events(
    seed: int,
    start_hour: datetime,
    hours: int,
    events_per_hour: int,
    projects: Sequence[Project] = DEMO_PROJECTS,
    duplicate_window_minutes: int = Settings.model_fields["DUPLICATE_WINDOW_MINUTES"].default,
    sites_per_project: int | None = None,
) -> GeneratedEvents:
    """`events_per_hour` events in each of `hours` hours from `start_hour` (UTC), fully seeded.

    Each project draws its sites from `sites_per_project` (default: as many as an hour has events,
    at least MIN_SITES_PER_PROJECT); a caller generating one large hour in chunks passes the whole
    hour's size, so the chunks do not share a smaller pool.

    With hundreds of sites per project, the same site sometimes gives the same answer twice within
    `duplicate_window_minutes` of the same hour: the pipeline counts that once (the rest are
    `duplicate` dead letters), and so does the truth record.
    """
    if hours < 1 or events_per_hour < 1:
        raise ValueError("hours and events_per_hour must be at least 1")
    if not projects:
        raise ValueError("at least one project is needed")
    rng = random.Random(seed)
    # Sites repeat within a project (latest state per site is less than history), but a large hour
    # comes from as many sites as it has events, as real traffic does, not mostly from re-sends.
    sites = max(MIN_SITES_PER_PROJECT, sites_per_project or events_per_hour)
    first_hour = hour_floor(start_hour)
    weights = [PROJECT_WEIGHTS[i] if i < len(PROJECT_WEIGHTS) else 1 for i in range(len(projects))]
    envelopes: list[dict[str, Any]] = []
    truth = Truth()
    resend_window = timedelta(minutes=duplicate_window_minutes)
    last_kept_answer: dict[tuple[str, ...], datetime] = {}
    for hour_index in range(hours):
        hour = first_hour + timedelta(hours=hour_index)
        newest_released = hour_index >= hours // 2
        offsets = sorted(rng.randrange(3_600_000_000) for _ in range(events_per_hour))
        for offset in offsets:
            received_at = hour + timedelta(microseconds=offset)
            project_index = rng.choices(range(len(projects)), weights)[0]
            maker = _EventMaker(rng, projects[project_index], project_index, newest_released, sites)
            body, truth_event = maker.valid_event(received_at)
            bad_kind = _bad_kind(rng, projects[project_index])
            if bad_kind:
                _spoil(body, bad_kind)
                truth.rejected[bad_kind] += 1
                truth.dead_letters[(body["hash"], received_at.date(), bad_kind)] += 1
            envelopes.append(_envelope(rng, body, received_at))
            if bad_kind is None:
                answer = (
                    f"{hour:%Y-%m-%dT%H}",
                    truth_event["project_hash"],
                    truth_event["site_url"],
                    truth_event["reason_id"],
                    truth_event["reason_info"] or "",
                )
                previous = last_kept_answer.get(answer)
                if duplicate_window_minutes > 0 and previous and received_at - previous <= resend_window:
                    truth.rejected[DeadLetterType.DUPLICATE.value] += 1
                    duplicate = (
                        truth_event["project_hash"],
                        received_at.date(),
                        DeadLetterType.DUPLICATE.value,
                    )
                    truth.dead_letters[duplicate] += 1
                    continue
                last_kept_answer[answer] = received_at
                truth.events.append(
                    TruthEvent(event_id=envelopes[-1]["event_id"], received_at=received_at, **truth_event)
                )
    return GeneratedEvents(envelopes, truth)


def write_to_raw_store(
    store: RawStore, envelopes: Iterable[dict[str, Any]], batch_size: int = 256
) -> list[str]:
    """Write envelopes as the collector would (group commits per hour); returns the files written.

    File names come from the deterministic event ids, so writing the same events again rewrites
    the same files instead of adding duplicates.
    """
    by_hour: dict[str, list[dict[str, Any]]] = {}
    for envelope in envelopes:
        by_hour.setdefault(envelope["received_at"][:13], []).append(envelope)
    written: list[str] = []
    for hour_envelopes in by_hour.values():
        for start in range(0, len(hour_envelopes), batch_size):
            written += store.write_envelopes("deactivate", hour_envelopes[start : start + batch_size])
    return written


def deterministic_uuid7(received_at: datetime, random_bits: int) -> str:
    """A UUIDv7 from a timestamp and 74 given random bits (RFC 9562 layout)."""
    unix_ms = int(received_at.timestamp() * 1000)
    rand_a = (random_bits >> 62) & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def _envelope(rng: random.Random, body: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    site_fingerprint = hashlib.md5(body.get("url", "").encode()).hexdigest()
    return make_envelope(
        route="deactivate",
        body=body,
        content_type="application/x-www-form-urlencoded",
        user_agent=f"Appsero/{site_fingerprint};",
        remote_addr=f"198.51.100.{rng.randrange(1, 255)}",
        received_at=received_at,
        event_id=deterministic_uuid7(received_at, rng.getrandbits(74)),
    )


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


class _EventMaker:
    """Draws one SDK body for a project; keeps the draw order fixed so seeds stay reproducible."""

    def __init__(
        self, rng: random.Random, project: Project, index: int, newest_released: bool, sites: int
    ) -> None:
        self.rng = rng
        self.project = project
        self.index = index
        self.newest_released = newest_released
        self.sites = sites

    def valid_event(self, received_at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng
        site_number = rng.randrange(self.sites)
        domain = f"site-{self.index}-{site_number:03d}.example.com"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        version = self._project_version()
        wp_version = _weighted(rng, WP_VERSIONS)
        php_version = _weighted(rng, PHP_VERSIONS)
        locale = _weighted(rng, LOCALES)
        software = _weighted(rng, SERVER_SOFTWARE)
        legacy = self.project.kind == "plugin" and rng.random() < LEGACY_SHARE
        server = {
            "software": software,
            "php_version": php_version,
            "mysql_version": _weighted(rng, MYSQL_VERSIONS),
            "php_max_upload_size": rng.choice(("2 MB", "64 MB", "128 MB")),
            "php_default_timezone": "UTC",
            "php_soap": rng.choice(("Yes", "No")),
            "php_fsockopen": "Yes",
            "php_curl": rng.choice(("Yes", "Yes", "No")),
        }
        wp = {
            "memory_limit": rng.choice(("40M", "128M", "256M")),
            "debug_mode": rng.choice(("No", "No", "Yes")),
            "locale": locale,
            "version": wp_version,
            "multisite": "No",
        }
        body: dict[str, Any] = {
            "hash": self.project.hash,
            "url": f"https://{domain}",
            "site": f"Site {site_number}",
            "admin_email": f"admin@{domain}",
            "first_name": first,
            "last_name": last,
            "server": {k: v for k, v in server.items() if v is not None},
            "wp": wp,
            "ip_address": f"203.0.113.{site_number % 250 + 1}",
        }
        if legacy:
            body |= {"user_email": f"{first.lower()}@{domain}", "version": version, "client": "1.1.11"}
        else:
            body |= self._v2_fields(wp, version)
        reason_id, reason_info = self._reason()
        if reason_id != THEME_SWITCH:
            body |= {"reason_id": reason_id, "reason_info": reason_info}
        truth = {
            "project_hash": self.project.hash,
            "reason_id": reason_id,
            "reason_label": self.project.reasons[reason_id],
            "reason_info": reason_info,
            "project_version": version,
            "wp_version": wp_version,
            "php_version": php_version,
            "locale": locale,
            "server_software": software,
            "site_url": body["url"],
        }
        return body, truth

    def _v2_fields(self, wp: dict[str, str], version: str) -> dict[str, Any]:
        rng = self.rng
        wp |= {
            "theme_slug": "twentytwentyfour",
            "theme_name": "Twenty Twenty-Four",
            "theme_version": "1.2",
            "theme_uri": "https://wordpress.org/themes/twentytwentyfour/",
            "theme_author": "the WordPress team",
        }
        customers = rng.randrange(0, 40)
        users = {"total": str(1 + customers), "administrator": "1"}
        if customers:
            users["customer"] = str(customers)
        fields: dict[str, Any] = {
            "users": users,
            "active_plugins": str(rng.randrange(1, 40)),
            "inactive_plugins": str(rng.randrange(0, 10)),
            "project_version": version,
            "tracking_skipped": "0",
            "is_local": "1" if rng.random() < 0.05 else "0",
            "client": rng.choice(("2.0.4", "2.0.5")),
        }
        if rng.random() < 0.4:
            fields["plugins"] = {"woocommerce": {"name": "WooCommerce", "version": "8.9.1"}}
        if self.project.custom_fields:
            fields["extra"] = {
                "total_forms": str(rng.randrange(0, 30)),
                "pro": rng.choice(("yes", "no")),
                "license_key": "not-whitelisted-and-dropped",
            }
        return fields

    def _project_version(self) -> str:
        versions = PROJECT_VERSIONS.get(self.index, ("1.0.0",))
        if not self.newest_released:
            versions = versions[:-1] or versions
        # Later versions are more common: weights 1, 2, 3, ...
        return self.rng.choices(versions, range(1, len(versions) + 1))[0]

    def _reason(self) -> tuple[str, str]:
        if self.project.kind == "theme":
            return THEME_SWITCH, ""
        weights = dict(BUILT_IN_REASON_WEIGHTS)
        weights |= dict.fromkeys(self.project.custom_reasons, CUSTOM_REASON_WEIGHT)
        reason_id = self.rng.choices(list(weights), list(weights.values()))[0]
        answer = self.rng.choice(ANSWERS.get(reason_id, GENERIC_ANSWERS))
        return reason_id, answer


def _bad_kind(rng: random.Random, project: Project) -> str | None:
    if rng.random() >= BAD_EVENT_SHARE:
        return None
    kinds = (
        BAD_KINDS
        if project.kind == "plugin"
        else tuple(k for k in BAD_KINDS if k != DeadLetterType.INVALID_REASON)
    )
    return rng.choice(kinds)


def _spoil(body: dict[str, Any], kind: str) -> None:
    """Make a valid body bad in the way `kind` names (its expected dead-letter type)."""
    if kind == DeadLetterType.UNKNOWN_PROJECT:
        body["hash"] = UNKNOWN_PROJECT_HASH
    elif kind == DeadLetterType.INVALID_REASON:
        body["reason_id"] = "made-up-reason"
    elif kind == DeadLetterType.INVALID_FIELD:
        body["wp"]["memory_limit"] = "lots"
    else:
        raise ValueError(f"unknown bad event kind {kind!r}")
