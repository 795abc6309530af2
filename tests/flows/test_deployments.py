"""prefect.yaml deploys to a Prefect server and the pipeline deployment runs through a process worker."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from deact.local_stack import WORK_POOL
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def test_prefect_yaml_declares_the_contracted_deployments():
    deployments = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    schedules = {name: deployment["schedules"] for name, deployment in deployments.items()}
    assert schedules == {
        "deactivation-pipeline-hourly": [{"cron": "5 * * * *", "timezone": "UTC"}],
        "deactivation-analytics-hourly": [{"cron": "20 * * * *", "timezone": "UTC"}],
        "deactivation-notifications": [{"cron": "*/5 * * * *", "timezone": "UTC"}],
        "retention": [{"cron": "40 3 * * *", "timezone": "UTC"}],
        "backfill": [],
    }
    assert {d["entrypoint"] for d in deployments.values()} == {
        "flows/pipeline_flow.py:deactivation_pipeline",
        "flows/analytics_flow.py:deactivation_analytics",
        "flows/notifications_flow.py:deactivation_notifications",
        "flows/retention_flow.py:retention",
        "flows/backfill_flow.py:backfill",
    }
    assert {d["work_pool"]["name"] for d in deployments.values()} == {WORK_POOL}


async def _create_process_pool() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))


async def _wait_for_final_state(flow_run_id, timeout_s: float):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for _ in range(int(timeout_s)):
            flow_run = await client.read_flow_run(flow_run_id)
            if flow_run.state and flow_run.state.is_final():
                return flow_run.state
            await asyncio.sleep(1)
    raise TimeoutError(f"flow run {flow_run_id} did not finish within {timeout_s:.0f}s")


@pytest.mark.slow
def test_pipeline_deployment_runs_to_completion_through_a_worker(
    demo_data: Settings, demo_hours: list[datetime], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    # The deploy command, the worker and its flow-run subprocess talk to the test server.
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    asyncio.run(_create_process_pool())
    deployed = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    flow_run = run_deployment(
        "deactivation-pipeline/deactivation-pipeline-hourly",
        parameters={"hour": f"{demo_hours[-1]:%Y-%m-%dT%H}", "hours": len(demo_hours)},
        timeout=0,
    )
    with open(tmp_path / "worker.log", "wb") as worker_log:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", WORK_POOL, "--run-once"],
            cwd=tmp_path,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            state = asyncio.run(_wait_for_final_state(flow_run.id, timeout_s=240))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):  # a worker ignores a single SIGTERM
                if worker.poll() is None:
                    worker.send_signal(signum)
                    try:
                        worker.wait(10)
                    except subprocess.TimeoutExpired:
                        continue
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    assert state.is_completed(), (tmp_path / "worker.log").read_text()[-3000:]
    loaded = open_warehouse(demo_data).query("SELECT COUNT(*) AS n FROM hour_loads")
    assert int(loaded["n"][0]) == len(demo_hours)
