"""Retention removes exactly what is past its limit: the hour before the first kept hour goes, the
first kept hour stays; a document one microsecond older than the cutoff goes, one at it stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deactivation.envelope import make_envelope
from deactivation.mongo import DEACTIVATIONS, MAIL_OUTBOX, NOTIFICATIONS, SITES, connect
from deactivation.raw_store import open_raw_store
from deactivation.schemas import DEACTIVATION_ERRORS
from deactivation.schemas import DEACTIVATIONS as DEACTIVATIONS_TABLE
from deactivation.warehouse import open_warehouse, rows_to_arrow
from flows.retention_flow import retention_markdown
from privacy.retention import apply_retention, first_hour_kept

NOW = datetime(2027, 1, 10, 12, 30, tzinfo=UTC)
LIMITS = {
    "RETENTION_RAW_DAYS": 10,
    "RETENTION_TRACKING_DAYS": 5,
    "RETENTION_REJECTED_DAYS": 2,
    "RETENTION_WAREHOUSE_DAYS": 7,
    "RETENTION_LATEST_STATE_DAYS": 8,
    "RETENTION_OUTBOX_DAYS": 3,
    "RETENTION_NOTIFICATION_DAYS": 4,
}
PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"


def _envelope(route: str, at: datetime) -> dict:
    body = {"hash": PROJECT, "url": f"https://{at:%H%M}.example", "reason_id": "other"}
    return make_envelope(route=route, body=body, content_type="application/json", received_at=at)


def _deactivation_row(event_id: str, hour: datetime) -> dict:
    return {
        "event_id": event_id,
        "raw_hour": hour,
        "received_at": hour + timedelta(minutes=59, seconds=59),
        "project_hash": PROJECT,
        "project_kind": "plugin",
        "site_url": f"https://{event_id}.example",
        "reason_id": "other",
        "reason_label": "Other",
    }


def _error_row(error_id: str, hour: datetime) -> dict:
    return {
        "error_id": error_id,
        "raw_hour": hour,
        "error_type": "unparseable",
        "detail": "not valid JSON",
        "raw_file": "deactivate/x.json",
        "raw_line": 1,
        "raw_envelope": "{",
    }


@pytest.fixture
def limited(settings):
    return settings.model_copy(update=LIMITS)


def _populate(settings):
    """Per store: the last hour (or instant) past the limit, and the first one kept."""
    store = open_raw_store(settings)
    edges = {}
    for prefix, days in (("deactivate", 10), ("track", 5), ("tracking-skipped", 5), ("rejected", 2)):
        kept = first_hour_kept(NOW, days)
        edges[prefix] = (kept - timedelta(hours=1), kept)
        for hour in edges[prefix]:
            for minute in (0, 59):  # the whole hour: its first and last minute
                at = hour + timedelta(minutes=minute, seconds=59)
                if prefix == "rejected":
                    store.write_rejected({"route": "deactivate", "code": "invalid_json"}, at=at)
                else:
                    store.write_envelopes(prefix, [_envelope(prefix, at)])
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables()
    gone, kept = first_hour_kept(NOW, 7) - timedelta(hours=1), first_hour_kept(NOW, 7)
    warehouse.replace_hours(
        [gone, kept],
        {
            DEACTIVATIONS_TABLE.name: rows_to_arrow(
                DEACTIVATIONS_TABLE, [_deactivation_row("old", gone), _deactivation_row("new", kept)]
            ),
            DEACTIVATION_ERRORS.name: rows_to_arrow(
                DEACTIVATION_ERRORS, [_error_row("old", gone), _error_row("new", kept)]
            ),
        },
    )
    client = connect(settings)
    db = client[settings.MONGODB_DB]
    for collection, days, field in (
        (DEACTIVATIONS, 8, "received_at"),
        (SITES, 8, "received_at"),
        (MAIL_OUTBOX, 3, "received_at"),
        (NOTIFICATIONS, 4, "created_at"),
    ):
        cutoff = NOW - timedelta(days=days)
        db[collection].insert_many(
            [{"_id": "old", field: cutoff - timedelta(microseconds=1000)}, {"_id": "new", field: cutoff}]
        )
    client.close()
    return edges


def _state(settings):
    store = open_raw_store(settings)
    raw = {
        prefix: sorted(f.relative_path for f in store.iter_files(prefix))
        for prefix in ("deactivate", "track", "tracking-skipped", "rejected")
    }
    warehouse = open_warehouse(settings)
    rows = {
        "deactivations": sorted(warehouse.query("SELECT event_id FROM deactivations")["event_id"]),
        "deactivation_errors": sorted(
            warehouse.query("SELECT error_id FROM deactivation_errors")["error_id"]
        ),
    }
    client = connect(settings)
    db = client[settings.MONGODB_DB]
    documents = {
        name: sorted(d["_id"] for d in db[name].find())
        for name in (DEACTIVATIONS, SITES, MAIL_OUTBOX, NOTIFICATIONS)
    }
    client.close()
    return raw, rows, documents


def test_retention_removes_exactly_what_is_past_its_limit(limited):
    edges = _populate(limited)
    before = _state(limited)

    dry = apply_retention(limited, now=NOW, dry_run=True)
    assert _state(limited) == before
    summary = apply_retention(limited, now=NOW)

    assert (dry.raw_files, dry.warehouse_rows, dry.mongo_documents) == (
        summary.raw_files,
        summary.warehouse_rows,
        summary.mongo_documents,
    )
    raw, rows, documents = _state(limited)
    for prefix, (_, kept) in edges.items():
        assert summary.raw_hours[prefix] == 1 and summary.raw_files[prefix] == 2, prefix
        assert all(path.startswith(f"{prefix}/{kept:%Y/%m/%d/%H}/") for path in raw[prefix]), prefix
        assert len(raw[prefix]) == 2, prefix
        assert summary.kept_from[f"raw:{prefix}"] == f"{kept:%Y-%m-%dT%H}"
    assert rows == {"deactivations": ["new"], "deactivation_errors": ["new"]}
    assert summary.warehouse_rows == {"deactivations": 1, "sites": 0, "deactivation_errors": 1}
    assert all(ids == ["new"] for ids in documents.values())
    assert all(count == 1 for count in summary.mongo_documents.values())
    # Emptied folders are removed up to the route (locally), so years of empty folders do not pile up.
    store_root = limited.RAW_STORE_URL
    gone_hour = edges["deactivate"][0]
    assert not (Path(store_root) / f"deactivate/{gone_hour:%Y/%m/%d/%H}").exists()

    again = apply_retention(limited, now=NOW)
    assert sum(again.raw_files.values()) == sum(again.warehouse_rows.values()) == 0
    assert sum(again.mongo_documents.values()) == 0
    assert "raw deactivate/" in retention_markdown(summary)
    assert "MongoDB notifications" in retention_markdown(dry)


def test_a_later_run_removes_the_next_hour_and_not_before(limited):
    edges = _populate(limited)
    apply_retention(limited, now=NOW)
    kept = edges["rejected"][1]

    # One microsecond before that hour is wholly past the limit nothing more goes; at it, the hour goes.
    just_before = kept + timedelta(days=2, hours=1) - timedelta(microseconds=1)
    assert apply_retention(limited, now=just_before).raw_files["rejected"] == 0
    assert apply_retention(limited, now=just_before + timedelta(microseconds=1)).raw_files["rejected"] == 2


def test_the_hour_walk_ignores_what_is_no_hour_folder(limited):
    store = open_raw_store(limited)
    store.write_envelopes("deactivate", [_envelope("deactivate", datetime(2026, 3, 4, 5, 6, tzinfo=UTC))])
    store.write_bytes("deactivate/README.txt", b"not an hour")
    store.write_bytes("deactivate/2026/13/01/00/x.json", b"{}")  # no month 13
    store.write_bytes("deactivate/2026/02/30/00/x.json", b"{}")  # no 30 February
    store.write_bytes("deactivate/2026/03/04/notes/x.json", b"{}")

    assert list(store.list_hours("deactivate")) == [datetime(2026, 3, 4, 5, tzinfo=UTC)]
    summary = apply_retention(limited, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert summary.raw_files["deactivate"] == 1
    assert store.read_bytes("deactivate/README.txt") == b"not an hour"
    assert store.read_bytes("deactivate/2026/13/01/00/x.json") == b"{}"


@pytest.mark.slow
def test_retention_on_gcs(limited, gcs_endpoint):
    on_gcs = limited.model_copy(
        update={
            "RAW_STORE_URL": "gs://deactivation-raw/retention-test",
            "STORAGE_EMULATOR_HOST": gcs_endpoint,
        }
    )
    edges = _populate(on_gcs)

    summary = apply_retention(on_gcs, now=NOW)

    raw, _, _ = _state(on_gcs)
    for prefix, (_, kept) in edges.items():
        assert summary.raw_files[prefix] == 2, prefix
        assert len(raw[prefix]) == 2 and all(f"/{kept:%Y/%m/%d/%H}/" in path for path in raw[prefix])


def test_limits_are_settings_with_defaults(settings):
    assert settings.RETENTION_RAW_DAYS == 400 and settings.RETENTION_REJECTED_DAYS == 30
    with pytest.raises(ValueError):
        settings.model_validate({**settings.model_dump(), "RETENTION_RAW_DAYS": 0})
