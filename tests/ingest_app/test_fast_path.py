"""The fast path answers exactly what the Flask view would, and hands it everything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.test import Client

from deactivation.raw_store import RawStoreError
from deactivation.settings import Settings
from ingest_app import create_app
from ingest_app.fast_path import SDK_PATH

from .conftest import stored_files
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


def test_accepted_requests_skip_flask_and_every_other_request_reaches_it(app, client, sdk_captures):
    flask_app = CountingApp(app.wsgi_app.flask_wsgi_app)
    app.wsgi_app.flask_wsgi_app = flask_app
    capture = sdk_captures["004-v2x-found-better-plugin"]

    assert (
        client.post("/deactivate", data=capture["body_encoded"], headers=capture["headers"]).status_code
        == 202
    )
    assert client.post("/base/track", json=capture["body"]).status_code == 202
    assert flask_app.calls == 0

    bad_hash = capture["body_encoded"].replace("hash=", "hash=x", 1)
    others = [
        client.get("/deactivate"),
        client.get("/healthz"),
        client.post("/deactivate", data=bad_hash, headers=capture["headers"]),
        client.post("/deactivate", data=b"", content_type="application/json"),
        client.post("/deactivate", data=capture["body_encoded"], content_type="text/plain"),
        client.post("/deactivate/", data=capture["body_encoded"], headers=capture["headers"]),
    ]
    assert [response.status_code for response in others] == [405, 200, 400, 400, 415, 404]
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


@pytest.mark.parametrize(("route", "method", "body", "headers"), list(_cases()))
def test_the_fast_path_answers_and_stores_what_the_flask_view_does(tmp_path, route, method, body, headers):
    results = []
    for variant in ("fast", "flask_only"):
        settings = Settings(RAW_STORE_URL=str(tmp_path / variant), _env_file=None)
        app = create_app(settings)
        wsgi_app = app.wsgi_app if variant == "fast" else app.wsgi_app.flask_wsgi_app
        try:
            response = Client(wsgi_app).open(
                route, method=method, data=body, headers={"User-Agent": "Appsero/abc;", **headers}
            )
        finally:
            app.extensions["ingest"].writer.close()
        answer = json.loads(response.get_data())
        results.append(
            (
                response.status_code,
                response.headers.get("Content-Type"),
                response.headers.get("Allow"),
                _without_server_stamps(answer),
                _stored(tmp_path / variant),
            )
        )
    fast, flask_only = results
    assert fast == flask_only
    assert fast[0] in (202, 400, 405, 415)


def test_both_paths_answer_a_failing_store_alike(tmp_path, sdk_captures):
    capture = sdk_captures["004-v2x-found-better-plugin"]
    answers = []
    for variant in ("fast", "flask_only"):
        app = create_app(Settings(RAW_STORE_URL=str(tmp_path / variant), _env_file=None))
        state = app.extensions["ingest"]

        def failing_write(relative: str, data: bytes) -> None:
            raise RawStoreError(f"could not store {relative}: disk full")

        state.store.write_bytes = failing_write
        wsgi_app = app.wsgi_app if variant == "fast" else app.wsgi_app.flask_wsgi_app
        try:
            response = Client(wsgi_app).post(
                "/deactivate", data=capture["body_encoded"], headers=capture["headers"]
            )
        finally:
            state.writer.close()
        answers.append((response.status_code, json.loads(response.get_data()), state.counters.snapshot()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 503 and answers[0][1]["code"] == "store_unavailable"
    assert answers[0][2]["store_failures"] == 1
