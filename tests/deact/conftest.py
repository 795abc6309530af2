"""The `deact` command as a user runs it: a subprocess with the test's settings in its environment.

Fixtures (importlib import mode: test modules cannot import this file, they ask for fixtures):
`deact` runs a command, `one_line_error` checks what every failing command must print.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from deactivation.settings import Settings

#: Nothing listens on the discard port: a MongoDB that does not answer (as after `make demo`).
UNREACHABLE_MONGO = "mongodb://127.0.0.1:9/?directConnection=true"

#: Environment variables of the developer's shell that would point a command elsewhere.
_FOREIGN = ("PREFECT_API_URL", "LOG_LEVEL", "STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """`deact.cli.main` in-process points the root logger at the captured stderr of that test;
    later tests must not log into that closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def cli_environment(settings: Settings) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    return {**environment, **settings.store_environment()}


@pytest.fixture
def deact(cli_environment: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """Run `deact ARGS` in a subprocess; keyword arguments override settings (env variables)."""

    def run(*args: str, timeout: float = 300, **overrides: str) -> subprocess.CompletedProcess:
        environment = {**cli_environment, **overrides}
        return subprocess.run(
            [sys.executable, "-m", "deact", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def unreachable_mongo() -> str:
    return UNREACHABLE_MONGO


@pytest.fixture
def one_line_error() -> Callable[..., str]:
    """Assert a failed command printed exactly one error line (no traceback) with these fragments."""

    def check(result: subprocess.CompletedProcess, exit_code: int, *fragments: str) -> str:
        assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("deact "), lines[0]
        assert ": error: " in lines[0], lines[0]
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])
        assert "Value error," not in lines[0]
        return lines[0]

    return check
