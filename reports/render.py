"""The report: every registered chart for every project, in one self-contained HTML file.

plotly.js is inlined once, so the file opens offline. Where Chromium is installed, each chart is
also written as a PNG through kaleido (which drives that Chromium; its own Chrome download does
not work offline).
"""

from __future__ import annotations

import html
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from pydantic import BaseModel

from deactivation.settings import Settings
from deactivation.warehouse import Warehouse, open_warehouse
from reports.aggregates import AGGREGATES
from reports.registry import Chart, load_charts

log = logging.getLogger(__name__)

REPORT_FILE = "deactivation-report.html"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ReportSummary(BaseModel):
    html_path: str
    #: Every chart drawn, as "<project hash>/<chart id>".
    charts: list[str]
    pngs: list[str]
    #: Charts that showed the empty state (no data for that project and period).
    empty: list[str]
    start_day: str
    end_day: str
    projects: list[str]
    png_skipped: str | None = None
    seconds: float


@dataclass(frozen=True)
class RenderedChart:
    key: str
    chart: Chart
    figure: go.Figure
    empty: bool


def render_report(
    settings: Settings,
    out_dir: Path,
    *,
    project: str | None = None,
    days: int | None = None,
    png: bool = True,
) -> ReportSummary:
    """Write the HTML report (and PNGs) for one project or all, over the last `days` days of data."""
    started = time.perf_counter()
    if days is not None and days < 1:
        raise ValueError("days must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables([a.table for a in AGGREGATES])
    names = _project_names(settings)
    hashes = [project] if project else sorted(set(names) | _projects_with_data(warehouse))
    start_day, end_day = _period(warehouse, days, project)
    charts = load_charts()
    sections = []
    for project_hash in sorted(hashes, key=lambda h: (names.get(h, "~"), h)):
        rendered = [_render_chart(warehouse, chart, project_hash, start_day, end_day) for chart in charts]
        sections.append((project_hash, names.get(project_hash, project_hash), rendered))

    html_path = out_dir / REPORT_FILE
    html_path.write_text(_page(sections, start_day, end_day), encoding="utf-8")
    all_charts = [r for _, _, rendered in sections for r in rendered]
    pngs, png_skipped = [], None
    if png:
        pngs, png_skipped = _write_pngs(all_charts, out_dir / "png")
    else:
        png_skipped = "not requested"
    return ReportSummary(
        html_path=str(html_path),
        charts=[r.key for r in all_charts],
        pngs=pngs,
        empty=[r.key for r in all_charts if r.empty],
        start_day=start_day.isoformat(),
        end_day=end_day.isoformat(),
        projects=[h for h, _, _ in sections],
        png_skipped=png_skipped,
        seconds=round(time.perf_counter() - started, 3),
    )


def chart_frame(warehouse: Warehouse, chart: Chart, project_hash: str, start_day: date, end_day: date):
    """The rows a chart draws, for one project and period."""
    params = {"project_hash": project_hash, "start_day": start_day, "end_day": end_day}
    return warehouse.query(chart.sql_text(), params)


def _render_chart(
    warehouse: Warehouse, chart: Chart, project_hash: str, start: date, end: date
) -> RenderedChart:
    frame = chart_frame(warehouse, chart, project_hash, start, end)
    figure = chart.figure(frame)
    return RenderedChart(f"{project_hash}/{chart.id}", chart, figure, empty=frame.empty)


def _project_names(settings: Settings) -> dict[str, str]:
    """hash → name from the project registry in MongoDB (hashes are shown when it is unreachable)."""
    from pymongo.errors import PyMongoError

    from deactivation.mongo import connect
    from deactivation.projects import load_registry

    client = connect(settings, timeout_ms=3000)
    try:
        return {h: p.name for h, p in load_registry(client[settings.MONGODB_DB]).items()}
    except PyMongoError as exc:
        log.warning("project registry unreachable, showing hashes instead of names: %s", type(exc).__name__)
        return {}
    finally:
        client.close()


def _projects_with_data(warehouse: Warehouse) -> set[str]:
    frame = warehouse.query("SELECT DISTINCT project_hash FROM daily_reason_counts")
    return set(frame["project_hash"])


def _period(warehouse: Warehouse, days: int | None, project: str | None) -> tuple[date, date]:
    """The last `days` days up to the newest day with data (all days when `days` is None).

    The data of `project` decides when one is given and has any; otherwise all projects' data.
    """
    first, last = _data_range(warehouse, project) if project else (None, None)
    if last is None:
        first, last = _data_range(warehouse, None)
    if first is None or last is None:
        today = datetime.now(UTC).date()
        return today - timedelta(days=(days or 1) - 1), today
    if days is None:
        return first, last
    return last - timedelta(days=days - 1), last


def _data_range(warehouse: Warehouse, project: str | None) -> tuple[date | None, date | None]:
    where, params = ("WHERE project_hash = @project_hash", {"project_hash": project}) if project else ("", {})
    frame = warehouse.query(
        f"SELECT MIN(day) AS first_day, MAX(day) AS last_day FROM daily_reason_counts {where}", params
    )
    first, last = frame["first_day"].iloc[0], frame["last_day"].iloc[0]
    if pd.isna(last):
        return None, None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _write_pngs(rendered: list[RenderedChart], png_dir: Path) -> tuple[list[str], str | None]:
    chromium = find_chromium()
    if chromium is None:
        log.warning("no Chromium found (Debian package chromium): PNGs skipped")
        return [], "chromium not found"
    import warnings

    import kaleido
    import plotly.io as pio

    png_dir.mkdir(parents=True, exist_ok=True)
    paths = [png_dir / f"{r.key.replace('/', '__')}.png" for r in rendered]
    # One browser for all charts; MathJax off because its default source is a CDN (we run offline).
    kaleido.start_sync_server(path=chromium, mathjax=False, silence_warnings=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")
            # A PNG stands alone, so it carries the title the HTML shows above each chart.
            figures = [
                go.Figure(r.figure).update_layout(title={"text": r.chart.title, "x": 0.01}) for r in rendered
            ]
            heights = [f.layout.height or 450 for f in figures]  # kaleido ignores the layout height
            pio.write_images(figures, paths, format="png", width=1000, height=heights)
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
    return [str(p) for p in paths], None


def _page(sections, start_day: date, end_day: date) -> str:
    from plotly.offline import get_plotlyjs

    body = []
    toc = []
    for project_hash, name, rendered in sections:
        anchor = f"project-{project_hash}"
        toc.append(f'<li><a href="#{anchor}">{html.escape(name)}</a></li>')
        body.append(f'<section class="project" id="{anchor}"><h2>{html.escape(name)}</h2>')
        body.append(f'<p class="hash">Project {html.escape(project_hash)}</p>')
        for item in rendered:
            div_id = f"chart-{project_hash}-{item.chart.id}"
            plot = item.figure.to_html(
                full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False}
            )
            state = "empty" if item.empty else "data"
            body.append(
                f'<figure class="chart" data-chart="{item.chart.id}" data-state="{state}">'
                f"<figcaption><h3>{html.escape(item.chart.title)}</h3>"
                f"<p>{html.escape(item.chart.description)}</p></figcaption>{plot}</figure>"
            )
        body.append("</section>")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Deactivation report {start_day} to {end_day}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
.chart {{ margin: 0 0 2.5rem 0; }} .chart h3 {{ margin-bottom: .2rem; }}
.chart p, .hash {{ color: #555; margin-top: 0; }}
section.project {{ border-top: 2px solid #ddd; padding-top: 1rem; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>Deactivation report</h1>
<p>Period: {start_day} to {end_day} (UTC days). Generated {generated}.</p>
<ul>{"".join(toc)}</ul>
{"".join(body)}
</body>
</html>
"""
