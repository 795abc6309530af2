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
from reports.figures import DAY_MS, NO_DATA_MESSAGE, count_step, partial_days, version_key
from reports.registry import Chart, ChartError, charts_for_kind, get_chart, load_charts
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


def test_deactivations_per_day_average_only_over_seven_complete_days(settings, loaded):
    frame = _frame(settings, "deactivations_per_day", start=date(2026, 11, 10), end=date(2026, 11, 18))
    plugin = [e for e in loaded if e.project_hash == PLUGIN.hash]
    per_day = Counter(e.day for e in plugin)
    first_hour, last_hour = min(e.hour for e in plugin), max(e.hour for e in plugin)
    first_complete = first_hour.date() + timedelta(days=0 if first_hour.hour == 0 else 1)
    last_complete = last_hour.date() - timedelta(days=0 if last_hour.hour == 23 else 1)
    assert [pd.Timestamp(d).date() for d in frame["day"]] == [
        date(2026, 11, 10) + timedelta(days=i) for i in range(9)
    ]
    averaged = 0
    for row in frame.itertuples():
        day = pd.Timestamp(row.day).date()
        assert row.deactivations == per_day[day]
        window = [day - timedelta(days=i) for i in range(7)]
        if min(window) >= first_complete and day <= last_complete:
            assert row.seven_day_average == pytest.approx(sum(per_day[d] for d in window) / 7)
            averaged += 1
        else:  # never an "average" over fewer than 7 complete days
            assert pd.isna(row.seven_day_average), day
    assert averaged == 3  # Nov 16, 17, 18: the only days with 7 complete days up to them

    # A 3-day report of the first days draws no average line at all.
    short = _frame(settings, "deactivations_per_day", start=date(2026, 11, 10), end=date(2026, 11, 12))
    assert short["seven_day_average"].isna().all()
    assert [t.name for t in get_chart("deactivations_per_day").figure(short).data] == ["Deactivations"]


def _day_frame(days: list[date], counts: list[int], **partial) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": pd.to_datetime(days),
            "deactivations": counts,
            "seven_day_average": [None] * len(days),
            "data_from_hour": [partial.get("from_hour") if i == 0 else None for i in range(len(days))],
            "data_until_hour": [
                partial.get("until_hour") if i == len(days) - 1 else None for i in range(len(days))
            ],
        }
    )


def test_one_day_axis_has_whole_day_ticks_and_integer_counts():
    figure = get_chart("deactivations_per_day").figure(_day_frame([date(2026, 11, 20)], [2]))
    axis = figure.layout.xaxis
    assert axis.type == "date" and axis.dtick == DAY_MS and "%H" not in axis.tickformat
    assert axis.tick0 == "2026-11-20"
    assert figure.layout.yaxis.dtick == 1 and figure.layout.yaxis.tickformat == ",d"
    assert figure.data[0].width == pytest.approx(0.8 * DAY_MS), "a lone day's bar must be visible"


def test_partial_first_and_last_days_are_shaded_and_named():
    frame = _day_frame(
        [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)], [3, 9, 4], from_hour=14, until_hour=11
    )
    assert partial_days(frame) == {
        pd.Timestamp("2026-11-18"): "data from 14:00 UTC only",
        pd.Timestamp("2026-11-20"): "data until 11:00 UTC only",
    }
    figure = get_chart("deactivations_per_day").figure(frame)
    shaded = [(shape.x0, shape.x1) for shape in figure.layout.shapes]
    assert shaded == [
        ("2026-11-17T12:00:00", "2026-11-18T12:00:00"),
        ("2026-11-19T12:00:00", "2026-11-20T12:00:00"),
    ]
    assert [a.text for a in figure.layout.annotations] == ["partial day", "partial day"]


def test_partial_days_come_from_the_projects_first_and_last_hours(tmp_path, truth):
    local = Settings(
        RAW_STORE_URL=str(tmp_path / "raw"),
        WAREHOUSE_URL=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        DATA_DIR=tmp_path / "data",
        _env_file=None,
    )
    start = datetime(2026, 11, 18, 14, tzinfo=UTC)
    generated = generate_events(seed=8, start_hour=start, hours=24 + 8, events_per_hour=20)
    hours = [start + timedelta(hours=i) for i in range(24 + 8)]
    truth.load_events(local, generated.truth.events, hours, loaded_at=datetime(2026, 11, 21, tzinfo=UTC))
    build_analytics(local, publish=False)
    plugin = [e for e in generated.truth.events if e.project_hash == PLUGIN.hash]
    first, last = min(e.hour for e in plugin), max(e.hour for e in plugin)
    assert (first.hour, last.hour) == (14, 21)
    for chart_id in ("deactivations_per_day", "reasons_over_time"):
        frame = _frame(local, chart_id, start=date(2026, 11, 18), end=date(2026, 11, 19))
        assert set(partial_days(frame).values()) == {"data from 14:00 UTC only", "data until 22:00 UTC only"}


@pytest.mark.parametrize("chart", load_charts(), ids=lambda c: c.id)
def test_count_axes_tick_at_whole_numbers(settings, loaded, chart):
    """Whatever the counts, a count axis never ticks at 0.2: its step is a whole number from 0."""
    for start, end in ((date(2026, 11, 10), date(2026, 11, 18)), (date(2026, 11, 14), date(2026, 11, 14))):
        layout = chart.figure(_frame(settings, chart.id, start=start, end=end)).layout
        for name in ("xaxis", "yaxis"):
            axis = layout[name]
            if axis.tickformat == ",d":
                assert axis.dtick >= 1 and float(axis.dtick).is_integer() and axis.tick0 == 0
    assert [count_step(n) for n in (0.4, 1, 4, 6, 7, 13, 30, 301, 4000)] == [1, 1, 1, 1, 2, 5, 5, 100, 1000]


def test_counts_charts_mark_their_count_axis(settings, loaded):
    counted = {
        "deactivations_per_day": "yaxis",
        "reasons_over_time": "yaxis",
        "reasons_by_version": "yaxis",
        "wordpress_versions": "yaxis",
        "php_versions": "yaxis",
        "locales": "yaxis",
        "server_software": "yaxis",
        "top_terms": "xaxis",
    }
    for chart_id, axis in counted.items():
        figure = get_chart(chart_id).figure(_frame(settings, chart_id))
        assert figure.layout[axis].tickformat == ",d", chart_id


def test_version_comparison_shows_the_two_newest_versions_shares(settings, loaded):
    frame = _frame(settings, "version_comparison")
    figure = get_chart("version_comparison").figure(frame)
    plugin = [e for e in loaded if e.project_hash == PLUGIN.hash]
    versions = sorted({e.project_version for e in plugin}, key=version_key)[-2:]
    assert [t.name.split(" ")[0] for t in figure.data] == versions
    for trace, version in zip(figure.data, versions, strict=True):
        of_version = [e for e in plugin if e.project_version == version]
        counts = Counter(e.reason_label for e in of_version)
        assert trace.name == f"{version} ({len(of_version):,} deactivations)"
        for label, share, count in zip(trace.y, trace.x, trace.customdata, strict=True):
            assert count == counts[label] and share == pytest.approx(counts[label] / len(of_version))

    one = frame[frame["project_version"] == versions[-1]]
    single = get_chart("version_comparison").figure(one)
    assert len(single.data) == 1 and "Only version" in single.layout.annotations[0].text


def test_chart_kinds_keep_reason_charts_off_themes(tmp_path: Path):
    theme_ids = {c.id for c in charts_for_kind("theme")}
    assert theme_ids == {c.id for c in load_charts() if "theme" in c.kinds}
    assert not theme_ids & {"reasons_over_time", "reason_share", "reasons_by_version", "top_terms"}
    assert {"deactivations_per_day", "wordpress_versions"} <= theme_ids
    with pytest.raises(ChartError, match="kinds must be some of"):
        Chart(id="x", title="x", description="x", sql="x.sql", figure=lambda df: None, kinds=("widget",))
    assert Chart(id="x", title="x", description="x", sql="x.sql", figure=print, kinds=["plugin"]).kinds == (
        "plugin",
    )


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


def test_reasons_by_version_draws_only_the_newest_versions():
    """The SDK sends the version: a sender inventing hundreds must not make the chart unreadable."""
    versions = [f"1.{n}.0" for n in range(200)]
    frame = pd.DataFrame(
        {
            "project_version": versions,
            "reason_id": ["other"] * 200,
            "reason_label": ["Other"] * 200,
            "deactivations": [1] * 200,
        }
    )
    figure = get_chart("reasons_by_version").figure(frame)
    drawn = [str(v) for trace in figure.data for v in trace.x]
    assert drawn == versions[-12:]
