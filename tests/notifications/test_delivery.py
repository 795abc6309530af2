"""Delivery end to end through a real SMTP server: what is sent, to whom, and never twice."""

from __future__ import annotations

import itertools
import socketserver
import threading
from datetime import timedelta

import pytest
from aiosmtpd.handlers import Sink

from deactivation.erasure import ERASURES, erasure_key, site_key
from deactivation.mongo import NOTIFICATIONS
from deactivation.projects import AutoReply, NotificationSettings, Project, upsert_project
from deactivation.suppression import is_suppressed, suppress
from notifications import outbox
from notifications.events import MAX_PER_PROJECT_HOUR
from notifications.runner import run_once
from notifications.sink import MailSink

FORWARDING = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
QUIET = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
TEAM = ["team@example.org", "lead@example.org"]
REPLY = AutoReply(
    subject="Sorry {{ project_name }} did not work for you",
    body="Hi {{ first_name }},\n\nWe saw: {{ reason_info }}\n\nReply and we will help.",
)


def _projects(db):
    upsert_project(
        db,
        Project(
            hash=FORWARDING,
            name="Form Builder Pro",
            notifications=NotificationSettings(forward_to=TEAM, auto_replies={"is-not-working": REPLY}),
        ),
    )
    upsert_project(db, Project(hash=QUIET, name="Simple SEO Meta"))


def _events(helpers, hour, count=6, project=FORWARDING, prefix="e"):
    reasons = [("is-not-working", "Not working"), ("found-better-plugin", "Found a better plugin")]
    return [
        helpers.deactivation_row(
            f"{prefix}{i:04d}-{project[:4]}",
            project,
            hour + timedelta(minutes=i),
            site_url=f"https://site-{prefix}{i}.example.com",
            reason_id=reasons[i % 2][0],
            reason_label=reasons[i % 2][1],
            reason_info=f"answer {i}",
        )
        for i in range(count)
    ]


def test_forwards_auto_replies_and_a_second_run_sends_nothing_new(
    notify_settings, mongo_db, mail_sink, helpers
):
    _projects(mongo_db)
    hour = helpers.utc(2026, 11, 28, 10)
    forwarding = _events(helpers, hour, count=6)
    quiet = _events(helpers, hour, count=4, project=QUIET, prefix="q")
    no_contact_site = forwarding[2]["site_url"]  # is-not-working, but the SDK sent no e-mail
    suppressed_site = forwarding[4]["site_url"]  # is-not-working, the admin unsubscribed before
    helpers.load_rows(
        notify_settings,
        mongo_db,
        forwarding + quiet,
        loaded_at=hour + timedelta(hours=1, minutes=5),
        contacts={no_contact_site: None},
    )
    suppress(mongo_db, notify_settings, FORWARDING, "admin@site-e4.example.com", "unsubscribed")

    summary = run_once(notify_settings, now=hour + timedelta(hours=1, minutes=10)).as_json()

    messages = helpers.by_kind(helpers.sink_messages(mail_sink))
    # One forward per valid deactivation of the forwarding project; none for the other project.
    assert summary["sent"]["forward"] == len(forwarding) == len(messages["forward"])
    forwarded_sites = sorted(
        m.get_body(("plain",)).get_content().split("Site:")[1].split()[0] for m in messages["forward"]
    )
    assert forwarded_sites == sorted(row["site_url"] for row in forwarding)
    for message in messages["forward"]:
        assert sorted(a.strip() for a in message["To"].split(",")) == sorted(TEAM)
    # Auto-replies: configured reason only, with an admin e-mail, never to a suppressed address.
    expected_replies = {
        f"admin@{row['site_url'].split('//')[1]}"
        for row in forwarding
        if row["reason_id"] == "is-not-working" and row["site_url"] not in (no_contact_site, suppressed_site)
    }
    assert {m["To"] for m in messages["auto_reply"]} == expected_replies
    assert summary["sent"]["auto_reply"] == len(expected_replies) == 1
    assert summary["skipped_by_reason"]["no_admin_email"] == 1
    assert summary["skipped_by_reason"]["suppressed"] == 1

    again = run_once(notify_settings, now=hour + timedelta(hours=1, minutes=15)).as_json()
    assert sum(again["sent"].values()) == 0
    assert len(helpers.sink_messages(mail_sink)) == len(messages["forward"]) + len(messages["auto_reply"])


def test_forward_links_to_the_site_in_the_dashboard_and_auto_reply_can_be_unsubscribed(
    notify_settings, mongo_db, mail_sink, helpers
):
    _projects(mongo_db)
    hour = helpers.utc(2026, 11, 28, 10)
    rows = _events(helpers, hour, count=1)
    helpers.load_rows(notify_settings, mongo_db, rows, loaded_at=hour + timedelta(hours=1))
    run_once(notify_settings, now=hour + timedelta(hours=1, minutes=5))
    messages = helpers.by_kind(helpers.sink_messages(mail_sink))

    forward_text = messages["forward"][0].get_body(("plain",)).get_content()
    assert (
        f"{helpers.dashboard}/projects/{FORWARDING}/sites/https%3A%2F%2Fsite-e0.example.com" in forward_text
    )
    reply = messages["auto_reply"][0]
    assert reply["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = reply["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{helpers.dashboard}/unsubscribe/")
    assert link in reply.get_body(("plain",)).get_content()
    assert link in reply.get_body(("html",)).get_content()
    assert "admin@" not in link  # the token names a keyed hash, not the address


def test_reason_info_is_escaped_in_html_and_a_plain_text_part_is_always_there(
    notify_settings, mongo_db, mail_sink, helpers
):
    _projects(mongo_db)
    hour = helpers.utc(2026, 11, 28, 10)
    hostile = '<script>alert(1)</script><img src=x onerror="steal()"> & "quotes"'
    row = helpers.deactivation_row("x1", FORWARDING, hour, reason_info=hostile)
    helpers.load_rows(notify_settings, mongo_db, [row], loaded_at=hour + timedelta(hours=1))
    run_once(notify_settings, now=hour + timedelta(hours=1, minutes=5))

    messages = helpers.by_kind(helpers.sink_messages(mail_sink))
    for message in messages["forward"] + messages["auto_reply"]:
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert "<script>" not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert hostile in text  # the plain part shows exactly what they wrote
    assert len(messages["forward"]) == 1 and len(messages["auto_reply"]) == 1


def _queue(mongo_db, helpers, count, now):
    documents = [
        {
            "_id": f"forward:bulk-{i:05d}",
            "kind": "forward",
            "project_hash": FORWARDING,
            "event_id": f"bulk-{i:05d}",
            "payload": {
                "site_url": f"https://bulk-{i}.example.com",
                "received_at": now.isoformat(),
                "reason_id": "other",
                "reason_label": "Other",
                "reason_info": "",
                "project_version": "2.4.0",
                "wp_version": "6.5.3",
                "php_version": "8.2.36",
            },
        }
        for i in range(count)
    ]
    outbox.ensure_indexes(mongo_db)
    return outbox.enqueue(mongo_db[NOTIFICATIONS], documents, now)


def test_two_runners_at_once_send_each_notification_once(notify_settings, mongo_db, mail_sink, helpers):
    _projects(mongo_db)
    now = helpers.utc(2026, 11, 28, 12)
    assert _queue(mongo_db, helpers, 120, now) == 120
    summaries, errors = [], []
    both_sending = threading.Barrier(2, timeout=60)

    def runner():
        first = []

        lock = threading.Lock()

        def meet_the_other(document):  # both runners hold a claim at the same time
            with lock:
                is_first = not first
                first.append(document["_id"])
            if is_first:
                both_sending.wait()

        try:
            summary = run_once(notify_settings, now=now, plan=False, batch_size=7, after_send=meet_the_other)
            summaries.append(summary.as_json())
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    ids = [m["Message-ID"] for m in helpers.sink_messages(mail_sink)]
    assert len(ids) == len(set(ids)) == 120
    assert sum(s["sent"]["forward"] for s in summaries) == 120
    assert all(s["sent"]["forward"] > 0 for s in summaries), "both runners took part"
    assert mongo_db[NOTIFICATIONS].count_documents({"status": "sent"}) == 120


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def test_a_crash_between_send_and_record_is_not_resent(notify_settings, mongo_db, mail_sink, helpers):
    _projects(mongo_db)
    now = helpers.utc(2026, 11, 28, 12)
    _queue(mongo_db, helpers, 10, now)
    sent_before_crash = []

    lock = threading.Lock()

    def crash_on_third(document):
        with lock:
            sent_before_crash.append(document["_id"])
            crash = len(sent_before_crash) == 3
        if crash:
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        run_once(notify_settings, now=now, plan=False, batch_size=5, after_send=crash_on_third)
    # Parallel deliveries of the same chunk may have gone out too before the crash stopped the pass.
    out_before_crash = len(helpers.sink_messages(mail_sink))
    assert 3 <= out_before_crash <= 5
    # The crashed chunk (the batch of 5) was marked `sending` before any went out, recorded never.
    in_doubt = {d["_id"] for d in mongo_db[NOTIFICATIONS].find({"status": "sending"})}
    assert set(sent_before_crash) <= in_doubt and len(in_doubt) == 5

    # While the lease runs, a second runner leaves the crashed batch alone and sends the rest.
    during = run_once(notify_settings, now=now + timedelta(minutes=1), plan=False).as_json()
    assert during["sent"]["forward"] == 5
    # After it expires, the crashed batch goes to review, not out again.
    after = run_once(notify_settings, now=now + outbox.LEASE + timedelta(minutes=1), plan=False).as_json()
    assert after["review"] == 5 and sum(after["sent"].values()) == 0
    assert {d["_id"] for d in mongo_db[NOTIFICATIONS].find({"status": "review"})} == in_doubt
    ids = [m["Message-ID"] for m in helpers.sink_messages(mail_sink)]
    assert len(ids) == len(set(ids)) == out_before_crash + 5
    later = run_once(notify_settings, now=now + timedelta(hours=2), plan=False).as_json()
    assert sum(later["sent"].values()) == 0


def test_a_crash_before_sending_puts_the_claims_back_in_the_queue(
    notify_settings, mongo_db, mail_sink, helpers
):
    _projects(mongo_db)
    now = helpers.utc(2026, 11, 28, 12)
    _queue(mongo_db, helpers, 4, now)
    lease = outbox.Lease.new(now)
    claimed = outbox.claim_batch(mongo_db[NOTIFICATIONS], lease, 4)  # then the runner dies
    assert len(claimed) == 4
    assert sum(run_once(notify_settings, now=now, plan=False).as_json()["sent"].values()) == 0
    after = run_once(notify_settings, now=now + outbox.LEASE + timedelta(minutes=1), plan=False).as_json()
    assert after["sent"]["forward"] == 4 and after["review"] == 0
    assert outbox.record(mongo_db[NOTIFICATIONS], [outbox.sent(claimed[0])], lease) == 0  # too late


def test_transient_failures_back_off_then_dead_and_an_operator_can_retry(notify_settings, mongo_db, helpers):
    _projects(mongo_db)
    now = helpers.utc(2026, 11, 28, 12)
    _queue(mongo_db, helpers, 1, now)
    nowhere = notify_settings.model_copy(update={"SMTP_URL": "smtp://127.0.0.1:9"})  # nothing listens
    attempt_times, at = [], now
    for _ in range(outbox.MAX_ATTEMPTS):
        summary = run_once(nowhere, now=at, plan=False).as_json()
        document = mongo_db[NOTIFICATIONS].find_one({"_id": "forward:bulk-00000"})
        attempt_times.append(at)
        if document["status"] == "dead":
            break
        assert summary["failed"] == 1 and document["status"] == "failed"
        early = run_once(
            nowhere, now=document["next_attempt_at"] - timedelta(seconds=1), plan=False
        ).as_json()
        assert early["failed"] == 0, "not retried before its back-off"
        at = document["next_attempt_at"]
    assert document["status"] == "dead" and document["attempts"] == outbox.MAX_ATTEMPTS
    assert "cannot connect" in document["last_error"]
    gaps = [b - a for a, b in itertools.pairwise(attempt_times)]
    assert gaps == [outbox.backoff(n) for n in range(1, outbox.MAX_ATTEMPTS)]
    assert gaps[1] == 2 * gaps[0]

    outbox.retry(mongo_db[NOTIFICATIONS], "forward:bulk-00000", at)
    assert run_once(notify_settings, now=at, plan=False).as_json()["sent"]["forward"] == 1
    with pytest.raises(outbox.OutboxError, match="is sent"):
        outbox.retry(mongo_db[NOTIFICATIONS], "forward:bulk-00000", at)


def test_a_hard_bounce_suppresses_the_admin(notify_settings, mongo_db, helpers, tmp_path):
    class RefuseRecipients(Sink):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 mailbox unavailable"

    _projects(mongo_db)
    hour = helpers.utc(2026, 11, 28, 10)
    rows = _events(helpers, hour, count=1)
    helpers.load_rows(notify_settings, mongo_db, rows, loaded_at=hour + timedelta(hours=1))
    with MailSink(tmp_path / "refusing", handler=RefuseRecipients()) as refusing:
        summary = run_once(
            notify_settings.model_copy(update={"SMTP_URL": refusing.url}), now=hour + timedelta(hours=1)
        ).as_json()
    assert summary["dead"] == 2  # the forward and the auto-reply
    assert is_suppressed(mongo_db, notify_settings, FORWARDING, "admin@site-e0.example.com")
    assert not is_suppressed(mongo_db, notify_settings, FORWARDING, "team@example.org")


class _DropsAfterData(socketserver.StreamRequestHandler):
    """A minimal SMTP server that takes the whole message, then hangs up without answering it."""

    def handle(self):
        self.wfile.write(b"220 ready\r\n")
        while line := self.rfile.readline():
            command = line[:4].upper()
            if command in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 ok\r\n")
            elif command == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                while self.rfile.readline() not in (b".\r\n", b""):
                    pass
                self.server.handed_over += 1
                return  # connection closed: the sender cannot know whether the message was taken
            else:
                self.wfile.write(b"250 ok\r\n")


def test_a_connection_lost_after_handing_over_goes_to_review_not_out_again(
    notify_settings, mongo_db, helpers
):
    _projects(mongo_db)
    now = helpers.utc(2026, 11, 28, 12)
    _queue(mongo_db, helpers, 1, now)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _DropsAfterData)
    server.handed_over = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dropping = notify_settings.model_copy(
            update={"SMTP_URL": f"smtp://127.0.0.1:{server.server_address[1]}"}
        )
        first = run_once(dropping, now=now, plan=False).as_json()
        again = run_once(dropping, now=now + timedelta(hours=1), plan=False).as_json()
    finally:
        server.shutdown()
        server.server_close()
    assert first["review"] == 1 and first["failed"] == 0
    assert sum(again["sent"].values()) == 0 and server.handed_over == 1
    document = mongo_db[NOTIFICATIONS].find_one()
    assert document["status"] == "review" and "handed over" in document["last_error"]


def test_an_auto_reply_to_a_site_erased_after_planning_is_not_sent(
    notify_settings, mongo_db, mail_sink, helpers
):
    _projects(mongo_db)
    hour = helpers.utc(2026, 11, 28, 10)
    rows = _events(helpers, hour, count=1)
    helpers.load_rows(notify_settings, mongo_db, rows, loaded_at=hour + timedelta(hours=1))
    key = site_key(erasure_key(notify_settings), FORWARDING, rows[0]["site_url"])
    mongo_db[ERASURES].insert_one({"_id": key, "kind": "site"})
    summary = run_once(notify_settings, now=hour + timedelta(hours=1, minutes=5)).as_json()
    assert summary["sent"]["auto_reply"] == 0 and summary["skipped_by_reason"]["erased"] == 1
    assert helpers.by_kind(helpers.sink_messages(mail_sink))["auto_reply"] == []


def test_a_flood_of_forged_deactivations_is_capped_per_hour(notify_settings, mongo_db, mail_sink, helpers):
    _projects(mongo_db)
    hour = helpers.utc(2026, 11, 28, 10)
    flood = 80  # every one "is-not-working" with its own admin address
    rows = [
        helpers.deactivation_row(
            f"f{i:03d}", FORWARDING, hour + timedelta(seconds=i), site_url=f"https://f{i}.example"
        )
        for i in range(flood)
    ]
    helpers.load_rows(notify_settings, mongo_db, rows, loaded_at=hour + timedelta(hours=1))
    summary = run_once(notify_settings, now=hour + timedelta(hours=1, minutes=5)).as_json()
    assert summary["sent"]["auto_reply"] == MAX_PER_PROJECT_HOUR["auto_reply"] < flood
    assert summary["sent"]["forward"] == flood <= MAX_PER_PROJECT_HOUR["forward"]
    assert summary["planned"]["capped"] == flood - MAX_PER_PROJECT_HOUR["auto_reply"]
