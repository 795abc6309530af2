"""The chart registry: every chart is one module in `reports/charts/` plus one SQL file in `reports/sql/`.

A chart module defines ``figure(df) -> plotly Figure`` and
``CHART = Chart(id=<module name>, title=..., description=..., sql="<file>.sql", figure=figure)``
(optionally ``order=`` its position and ``kinds=("plugin",)`` for charts that make no sense for a
theme, such as reason charts: a theme's only reason is "Theme switched"). The chart's SQL is
BigQuery dialect, reads aggregate tables (history only where no aggregate holds the data: a
dashboard runs it over published aggregate rows) and takes ``@project_hash`` (STRING),
``@start_day`` and ``@end_day`` (DATE). Adding a chart means adding those two files; the report,
the notebooks (deact.workbench.preview_chart) and the analytics flow find it here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

DEFAULT_CHARTS_DIR = Path(__file__).parent / "charts"
DEFAULT_SQL_DIR = Path(__file__).parent / "sql"
#: The project kinds (deactivation.projects.Project.kind) a chart can be shown for.
PROJECT_KINDS = ("plugin", "theme")


class ChartError(ValueError):
    """A chart module or its SQL file is missing or malformed."""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    sql: str
    figure: Callable[[pd.DataFrame], object]
    #: Position in the report (lower first); charts with equal order sort by id.
    order: int = 100
    #: The project kinds this chart is drawn for (reason charts: plugins only).
    kinds: tuple[str, ...] = PROJECT_KINDS
    sql_dir: Path = field(default=DEFAULT_SQL_DIR, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))  # a list in a chart module is fine too
        unknown = set(self.kinds) - set(PROJECT_KINDS)
        if not self.kinds or unknown:
            raise ChartError(f"chart {self.id!r}: kinds must be some of {PROJECT_KINDS}, got {self.kinds!r}")

    def applies_to(self, kind: str) -> bool:
        """Whether this chart is drawn for a project of this kind."""
        return kind in self.kinds

    def sql_text(self) -> str:
        path = self.sql_dir / self.sql
        if not path.is_file():
            raise ChartError(f"chart {self.id!r}: SQL file {path} not found")
        return path.read_text()


def load_charts(charts_dir: Path | None = None, sql_dir: Path | None = None) -> list[Chart]:
    """Every chart module in `charts_dir` (files starting with '_' are helpers, not charts)."""
    charts_dir = Path(charts_dir or DEFAULT_CHARTS_DIR)
    sql_dir = Path(sql_dir or DEFAULT_SQL_DIR)
    charts = []
    for path in sorted(charts_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        chart = replace(_chart_of_module(path), sql_dir=sql_dir)
        chart.sql_text()  # fail at load time, not halfway through a report
        charts.append(chart)
    ids = [c.id for c in charts]
    if len(ids) != len(set(ids)):
        raise ChartError(f"duplicate chart ids in {charts_dir}: {ids}")
    return sorted(charts, key=lambda c: (c.order, c.id))


def charts_for_kind(kind: str, charts: list[Chart] | None = None) -> list[Chart]:
    """The charts (default: every registered one) drawn for a project of this kind, in report order."""
    return [chart for chart in (load_charts() if charts is None else charts) if chart.applies_to(kind)]


def get_chart(chart_id: str, charts_dir: Path | None = None, sql_dir: Path | None = None) -> Chart:
    for chart in load_charts(charts_dir, sql_dir):
        if chart.id == chart_id:
            return chart
    raise ChartError(f"no chart with id {chart_id!r}")


def _chart_of_module(path: Path) -> Chart:
    spec = importlib.util.spec_from_file_location(f"reports_chart_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ChartError(f"cannot import chart module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    chart = getattr(module, "CHART", None)
    if not isinstance(chart, Chart):
        raise ChartError(f"{path} must define CHART = Chart(...)")
    if chart.id != path.stem:
        raise ChartError(f"{path}: CHART.id {chart.id!r} must equal the module name {path.stem!r}")
    return chart
