"""`deact stack up --emulators`: the production stores (GCS, BigQuery) on this machine in one step;
both forms of the emulator variables; a missing bucket said in words."""

from __future__ import annotations

import json

import pytest

from deact.commands.stack import _print_urls
from deact.local_stack import ProcessRegistry
from deactivation.settings import Settings


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("127.0.0.1:4443", "http://127.0.0.1:4443"),
        ("http://127.0.0.1:4443/", "http://127.0.0.1:4443"),
        ("https://gcs.example:443", "https://gcs.example:443"),
        ("", None),
    ],
)
def test_both_forms_of_the_emulator_variables_are_accepted(given, stored):
    settings = Settings(STORAGE_EMULATOR_HOST=given, BIGQUERY_EMULATOR_HOST=given, _env_file=None)
    assert stored == settings.STORAGE_EMULATOR_HOST and stored == settings.BIGQUERY_EMULATOR_HOST


def test_a_missing_bucket_is_named(deact, one_line_error, gcs_endpoint, mongo_db):
    host_port = gcs_endpoint.removeprefix("http://")  # the form users copy from other tools
    result = deact("generate", "--no-projects", "--hours", "1", RAW_STORE_URL="gs://no-such-bucket",
                   STORAGE_EMULATOR_HOST=host_port)  # fmt: skip
    one_line_error(
        result, 3, "the raw store gs://no-such-bucket is not writable: bucket no-such-bucket does not exist"
    )


@pytest.mark.slow
def test_stack_up_emulators_starts_both_and_down_stops_them(deact, settings):
    from deact.local_stack import fake_gcs_server_binary, local_bigquery_binary

    if fake_gcs_server_binary() is None or local_bigquery_binary() is None:
        pytest.skip("fake-gcs-server (requirements-dev) or .venv-bq (make .venv-bq) is not installed")
    try:
        up = deact("stack", "up", "--emulators", "--json", timeout=240)
        assert up.returncode == 0, up.stderr
        started = json.loads(up.stdout.strip().splitlines()[-1])
        environment = started["settings"]
        assert environment["RAW_STORE_URL"] == "gs://deactivation-raw"
        assert environment["WAREHOUSE_URL"] == "bigquery://deact-local/deactivation"
        env_file = (settings.DATA_DIR / "run" / "emulators.env").read_text()
        assert f"export STORAGE_EMULATOR_HOST={environment['STORAGE_EMULATOR_HOST']}" in env_file

        # The printed settings work as they are: the bucket takes writes, the dataset has the tables.
        generated = deact(
            "generate", "--no-projects", "--hours", "1", "--events-per-hour", "5", **environment
        )
        assert generated.returncode == 0, generated.stderr
        from deactivation.warehouse import open_warehouse

        emulated = Settings(_env_file=None, **environment)
        assert open_warehouse(emulated).table_exists("deactivations")

        again = deact("stack", "up", "--emulators", "--json")
        assert json.loads(again.stdout)["already_running"] is True
        assert json.loads(again.stdout)["settings"] == environment

        status = json.loads(deact("stack", "status", "--json").stdout)["running"]
        assert {"gcs-emulator", "bigquery-emulator"} <= set(status)
    finally:
        down = deact("stack", "down", "--json")
    assert down.returncode == 0, down.stderr
    assert set(json.loads(down.stdout)["stopped"]) == {"gcs-emulator", "bigquery-emulator"}


def test_up_prints_where_every_service_answers(capsys, tmp_path):
    settings = Settings(DATA_DIR=tmp_path, DASHBOARD_PORT=8051, _env_file=None)
    _print_urls(settings, ProcessRegistry(settings))
    out = capsys.readouterr().out
    assert "dashboard         http://127.0.0.1:8051" in out
    assert (
        f"mail sink         smtp://127.0.0.1:8025  (every mail as an .eml file in {tmp_path / 'mail'})" in out
    )
    assert "collector         http://127.0.0.1:8080/deactivate" in out
