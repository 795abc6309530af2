"""`deact dashboard serve` runs the dashboard on Granian; `make up` starts it on DASHBOARD_PORT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deact.local_stack import dashboard_url, stack_services
from deactivation.mongo import free_port

REPO = Path(__file__).resolve().parents[3]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


@pytest.mark.slow
def test_the_dashboard_serves_pages_and_the_api_on_granian(settings, tmp_path):
    port = free_port()
    environment = {**os.environ, **settings.store_environment(), "LOG_LEVEL": "WARNING"}
    log_path = tmp_path / "dashboard.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "deact", "dashboard", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                status, body, headers = _get(f"http://127.0.0.1:{port}/login")
            except OSError:
                time.sleep(0.3)
        assert status == 200, log_path.read_text()[-2000:]
        assert b'name="csrf_token"' in body and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        status, body, _ = _get(f"http://127.0.0.1:{port}/api/v1/projects")
        assert status == 401 and json.loads(body)["code"] == "unauthorized"
        assert f"dashboard on http://127.0.0.1:{port}" in log_path.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def test_the_local_stack_starts_the_dashboard_on_its_port(settings):
    configured = settings.model_copy(update={"DASHBOARD_PORT": 8123})
    [dashboard] = [service for service in stack_services(configured) if service.name == "dashboard"]
    assert dashboard.command[-4:] == ["--host", "127.0.0.1", "--port", "8123"]
    assert dashboard.ready_url == "http://127.0.0.1:8123/login" == dashboard_url(configured) + "/login"


def test_the_demo_key_opens_every_project_and_replaces_the_previous_demo_key(settings, mongo_db):
    from deact.commands.demo import DEMO_KEY_NAME, _demo_dashboard_key
    from deactivation.api_keys import list_keys, verify_key

    first = _demo_dashboard_key(settings)
    second = _demo_dashboard_key(settings)
    assert second["url"] == dashboard_url(settings)
    assert verify_key(mongo_db, settings, first["key"]) is None  # revoked: one live demo key
    key = verify_key(mongo_db, settings, second["key"])
    assert key is not None and key.is_operator and key.name == DEMO_KEY_NAME
    assert [k.revoked_at is None for k in list_keys(mongo_db)] == [False, True]
