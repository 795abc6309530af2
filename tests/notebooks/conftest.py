"""Demo data for the notebook tests: generator → pipeline → analytics, once per module."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from deactivation.mongo import connect
from deactivation.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
EXPLORE = NOTEBOOKS / "01-explore-deactivation-history.ipynb"
PROTOTYPE = NOTEBOOKS / "02-prototype-a-chart.ipynb"

DEMO_START = datetime(2026, 11, 20, tzinfo=UTC)
DEMO_HOURS = 48
DEMO_EVENTS_PER_HOUR = 30


@pytest.fixture(scope="module")
def demo_settings(
    tmp_path_factory: pytest.TempPathFactory, settings_under: Callable[[Path], Settings]
) -> Settings:
    """Settings shaped like the `settings` fixture, shared by a module so the data is built once."""
    settings = settings_under(tmp_path_factory.mktemp("workbench"))
    yield settings
    with connect(settings) as client:
        client.drop_database(settings.MONGODB_DB)


@pytest.fixture(scope="module")
def demo_data(demo_settings: Settings) -> Settings:
    """Two days of generated deactivations, run through the pipeline and the analytics build."""
    from beam.pipeline import run_pipeline
    from deactivation.generator import DEMO_PROJECTS, generate_events, write_to_raw_store
    from deactivation.mongo import get_database
    from deactivation.projects import upsert_project
    from deactivation.raw_store import open_raw_store
    from reports.analytics import build_analytics

    generated = generate_events(5, DEMO_START, DEMO_HOURS, DEMO_EVENTS_PER_HOUR)
    write_to_raw_store(open_raw_store(demo_settings), generated.envelopes)
    database = get_database(demo_settings)
    for project in DEMO_PROJECTS:
        upsert_project(database, project)
    run_pipeline(demo_settings, [DEMO_START + timedelta(hours=h) for h in range(DEMO_HOURS)])
    build_analytics(demo_settings, full=True)
    return demo_settings


def kernel_environment(settings: Settings) -> dict[str, str]:
    """The environment a notebook kernel needs to read `settings` through get_settings()."""
    return {**os.environ, **settings.store_environment()}


def execute_notebook(path: Path, settings: Settings, parameters: dict) -> nbformat.NotebookNode:
    """Run a notebook top to bottom, as papermill would: `parameters` injected after the tagged cell."""
    notebook = nbformat.read(path, as_version=4)
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    )
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(tagged[0] + 1, injected)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=kernel_environment(settings))
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's cells printed."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "stream"
    )
