"""The report: one HTML page per project, and an index page linking them.

`DIR/index.html` lists every project with its headline numbers; `DIR/<project-slug>.html` holds one
project's headline (the period against the previous period of the same length), the registry's charts
drawn for its kind (reason charts for plugins only), and its written answers (masked, filterable by
reason). plotly.js is written once next to the pages (`DIR/plotly-<version>.min.js`) and loaded from
there, so the pages open offline and stay small. With `png=True`, each chart is also written as a
PNG through kaleido (which drives the installed Chromium; its own Chrome download does not work
offline).

Project names come from the registry in MongoDB. It is read before anything is written: when it does
not answer, the pymongo error goes up and the previous report stays as it was (no pages with hashes
for titles). Every page is built in memory first and then each file replaced whole.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import plotly
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from plotly.offline import get_plotlyjs
from pydantic import BaseModel

from deactivation.mongo import connect
from deactivation.projects import Project, load_registry, normalise_hash, resolve_project
from deactivation.settings import Settings
from deactivation.warehouse import Warehouse, open_warehouse
from reports.aggregates import AGGREGATES
from reports.figures import partial_days
from reports.registry import Chart, charts_for_kind, load_charts
from reports.sections import Answers, Headline, headline, written_answers

log = logging.getLogger(__name__)

INDEX_FILE = "index.html"
PLOTLY_FILE = f"plotly-{plotly.__version__}.min.js"
TEMPLATES_DIR = Path(__file__).parent / "templates"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Loggers of the PNG export that chat at INFO on every chart; quiet unless the root logger is verbose.
PNG_LOGGERS = ("kaleido", "choreographer", "logistro")
MAX_SLUG_CHARS = 60


class ProjectPage(BaseModel):
    hash: str
    name: str
    kind: str
    #: The page's path (None: not rendered by this run, e.g. with `project=`).
    html_path: str | None
    deactivations: int
    previous_deactivations: int
    #: Deactivations minus the previous period's; None when no data covers the previous period.
    change: int | None
    answers: int


class ReportSummary(BaseModel):
    #: The index page.
    html_path: str
    pages: list[ProjectPage]
    #: Every chart drawn, as "<project hash>/<chart id>".
    charts: list[str]
    pngs: list[str]
    #: Charts that showed the empty state (no data for that project and period).
    empty: list[str]
    start_day: str
    end_day: str
    #: The hashes of the projects whose page this run wrote.
    projects: list[str]
    png_skipped: str | None = None
    seconds: float


@dataclass(frozen=True)
class RenderedChart:
    key: str
    chart: Chart
    figure: go.Figure
    frame: pd.DataFrame
    empty: bool


@dataclass(frozen=True)
class ProjectReport:
    project: Project
    registered: bool
    file_name: str
    headline: Headline
    answers: Answers
    charts: tuple[RenderedChart, ...]


def render_report(
    settings: Settings,
    out_dir: Path,
    *,
    project: str | None = None,
    days: int | None = None,
    png: bool = False,
) -> ReportSummary:
    """Write the index and a page per project (or only `project`, by name or hash) over the last
    `days` days with data (all of them when None); PNGs of every chart only with `png`."""
    started = time.perf_counter()
    if days is not None and days < 1:
        raise ValueError("days must be at least 1")
    out_dir = Path(out_dir)
    warehouse = open_warehouse(settings)
    warehouse.ensure_tables([a.table for a in AGGREGATES])
    with_data = _projects_with_data(warehouse)
    # Before anything is written: without the registry's names there is no report.
    registry, chosen = _registry(settings, project, with_data)
    everyone = _all_projects(registry, with_data)
    start_day, end_day = _period(warehouse, days, chosen.hash if chosen else None)
    file_names = _file_names(everyone)

    charts = load_charts()
    reports = [
        _project_report(warehouse, charts, p, p.hash in registry, file_names[p.hash], start_day, end_day)
        for p in ([chosen] if chosen else everyone)
    ]
    rendered_hashes = {r.project.hash for r in reports}
    headlines = {r.project.hash: (r.headline, r.answers.total) for r in reports}
    for other in everyone:
        if other.hash not in rendered_hashes:
            headlines[other.hash] = (headline(warehouse, other.hash, start_day, end_day), None)

    out_dir.mkdir(parents=True, exist_ok=True)
    pages = {r.file_name: _project_page(r, start_day, end_day) for r in reports}
    index_rows = [
        _index_row(p, file_names[p.hash], *headlines[p.hash], out_dir, p.hash in rendered_hashes)
        for p in everyone
    ]
    _write_plotly_js(out_dir)
    for file_name, text in pages.items():
        _replace(out_dir / file_name, text)
    _replace(out_dir / INDEX_FILE, _index_page(index_rows, start_day, end_day))

    all_charts = [c for r in reports for c in r.charts]
    pngs, png_skipped = [], "not requested (--png)"
    if png:
        pngs, png_skipped = _write_pngs(reports, out_dir / "png")
    summary = ReportSummary(
        html_path=str(out_dir / INDEX_FILE),
        pages=[
            _page_summary(p, file_names[p.hash], *headlines[p.hash], out_dir, rendered_hashes)
            for p in everyone
        ],
        charts=[c.key for c in all_charts],
        pngs=pngs,
        empty=[c.key for c in all_charts if c.empty],
        start_day=start_day.isoformat(),
        end_day=end_day.isoformat(),
        projects=[r.project.hash for r in reports],
        png_skipped=png_skipped,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info("report: %d pages, %d charts in %.2fs", len(reports), len(all_charts), summary.seconds)
    return summary


def chart_frame(warehouse: Warehouse, chart: Chart, project_hash: str, start_day: date, end_day: date):
    """The rows a chart draws, for one project and period."""
    params = {"project_hash": project_hash, "start_day": start_day, "end_day": end_day}
    return warehouse.query(chart.sql_text(), params)


def page_slug(name: str) -> str:
    """A file-name-safe form of a project name: ASCII letters, digits and dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:MAX_SLUG_CHARS].strip("-")


# --- building -------------------------------------------------------------------------------------


def _project_report(
    warehouse: Warehouse,
    charts: list[Chart],
    project: Project,
    registered: bool,
    file_name: str,
    start_day: date,
    end_day: date,
) -> ProjectReport:
    drawn = []
    for chart in charts_for_kind(project.kind, charts):
        frame = chart_frame(warehouse, chart, project.hash, start_day, end_day)
        drawn.append(
            RenderedChart(f"{project.hash}/{chart.id}", chart, chart.figure(frame), frame, frame.empty)
        )
    return ProjectReport(
        project=project,
        registered=registered,
        file_name=file_name,
        headline=headline(warehouse, project.hash, start_day, end_day),
        answers=written_answers(warehouse, project.hash, start_day, end_day),
        charts=tuple(drawn),
    )


def _registry(
    settings: Settings, wanted: str | None, with_data: set[str]
) -> tuple[dict[str, Project], Project | None]:
    """hash → project from MongoDB, and the project `wanted` names (by name or hash, through
    deactivation.projects.resolve_project; an unregistered hash that still has data is accepted too).
    A pymongo error (MongoDB unreachable) goes up: no report without names."""
    client = connect(settings, timeout_ms=3000)
    try:
        database = client[settings.MONGODB_DB]
        registry = load_registry(database)
        if not wanted:
            return registry, None
        try:
            unregistered = normalise_hash(wanted)
        except ValueError:
            unregistered = None
        if unregistered and unregistered not in registry and unregistered in with_data:
            return registry, _unregistered(unregistered)
        return registry, resolve_project(database, wanted)
    finally:
        client.close()


def _projects_with_data(warehouse: Warehouse) -> set[str]:
    frame = warehouse.query("SELECT DISTINCT project_hash FROM daily_reason_counts")
    return set(frame["project_hash"])


def _unregistered(project_hash: str) -> Project:
    """A project with history whose registry entry is gone: a page still shows its data."""
    return Project(hash=project_hash, name=f"Unregistered project {project_hash[:8]}")


def _all_projects(registry: dict[str, Project], with_data: set[str]) -> list[Project]:
    projects = list(registry.values()) + [_unregistered(h) for h in sorted(with_data - set(registry))]
    return sorted(projects, key=lambda p: (p.name.casefold(), p.hash))


def _file_names(projects: list[Project]) -> dict[str, str]:
    """hash → page file name: the name's slug, with the hash's start when two names share a slug."""
    slugs = {p.hash: page_slug(p.name) or p.hash for p in projects}
    taken = [s for s in slugs.values()]
    return {
        h: f"{slug}-{h[:8]}.html" if taken.count(slug) > 1 or slug == "index" else f"{slug}.html"
        for h, slug in slugs.items()
    }


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


# --- pages ------------------------------------------------------------------------------------------

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def _project_page(report: ProjectReport, start_day: date, end_day: date) -> str:
    figures = []
    for item in report.charts:
        plot = item.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{item.chart.id}",
            config={"displaylogo": False, "responsive": True},
        )
        notes = [f"{day:%b %-d}: {note}" for day, note in partial_days(item.frame).items()]
        figures.append({"item": item, "plot": plot, "partial": notes})
    reasons = {}
    for answer in report.answers.shown:
        reasons.setdefault(answer.reason_id, [answer.reason_label, 0])[1] += 1
    return _environment.get_template("project.html.j2").render(
        project=report.project,
        registered=report.registered,
        headline=report.headline,
        change=change_text(report.headline),
        answers=report.answers,
        answer_reasons=sorted(reasons.items(), key=lambda kv: (-kv[1][1], kv[1][0])),
        show_answers=report.project.kind == "plugin" or report.answers.total > 0,
        figures=figures,
        start_day=start_day,
        end_day=end_day,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        plotly_file=PLOTLY_FILE,
    )


@dataclass(frozen=True)
class _IndexRow:
    project: Project
    file_name: str | None
    headline: Headline
    change: str
    answers: int | None


def _index_row(
    project: Project, file_name: str, head: Headline, answers: int | None, out_dir: Path, rendered: bool
) -> _IndexRow:
    exists = rendered or (out_dir / file_name).is_file()
    return _IndexRow(project, file_name if exists else None, head, change_text(head), answers)


def _index_page(rows: list[_IndexRow], start_day: date, end_day: date) -> str:
    return _environment.get_template("index.html.j2").render(
        rows=rows,
        start_day=start_day,
        end_day=end_day,
        days=(end_day - start_day).days + 1,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _page_summary(
    project: Project,
    file_name: str,
    head: Headline,
    answers: int | None,
    out_dir: Path,
    rendered: set[str],
) -> ProjectPage:
    return ProjectPage(
        hash=project.hash,
        name=project.name,
        kind=project.kind,
        html_path=str(out_dir / file_name) if project.hash in rendered else None,
        deactivations=head.deactivations,
        previous_deactivations=head.previous_deactivations,
        change=head.change,
        answers=answers or 0,
    )


def change_text(head: Headline) -> str:
    """The change against the previous period in words (`+12 (+8%) against 150 in Nov 1 – Nov 7`,
    `no change …`, or why there is nothing to compare), naming the period's partial days."""
    previous = _days_text(head.previous_start_day, head.previous_end_day)
    if head.change is None:
        return f"no data in the previous {head.days} days ({previous}){_partial_text(head)}"
    if head.change == 0:
        text = "no change"
    else:
        sign = "+" if head.change > 0 else "−"
        ratio = f" ({sign}{abs(head.change_ratio):.0%})" if head.change_ratio is not None else ""
        text = f"{sign}{abs(head.change):,}{ratio}"
    partly = ", data for part of it only" if head.previous_coverage == "partial" else ""
    return f"{text} against {head.previous_deactivations:,} in {previous}{partly}{_partial_text(head)}"


def _partial_text(head: Headline) -> str:
    """Says which days of the period are partial: their totals run low, so does the change."""
    notes = [f"{day:%b %-d} holds {note}" for day, note in sorted(head.partial_days.items())]
    return f" ({'; '.join(notes)})" if notes else ""


def _days_text(first: date, last: date) -> str:
    return f"{first:%b %-d}" if first == last else f"{first:%b %-d} – {last:%b %-d}"


def _write_plotly_js(out_dir: Path) -> None:
    path = out_dir / PLOTLY_FILE
    if not path.is_file():
        _replace(path, get_plotlyjs())


def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` whole: a reader sees the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- PNGs ---------------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def _quiet_png_loggers() -> Iterator[None]:
    """kaleido and choreographer log every browser step at INFO: WARNING unless DEBUG was asked for."""
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    loggers = [logging.getLogger(name) for name in PNG_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if not verbose:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _write_pngs(reports: list[ProjectReport], png_dir: Path) -> tuple[list[str], str | None]:
    chromium = find_chromium()
    if chromium is None:
        log.warning("no Chromium found (Debian package chromium): PNGs skipped")
        return [], "chromium not found"
    # lazy: kaleido (~0.6 s) loads only when PNGs are asked for.
    import kaleido

    charts = [(r, c) for r in reports for c in r.charts]
    paths = [png_dir / Path(r.file_name).stem / f"{c.chart.id}.png" for r, c in charts]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_png_loggers():
        # One browser for all charts; MathJax off because its default source is a CDN (we run offline).
        kaleido.start_sync_server(path=chromium, mathjax=False, silence_warnings=True)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                # A PNG stands alone, so it carries the project's name and the chart's title.
                figures = [
                    go.Figure(c.figure).update_layout(
                        title={"text": f"{r.project.name}: {c.chart.title}", "x": 0.01}
                    )
                    for r, c in charts
                ]
                heights = [f.layout.height or 450 for f in figures]  # kaleido ignores the layout height
                pio.write_images(figures, paths, format="png", width=1000, height=heights)
        finally:
            kaleido.stop_sync_server(silence_warnings=True)
    return [str(p) for p in paths], None
