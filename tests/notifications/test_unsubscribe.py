"""/unsubscribe/<token>: GET only asks, POST (RFC 8058 one-click, no CSRF token, no login) unsubscribes."""

from __future__ import annotations

import pytest

from deactivation.suppression import SUPPRESSIONS, is_suppressed, unsubscribe_token

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
ADDRESS = "admin@site.example.com"

dashboard_app = pytest.importorskip("dashboard_app", reason="the dashboard app (issue 13) is not importable")


@pytest.fixture
def client(settings, mongo_db):
    app = dashboard_app.create_app(settings)
    app.config["TESTING"] = True
    return app.test_client()


def test_get_asks_and_post_one_click_unsubscribes(client, settings, mongo_db):
    token = unsubscribe_token(settings, PROJECT, ADDRESS)

    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and b'<form method="post">' in page.data
    assert not is_suppressed(mongo_db, settings, PROJECT, ADDRESS), "a link scanner's GET changes nothing"

    done = client.post(
        f"/unsubscribe/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert done.status_code == 200 and b"Unsubscribed" in done.data
    assert is_suppressed(mongo_db, settings, PROJECT, ADDRESS)
    assert client.post(f"/unsubscribe/{token}").status_code == 200  # again: still one entry
    assert mongo_db[SUPPRESSIONS].count_documents({}) == 1


def test_a_forged_token_changes_nothing(client, settings, mongo_db):
    token = unsubscribe_token(settings, PROJECT, ADDRESS)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/unsubscribe/{forged}").status_code == 404
    assert client.post(f"/unsubscribe/{forged}").status_code == 404
    assert client.post("/unsubscribe/" + "x" * 5000).status_code == 404
    assert mongo_db[SUPPRESSIONS].count_documents({}) == 0
