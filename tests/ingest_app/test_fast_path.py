"""The async front answers exactly what the Flask view would, and hands it everything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from deactivation.raw_store import RawStoreError
from deactivation.settings import Settings
from ingest_app import create_app
from ingest_app.fast_path import SDK_PATH, SdkFront

from .conftest import call_asgi, stored_files
from .test_bad_requests import BAD_REQUESTS, request_body
from .test_collect import CAPTURES

PATHS = [
    "/deactivate",
    "/track",
    "/tracking-skipped",
    "/collector/v1/deactivate",
    "/deactivate/deactivate",
    "/a.b/c-d/tracking-skipped",
    "/x/track",
    "/deactivate/",
    "//deactivate",
    "/a//deactivate",
    "/a/./deactivate",
    "/ /track",
    "/a/deactivate/",
    "/deactivatex",
    "/xdeactivate",
    "/tracking",
    "/healthz",
    "/",
    "",
]


def blueprint_route(app, path: str) -> str | None:
    """The SDK route Flask's URL map sends a POST to, or None (no match, or a redirect)."""
    try:
        endpoint, values = app.url_map.bind("collector.test").match(path or "/", method="POST")
    except (RequestRedirect, HTTPException):
        return None
    return values["route"] if endpoint.startswith("collect.") else None


@pytest.mark.parametrize("path", PATHS)
def test_the_fast_path_takes_exactly_the_paths_the_blueprint_routes(app, path):
    match = SDK_PATH.fullmatch(path)
    assert (match.group(1) if match else None) == blueprint_route(app, path)


class CountingApp:
    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.wsgi_app(environ, start_response)


def test_accepted_requests_skip_flask_and_every_other_request_reaches_it(app, sdk_captures):
    front = SdkFront(app)
    flask_app = front.flask.app = CountingApp(front.flask.app)
    capture = sdk_captures["004-v2x-found-better-plugin"]
    form = capture["body_encoded"].encode()

    assert call_asgi(front, "POST", "/deactivate", form, capture["headers"])[0] == 202
    json_body = json.dumps(capture["body"]).encode()
    assert call_asgi(front, "POST", "/base/track", json_body, {"Content-Type": "application/json"})[0] == 202
    assert flask_app.calls == 0

    bad_hash = form.replace(b"hash=", b"hash=x", 1)
    others = [
        call_asgi(front, "GET", "/deactivate"),
        call_asgi(front, "GET", "/healthz"),
        call_asgi(front, "POST", "/deactivate", bad_hash, capture["headers"]),
        call_asgi(front, "POST", "/deactivate", b"", {"Content-Type": "application/json"}),
        call_asgi(front, "POST", "/deactivate", form, {"Content-Type": "text/plain"}),
        call_asgi(front, "POST", "/deactivate/", form, capture["headers"]),
    ]
    assert [status for status, _, _ in others] == [405, 200, 400, 400, 415, 404]
    assert flask_app.calls == len(others)


def _cases():
    for path in CAPTURES:
        capture = json.loads(path.read_text())
        form = capture["body_encoded"].encode()
        yield pytest.param(capture["route"], "POST", form, capture["headers"], id=f"{path.stem}-form")
        body = json.dumps(capture["body"]).encode()
        json_headers = {"Content-Type": "application/json"}
        yield pytest.param(capture["route"], "POST", body, json_headers, id=f"{path.stem}-json")
    for path in BAD_REQUESTS:
        case = json.loads(path.read_text())
        headers = {"Content-Type": case["content_type"]} if case["content_type"] else {}
        yield pytest.param(case["route"], case["method"], request_body(case), headers, id=path.stem)


def _without_server_stamps(document: dict) -> dict:
    return {key: value for key, value in document.items() if key not in {"event_id", "received_at"}}


def _stored(root: Path) -> dict[str, list[dict]]:
    stored = {}
    for prefix in ("deactivate", "rejected"):
        records = [
            json.loads(line) for f in stored_files(root, prefix) for line in f.read_text().splitlines()
        ]
        drop = {"event_id", "received_at", "rejection_id", "rejected_at"}
        stored[prefix] = [{k: v for k, v in record.items() if k not in drop} for record in records]
    return stored


def _answer(variant: str, app, route: str, method: str, body: bytes, headers: dict) -> tuple:
    """(status, content type, Allow, JSON answer) from the front or from Flask alone."""
    headers = {"User-Agent": "Appsero/abc;", **headers}
    if variant == "front":
        status, answer_headers, payload = call_asgi(SdkFront(app), method, route, body, headers)
        return status, answer_headers.get("content-type"), answer_headers.get("allow"), json.loads(payload)
    response = app.test_client().open(route, method=method, data=body, headers=headers)
    allow = response.headers.get("Allow")
    return response.status_code, response.headers.get("Content-Type"), allow, json.loads(response.get_data())


@pytest.mark.parametrize(("route", "method", "body", "headers"), list(_cases()))
def test_the_front_answers_and_stores_what_the_flask_view_does(tmp_path, route, method, body, headers):
    results = []
    for variant in ("front", "flask_only"):
        settings = Settings(RAW_STORE_URL=str(tmp_path / variant), _env_file=None)
        app = create_app(settings)
        try:
            status, content_type, allow, answer = _answer(variant, app, route, method, body, headers)
        finally:
            app.extensions["ingest"].writer.close()
        results.append(
            (status, content_type, allow, _without_server_stamps(answer), _stored(tmp_path / variant))
        )
    front, flask_only = results
    assert front == flask_only
    assert front[0] in (202, 400, 405, 415)


def test_both_paths_answer_a_failing_store_alike(tmp_path, sdk_captures):
    capture = sdk_captures["004-v2x-found-better-plugin"]
    answers = []
    for variant in ("front", "flask_only"):
        app = create_app(Settings(RAW_STORE_URL=str(tmp_path / variant), _env_file=None))
        state = app.extensions["ingest"]

        def failing_write(relative: str, data: bytes) -> None:
            raise RawStoreError(f"could not store {relative}: disk full")

        state.store.write_bytes = failing_write
        try:
            status, _, _, answer = _answer(
                variant, app, "/deactivate", "POST", capture["body_encoded"].encode(), capture["headers"]
            )
        finally:
            state.writer.close()
        answers.append((status, answer, state.counters.snapshot()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 503 and answers[0][1]["code"] == "store_unavailable"
    assert answers[0][2]["store_failures"] == 1


def test_both_paths_see_the_same_client_behind_a_proxy(tmp_path, sdk_captures):
    capture = sdk_captures["021-theme"]
    headers = {**capture["headers"], "X-Forwarded-For": "203.0.113.7, 198.51.100.9"}
    addresses = []
    for variant in ("front", "flask_only"):
        app = create_app(Settings(RAW_STORE_URL=str(tmp_path / variant), INGEST_PROXY_HOPS=1, _env_file=None))
        try:
            status, *_ = _answer(
                variant, app, "/deactivate", "POST", capture["body_encoded"].encode(), headers
            )
        finally:
            app.extensions["ingest"].writer.close()
        assert status == 202
        [stored] = stored_files(tmp_path / variant, "deactivate")
        addresses.append(json.loads(stored.read_bytes())["remote_addr"])
    assert addresses == ["198.51.100.9", "198.51.100.9"]


def test_both_paths_refuse_an_oversized_body_alike_and_keep_nothing(tmp_path, sdk_captures):
    capture = sdk_captures["004-v2x-found-better-plugin"]
    answers = []
    for variant in ("front", "flask_only"):
        settings = Settings(RAW_STORE_URL=str(tmp_path / variant), _env_file=None)
        app = create_app(settings)
        oversized = (capture["body_encoded"] + "&reason_info=" + "x" * settings.MAX_BODY_BYTES).encode()
        try:
            answers.append(_answer(variant, app, "/deactivate", "POST", oversized, capture["headers"]))
        finally:
            app.extensions["ingest"].writer.close()
        assert not (tmp_path / variant).exists() or stored_files(tmp_path / variant, "") == []
    assert answers[0] == answers[1]
    assert answers[0][0] == 413 and answers[0][3]["code"] == "body_too_large"
