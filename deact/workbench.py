"""The analyst's workbench: what the notebooks in `notebooks/` import.

Run BigQuery-dialect SQL against whichever warehouse WAREHOUSE_URL names (DuckDB or BigQuery, both
through the warehouse adapter, so a notebook sees the same frame shape from either), list the
projects, pick a project and a period, and preview registry charts or chart prototypes. Every
failure a notebook user can fix by themselves (no warehouse yet, empty history, MongoDB not
running) is a `WorkbenchError` that says what to run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pymongo.errors import PyMongoError

from deactivation.mongo import connect
from deactivation.projects import list_projects as registered_projects
from deactivation.redaction import mask_free_text
from deactivation.settings import Settings, get_settings
from deactivation.warehouse import WarehouseError, open_warehouse
from reports.registry import load_charts

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from deactivation.projects import Project
    from reports.registry import Chart

DEMO_HINT = (
    "run `make demo` to build the local demo data (or point WAREHOUSE_URL at a warehouse with history)"
)
MONGO_HINT = (
    "start MongoDB with `make demo` or `deact mongo serve` (or point MONGODB_URI at a running server)"
)


class WorkbenchError(RuntimeError):
    """Something the notebook user can fix: the message says how."""


@dataclass(frozen=True)
class Period:
    """An inclusive range of UTC days, as chart SQL takes it (@start_day, @end_day)."""

    start_day: date
    end_day: date

    def __str__(self) -> str:
        return f"{self.start_day.isoformat()} … {self.end_day.isoformat()}"


def use_project_root() -> Path:
    """Work from the repository root, so `.env` and relative paths (data/…) mean what they mean
    for every `deact` command. JupyterLab starts kernels in the notebook's own directory."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").exists():
        os.chdir(root)
        get_settings.cache_clear()
    return Path.cwd()


def run_sql(
    sql: str, params: Mapping[str, Any] | None = None, *, settings: Settings | None = None
) -> pd.DataFrame:
    """Run one BigQuery-dialect SELECT (``@name`` parameters) on the configured warehouse."""
    settings = settings or get_settings()
    if settings.warehouse_kind == "duckdb":
        _require_duckdb_file(settings)
    try:
        return open_warehouse(settings).query(sql, params or {})
    except WarehouseError as exc:
        raise _explain(exc, settings) from exc


def chart_params(project_hash: str, period: Period) -> dict[str, Any]:
    """The parameters every chart's SQL takes."""
    return {"project_hash": project_hash, "start_day": period.start_day, "end_day": period.end_day}


def list_projects(settings: Settings | None = None) -> pd.DataFrame:
    """Every registered project with how much history the warehouse holds for it, busiest first."""
    settings = settings or get_settings()
    return _projects_frame(_registered_projects(settings), settings)


def resolve_project(project: str = "", settings: Settings | None = None) -> Project:
    """A project by hash or name (case-insensitive); empty means the one with most history."""
    settings = settings or get_settings()
    registered = _registered_projects(settings)
    projects = _projects_frame(registered, settings)
    if projects.empty or projects["deactivations"].sum() == 0:
        raise WorkbenchError(f"the warehouse holds no deactivations yet: {DEMO_HINT}")
    if not project.strip():
        return next(p for p in registered if p.hash == projects.iloc[0]["hash"])
    from deactivation.projects import ProjectError, choose_project  # lazy: pymongo, as _registered_projects

    try:
        return choose_project(registered, project)  # the library's one resolver, as on the CLI
    except ProjectError as exc:
        raise WorkbenchError(str(exc)) from exc


def resolve_period(
    days: int,
    end_day: str | date | None = None,
    *,
    project_hash: str | None = None,
    settings: Settings | None = None,
) -> Period:
    """The `days` UTC days ending at `end_day` (default: the last day with history)."""
    if days < 1:
        raise WorkbenchError(f"a period needs at least one day, got days={days}")
    last = (
        _parse_day(end_day) if end_day else _last_day_with_history(project_hash, settings or get_settings())
    )
    return Period(start_day=last - timedelta(days=days - 1), end_day=last)


def load_chart(chart_id: str, *, charts_dir: Path | None = None, sql_dir: Path | None = None) -> Chart:
    """A chart of the registry (reports/charts) by id."""
    charts = {chart.id: chart for chart in load_charts(charts_dir, sql_dir)}
    if chart_id not in charts:
        raise WorkbenchError(f"no chart {chart_id!r} in the registry; known: {', '.join(sorted(charts))}")
    return charts[chart_id]


def chart_ids(*, charts_dir: Path | None = None, sql_dir: Path | None = None) -> list[str]:
    """The ids of every chart in the registry."""
    return sorted(chart.id for chart in load_charts(charts_dir, sql_dir))


def preview_chart(
    chart: Chart | str, project_hash: str, period: Period, *, settings: Settings | None = None
) -> go.Figure:
    """Draw a registry chart (or its id) for one project and period, as the report would."""
    if isinstance(chart, str):
        chart = load_chart(chart)
    return preview_prototype(
        chart.sql_text(), chart.figure, project_hash, period, title=chart.title, settings=settings
    )


def preview_prototype(
    sql: str,
    figure: Callable[[pd.DataFrame], go.Figure],
    project_hash: str,
    period: Period,
    *,
    title: str = "",
    settings: Settings | None = None,
) -> go.Figure:
    """Draw a chart that is not in the registry yet from its SQL and figure function, as the report would."""
    frame = run_sql(sql, chart_params(project_hash, period), settings=settings)
    drawn = figure(frame)  # empty frames too: the report draws each chart's own empty state
    if title and not drawn.layout.title.text:
        drawn.update_layout(title=title)
    return drawn


def redact_personal_data(text: str | None) -> str:
    """Free text with e-mail and IP addresses, URLs and phone numbers masked, for showing answers."""
    return mask_free_text(text)


# --- internals ------------------------------------------------------------------------------------


def _projects_frame(registered: list[Project], settings: Settings) -> pd.DataFrame:
    history = run_sql(
        """
        SELECT project_hash, COUNT(*) AS deactivations,
               MIN(DATE(raw_hour)) AS first_day, MAX(DATE(raw_hour)) AS last_day
        FROM deactivations
        GROUP BY project_hash
        """,
        settings=settings,
    )
    frame = pd.DataFrame(
        [(p.hash, p.name, p.kind, len(p.custom_reasons)) for p in registered],
        columns=["hash", "name", "kind", "custom_reasons"],
        dtype=object,
    ).astype({"custom_reasons": "int64"})
    frame = frame.merge(history.rename(columns={"project_hash": "hash"}), on="hash", how="left")
    frame["deactivations"] = frame["deactivations"].fillna(0).astype("int64")
    return frame.sort_values(["deactivations", "name"], ascending=[False, True], ignore_index=True)


def _require_duckdb_file(settings: Settings) -> None:
    # Opening a missing DuckDB file would silently create an empty warehouse.
    if not settings.duckdb_path.exists():
        raise WorkbenchError(f"there is no warehouse at {settings.duckdb_path} yet: {DEMO_HINT}")


def _explain(exc: WarehouseError, settings: Settings) -> WorkbenchError:
    message = str(exc)
    if message.startswith("cannot open"):
        return WorkbenchError(
            f"the warehouse {settings.WAREHOUSE_URL} cannot be opened ({message}); "
            "if a pipeline or analytics run is writing to it, retry when it is done"
        )
    if "does not exist" in message:
        missing = message.splitlines()[0]
        if not open_warehouse(settings).table_exists("deactivations"):
            return WorkbenchError(f"the warehouse holds no history yet ({missing}): {DEMO_HINT}")
        return WorkbenchError(
            f"{missing}: if it is an analytics aggregate, build them with `deact analytics build` "
            "(`make demo` does too); otherwise check the table name"
        )
    return WorkbenchError(message)


def _registered_projects(settings: Settings) -> list[Project]:
    client = connect(settings, timeout_ms=3000)
    try:
        return registered_projects(client[settings.MONGODB_DB])
    except PyMongoError as exc:
        raise WorkbenchError(
            f"MongoDB at {settings.MONGODB_URI} is unreachable ({type(exc).__name__}): {MONGO_HINT}"
        ) from exc
    finally:
        client.close()


def _last_day_with_history(project_hash: str | None, settings: Settings) -> date:
    sql = "SELECT MAX(DATE(raw_hour)) AS last_day FROM deactivations"
    params: dict[str, Any] = {}
    if project_hash:
        sql += " WHERE project_hash = @project_hash"
        params["project_hash"] = project_hash
    last_day = run_sql(sql, params, settings=settings)["last_day"].iloc[0]
    if pd.isna(last_day):
        raise WorkbenchError(
            f"the warehouse holds no deactivations{' for this project' if project_hash else ''}: {DEMO_HINT}"
        )
    return pd.Timestamp(last_day).date()


def _parse_day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise WorkbenchError(f"a day looks like 2026-11-28, got {value!r}") from exc
