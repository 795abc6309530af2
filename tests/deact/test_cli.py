"""What every `deact` command shares: help for every option, exit codes, and operational errors as
one clear line (never a traceback unless --debug)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from deact.cli import build_parser
from deact.errors import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, explain


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command and subcommand: (path, its parser)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _command_paths(child, (*path, name))


COMMANDS = [path for path, _parser in _command_paths(build_parser())]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "deact")
def test_every_command_has_help_and_every_option_says_what_it_does(path, capsys):
    parser = dict(_command_paths(build_parser()))[path]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*path, "--help"])
    assert exited.value.code == 0
    assert "usage: deact" in capsys.readouterr().out
    undocumented = [
        action.option_strings or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and action.help is None
    ]
    assert not undocumented, f"`deact {' '.join(path)}`: options without help: {undocumented}"


def test_the_help_documents_the_exit_codes():
    result = subprocess.run([sys.executable, "-m", "deact", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"\n  {code}" in result.stdout.split("exit codes:")[1]


@pytest.mark.parametrize(
    "command",
    [
        ("projects", "list"),
        ("projects", "add", "--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "Forms"),
        ("projects", "remove", "Forms"),
        ("pipeline", "run", "--hour", "2026-11-28T05"),
        ("generate", "--hours", "1", "--end-hour", "2026-11-28T05"),
        ("analytics", "build"),
        ("deadletters", "replay"),
    ],
    ids=" ".join,
)
def test_an_unreachable_mongodb_is_one_line_naming_the_uri_and_how_to_start_it(
    deact, one_line_error, unreachable_mongo, command
):
    result = deact(*command, MONGODB_URI=unreachable_mongo)
    one_line_error(result, EXIT_UNAVAILABLE, f"MongoDB at {unreachable_mongo} does not answer", "make up")
    assert "deact mongo serve" in result.stderr


def test_generate_writes_nothing_when_mongodb_does_not_answer(
    deact, one_line_error, unreachable_mongo, settings
):
    result = deact("generate", "--hours", "1", "--end-hour", "2026-11-28T05", MONGODB_URI=unreachable_mongo)
    one_line_error(result, EXIT_UNAVAILABLE, "does not answer")
    assert not Path(settings.RAW_STORE_URL).exists() or not any(Path(settings.RAW_STORE_URL).rglob("*.*json"))


def test_a_remote_mongodb_is_named_without_its_password(deact, one_line_error):
    uri = "mongodb://analyst:s3cret@127.0.0.2:9/?directConnection=true"
    line = one_line_error(deact("projects", "list", MONGODB_URI=uri), EXIT_UNAVAILABLE, "check MONGODB_URI")
    assert "s3cret" not in line and "//***@127.0.0.2:9" in line


def test_a_missing_warehouse_says_how_to_make_one(deact, one_line_error, settings, mongo_db):
    result = deact("deadletters", "list")
    one_line_error(
        result, EXIT_UNAVAILABLE, f"the warehouse {settings.duckdb_path} does not exist yet", "make demo"
    )


def test_a_locked_warehouse_names_the_process_that_holds_it(deact, one_line_error, settings, mongo_db):
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "c.execute('CREATE TABLE t (x INT)'); print('ready', flush=True); time.sleep(60)",
         str(settings.duckdb_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = deact("deadletters", "list")
    finally:
        holder.kill()
        holder.wait()
    one_line_error(
        result, EXIT_UNAVAILABLE, "the warehouse", "in use by another process", f"PID {holder.pid}"
    )


def test_an_unwritable_raw_store_is_reported_before_anything_is_generated(
    deact, one_line_error, tmp_path, mongo_db
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = deact("generate", "--no-projects", "--hours", "1", RAW_STORE_URL=str(blocker / "raw"))
    one_line_error(result, EXIT_UNAVAILABLE, f"the raw store {blocker / 'raw'} is not writable")


def test_an_unreachable_prefect_api_is_one_line(deact, one_line_error, mongo_db):
    result = deact(
        "backfill", "--start-hour", "2026-11-28T00", "--end-hour", "2026-11-28T01",
        PREFECT_API_URL="http://127.0.0.1:9/api",
    )  # fmt: skip
    one_line_error(result, EXIT_UNAVAILABLE, "the Prefect API at http://127.0.0.1:9/api", "does not answer")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("pipeline", "run", "--hour", "2026-13-29T10"), "--hour 2026-13-29T10: there is no month 13"),
        (("pipeline", "run", "--hour", "2026-11-28T05", "--hours", "0"), "--hours must be at least 1"),
        (("analytics", "build", "--since", "2026-02-30T00"), "--since 2026-02-30T00: 2026-02 has no day 30"),
        (("generate", "--end-hour", "2026-11-28T24"), "the hour must be 00-23, got 24"),
        (
            ("generate", "--hours", "100000", "--events-per-hour", "100"),
            "is 10,000,000, at most 2,000,000 per run",
        ),
        (("events", "recent", "--hours", "1000"), "--hours must be 1-72, got 1000"),
        (("deadletters", "list", "--limit", "0"), "--limit must be at least 1, got 0"),
        (("deadletters", "list", "--since", "yesterday"), "--since must look like YYYY-MM-DDTHH"),
        (
            (
                "projects",
                "add",
                "--hash",
                "a4a8da5b-b419-4656-98e9-4a42e9044891",
                "--name",
                "X",
                "--mail",
                "pigeon:l",
            ),
            "unknown mail provider 'pigeon'",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_bad_arguments_say_what_is_wrong(deact, one_line_error, mongo_db, command, message):
    one_line_error(deact(*command), EXIT_USAGE, message)


def test_invalid_settings_are_one_line_without_pydantic_prefixes(deact):
    result = deact("projects", "list", WAREHOUSE_URL="postgres://x")
    assert result.returncode == EXIT_USAGE and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "deact: invalid settings: WAREHOUSE_URL must start with duckdb:// or bigquery://, got 'postgres://x'"
    )


def test_debug_shows_the_traceback_and_the_same_last_line(deact, unreachable_mongo):
    result = deact("--debug", "projects", "list", MONGODB_URI=unreachable_mongo)
    assert result.returncode == EXIT_UNAVAILABLE
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("deact projects: error: MongoDB at")
    after_the_command = deact("projects", "list", "--debug", MONGODB_URI=unreachable_mongo)
    assert "Traceback (most recent call last)" in after_the_command.stderr


def test_an_unexpected_error_is_one_line_that_points_at_debug():
    message, code = explain(ZeroDivisionError("division by zero"))
    assert code == EXIT_FAILED
    assert (
        message == "unexpected ZeroDivisionError: division by zero (run again with --debug for the traceback)"
    )


def test_a_failed_or_locked_pipeline_run_is_one_line_and_exit_1():
    from beam.hour_lock import HoursLockedError
    from beam.pipeline import StateWriteError

    locked = HoursLockedError("hours 2026-11-28T04..2026-11-28T05 are held by host:42:ab12cd34")
    assert explain(locked) == (str(locked), EXIT_FAILED)
    state = StateWriteError("the warehouse holds 2026-11-28T05; MongoDB failed: re-run the hour")
    assert explain(state) == (str(state), EXIT_FAILED)


def test_the_deepest_known_cause_is_reported():
    from pymongo.errors import ServerSelectionTimeoutError

    try:
        try:
            raise ServerSelectionTimeoutError("127.0.0.1:9: [Errno 111] Connection refused, " + "x" * 3000)
        except ServerSelectionTimeoutError as exc:
            raise RuntimeError("pipeline failed for hour 2026-11-28T05") from exc
    except RuntimeError as wrapped:
        message, code = explain(wrapped)
    assert code == EXIT_UNAVAILABLE and message.startswith("MongoDB at ") and "x" * 10 not in message


def test_quiet_by_default_and_verbose_on_request(deact, settings, mongo_db):
    quiet = deact("projects", "list")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.strip() == "no projects registered yet: `deact projects add --hash UUID --name NAME`"
    # A library's INFO line shows with --verbose (the generator's store writes log nothing at WARNING).
    verbose = deact("-v", "analytics", "build", "--no-publish")
    assert verbose.returncode == 0, verbose.stderr
    assert " INFO " in verbose.stderr
    assert " INFO " not in deact("analytics", "build", "--no-publish").stderr


def test_after_a_stopped_mongodb_every_command_says_so_in_one_line(deact, one_line_error, tmp_path):
    """What `make demo` leaves behind: it started a local MongoDB and stopped it at the end."""
    from deactivation.mongo import LocalMongoServer

    server = LocalMongoServer(tmp_path / "mongo")
    with server:
        added = deact("projects", "add", "--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "Forms",
                      MONGODB_URI=server.uri)  # fmt: skip
        assert added.returncode == 0, added.stderr
    for command in (
        ("projects", "list"),
        ("projects", "add", "--hash", "b1b2c3d4-0000-4000-8000-000000000001", "--name", "T"),
        ("pipeline", "run"),
        ("generate", "--hours", "1"),
    ):
        one_line_error(deact(*command, MONGODB_URI=server.uri), EXIT_UNAVAILABLE, f"MongoDB at {server.uri}")
