"""The chart registry and every chart's figure: titles, axis labels, reason labels, empty states."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from deactivation.generator import DEMO_PROJECTS, generate_events
from deactivation.reasons import BUILT_IN_REASONS
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse
from reports.analytics import build_analytics
from reports.figures import NO_DATA_MESSAGE
from reports.registry import ChartError, get_chart, load_charts
from reports.render import chart_frame

REQUIRED_CHARTS = {
    "reasons_over_time",
    "reason_share",
    "deactivations_per_day",
    "reasons_by_version",
    "wordpress_versions",
    "php_versions",
    "top_terms",
}
CHART_PARAMS = {"project_hash", "start_day", "end_day"}
START = datetime(2026, 11, 10, tzinfo=UTC)
HOURS = 24 * 9
PLUGIN = DEMO_PROJECTS[0]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """One warehouse for the module (charts only read it); no MongoDB needed."""
    directory = tmp_path_factory.mktemp("charts")
    return Settings(
        RAW_STORE_URL=str(directory / "raw"),
        WAREHOUSE_URL=f"duckdb:///{directory / 'warehouse.duckdb'}",
        DATA_DIR=directory / "data",
        _env_file=None,
    )


@pytest.fixture(scope="module")
def loaded(settings, truth):
    """Nine days of generated deactivations in the warehouse, aggregated."""
    generated = generate_events(seed=3, start_hour=START, hours=HOURS, events_per_hour=8)
    hours = [START + timedelta(hours=i) for i in range(HOURS)]
    truth.load_events(settings, generated.truth.events, hours, loaded_at=datetime(2026, 11, 20, tzinfo=UTC))
    build_analytics(settings, publish=False)
    return generated.truth.events


def _frame(settings, chart_id, project=PLUGIN.hash, start=date(2026, 11, 10), end=date(2026, 11, 18)):
    return chart_frame(open_warehouse(settings), get_chart(chart_id), project, start, end)


def test_registry_lists_every_required_chart_with_its_sql():
    charts = load_charts()
    assert {c.id for c in charts} >= REQUIRED_CHARTS
    for chart in charts:
        assert chart.title and chart.description
        params = set(re.findall(r"@(\w+)", chart.sql_text()))
        assert params <= CHART_PARAMS, f"{chart.id} uses parameters {params - CHART_PARAMS}"


def test_adding_a_chart_is_one_module_and_one_sql_file(tmp_path: Path):
    charts_dir, sql_dir = tmp_path / "charts", tmp_path / "sql"
    charts_dir.mkdir()
    sql_dir.mkdir()
    (sql_dir / "chart_sites.sql").write_text("SELECT 1 AS sites")
    (charts_dir / "sites.py").write_text(
        "import plotly.graph_objects as go\n"
        "from reports.registry import Chart\n"
        "def figure(df):\n    return go.Figure(go.Bar(x=['a'], y=df['sites']))\n"
        "CHART = Chart(id='sites', title='Sites', description='d', sql='chart_sites.sql', figure=figure)\n"
    )
    (charts_dir / "_helpers.py").write_text("HELPER = True\n")
    [chart] = load_charts(charts_dir, sql_dir)
    assert chart.id == "sites" and chart.sql_text() == "SELECT 1 AS sites"

    (charts_dir / "broken.py").write_text("CHART = None\n")
    with pytest.raises(ChartError, match="must define CHART"):
        load_charts(charts_dir, sql_dir)


@pytest.mark.parametrize("chart", load_charts(), ids=lambda c: c.id)
def test_every_chart_draws_with_labels_and_no_reason_ids(settings, loaded, chart):
    frame = _frame(settings, chart.id)
    assert not frame.empty
    figure = chart.figure(frame)
    assert isinstance(figure, go.Figure) and figure.data
    if not isinstance(figure.data[0], go.Pie):
        axes = figure.layout.to_plotly_json()
        titled = {name[:5] for name, axis in axes.items() if name[1:5] == "axis" and axis.get("title")}
        assert titled == {"xaxis", "yaxis"}, "both axes need a title"
    shown = {str(t.name) for t in figure.data} | {a.text for a in figure.layout.annotations}
    shown |= {str(v) for t in figure.data if isinstance(t, go.Pie) for v in t.labels}
    assert not shown & (set(BUILT_IN_REASONS) - {"other", "none"}), "reason ids shown instead of labels"


@pytest.mark.parametrize("chart", load_charts(), ids=lambda c: c.id)
def test_every_chart_has_an_empty_state(settings, loaded, chart):
    frame = _frame(settings, chart.id, project="11111111-2222-4333-8444-555555555555")
    assert frame.empty
    figure = chart.figure(frame)
    assert not figure.data
    assert figure.layout.annotations and figure.layout.annotations[0].text


def test_deactivations_per_day_totals_and_seven_day_average(settings, loaded):
    frame = _frame(settings, "deactivations_per_day", start=date(2026, 11, 12), end=date(2026, 11, 18))
    per_day = Counter(e.day for e in loaded if e.project_hash == PLUGIN.hash)
    first_day = min(per_day)  # the average never counts days before the project's first data
    assert [pd.Timestamp(d).date() for d in frame["day"]] == [
        date(2026, 11, 12) + timedelta(days=i) for i in range(7)
    ]
    for row in frame.itertuples():
        day = pd.Timestamp(row.day).date()
        assert row.deactivations == per_day[day]
        window = [day - timedelta(days=i) for i in range(7) if day - timedelta(days=i) >= first_day]
        assert row.seven_day_average == pytest.approx(sum(per_day[d] for d in window) / len(window))


def test_top_terms_hold_no_personal_data(settings, loaded, truth):
    frame = _frame(settings, "top_terms")
    assert not frame.empty
    assert frame.groupby("reason_id").size().max() <= 8
    assert (frame["mentions"] >= 2).all()
    for term in frame["term"]:
        assert re.fullmatch(r"[^\W\d_]{3,}", term), term
    assert not {"jane", "doe", "example", "com", "https"} & set(frame["term"])
    expected = Counter(
        (e.reason_id, t)
        for e in loaded
        if e.project_hash == PLUGIN.hash
        for t in truth.answer_terms(e.reason_info)
    )
    for row in frame.itertuples():
        assert row.mentions == expected[row.reason_id, row.term]


def test_empty_state_message_is_readable():
    figure = get_chart("reason_share").figure(pd.DataFrame(columns=["reason_id", "reason_label"]))
    assert figure.layout.annotations[0].text == NO_DATA_MESSAGE


def test_versions_sort_numerically_and_unknown_last():
    from reports.figures import sort_versions

    assert sort_versions(["1.10.0", "unknown", "1.9.0", "1.9.0", "2.0"]) == [
        "1.9.0",
        "1.10.0",
        "2.0",
        "unknown",
    ]
