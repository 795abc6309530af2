"""Shared figure building blocks for chart modules: layout, the empty state, colours, version order,
count axes with whole-number ticks, UTC-day axes and the marking of partial days."""

from __future__ import annotations

import re
from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from deactivation.reasons import BUILT_IN_REASONS, THEME_SWITCH

NO_DATA_MESSAGE = "No deactivations for this project in the selected period"

_KNOWN_REASONS = [*BUILT_IN_REASONS, THEME_SWITCH]
_PALETTE = qualitative.Safe + qualitative.Vivid
DAY_MS = 86_400_000
#: At most this many ticks on a count axis (plotly would otherwise put ticks at 0.2 for small counts).
COUNT_TICKS = 6
PARTIAL_FILL = "rgba(120, 120, 120, 0.15)"


def no_data_figure(message: str = NO_DATA_MESSAGE) -> go.Figure:
    """The empty state: no axes, one centred message."""
    figure = go.Figure()
    figure.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 16}
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return style(figure)


def style(figure: go.Figure, *, x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        legend_title_text="",
        height=420,
    )
    if x_title:
        figure.update_xaxes(title_text=x_title)
    if y_title:
        figure.update_yaxes(title_text=y_title)
    return figure


def reason_colours(frame: pd.DataFrame) -> dict[str, str]:
    """A stable colour per reason label: built-in reasons always get the same colour."""
    custom = sorted(set(frame["reason_id"]) - set(_KNOWN_REASONS))
    position = {reason: i for i, reason in enumerate([*_KNOWN_REASONS, *custom])}
    pairs = frame[["reason_id", "reason_label"]].drop_duplicates()
    return {
        label: _PALETTE[position[reason] % len(_PALETTE)]
        for reason, label in zip(pairs["reason_id"], pairs["reason_label"], strict=True)
    }


def version_key(version: str) -> tuple:
    """Order versions numerically (1.10 after 1.9); 'unknown' and other text last."""
    parts = re.findall(r"\d+", version)
    return (0, tuple(int(p) for p in parts)) if parts else (1, (version,))


def sort_versions(values) -> list[str]:
    return sorted({str(v) for v in values}, key=version_key)


def count_bars(
    frame: pd.DataFrame, column: str, *, category_title: str, versions: bool = False, top: int | None = None
) -> go.Figure:
    """Deactivations per value of `column`: versions in version order, other values largest first."""
    if frame.empty:
        return no_data_figure()
    if versions:
        order = sort_versions(frame[column])
        frame = frame.set_index(column).loc[order].reset_index()
    else:
        frame = frame.sort_values(["deactivations", column], ascending=[False, True]).head(top)
    figure = go.Figure(
        go.Bar(
            x=frame[column].astype(str),
            y=frame["deactivations"],
            marker_color="#44AA99",
            hovertemplate="%{x}: %{y} deactivations<extra></extra>",
        )
    )
    figure.update_xaxes(type="category")
    count_axis(figure, frame["deactivations"].max())
    return style(figure, x_title=category_title, y_title="Deactivations")


def count_step(max_count: float, ticks: int = COUNT_TICKS) -> int:
    """The smallest 1-2-5 step, at least 1, that puts at most `ticks` ticks between 0 and `max_count`."""
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * magnitude
            if max_count / step <= ticks:
                return step
        magnitude *= 10


def count_axis(figure: go.Figure, max_count: float, *, axis: str = "y") -> go.Figure:
    """A count axis (every one of that letter, subplots too): whole-number ticks from 0, never 0.2."""
    update = figure.update_yaxes if axis == "y" else figure.update_xaxes
    update(tick0=0, dtick=count_step(max(float(max_count), 1.0)), tickformat=",d", rangemode="tozero")
    return figure


def day_axis(figure: go.Figure, days) -> go.Figure:
    """An x axis of whole UTC days: ticks on midnights labelled as dates (never `23:59:59.9996`),
    one per day up to two weeks, weekly up to 14 weeks, every 4 weeks beyond, half a day of padding."""
    stamps = pd.to_datetime(pd.Series(list(days)))
    first, last = stamps.min().normalize(), stamps.max().normalize()
    span = (last - first).days + 1
    step = 1 if span <= 14 else 7 if span <= 98 else 28
    half_day = timedelta(hours=12)
    figure.update_xaxes(
        type="date",
        tick0=first.strftime("%Y-%m-%d"),
        dtick=step * DAY_MS,
        tickformat="%b %-d" if first.year == last.year else "%Y-%m-%d",
        hoverformat="%Y-%m-%d",
        range=[(first - half_day).isoformat(), (last + half_day).isoformat()],
    )
    # A day wide less a gap: plotly's own width comes from the spacing of bars, none for one day.
    figure.update_traces(width=0.8 * DAY_MS, selector={"type": "bar"})
    return figure


def partial_days(frame: pd.DataFrame) -> dict[pd.Timestamp, str]:
    """Day → why it is partial, from a chart frame's `data_from_hour` / `data_until_hour` columns
    (set on the project's first day of data when it starts after 00:00 UTC, and on its last when it
    ends before 24:00)."""
    if frame.empty or "data_from_hour" not in frame or "data_until_hour" not in frame:
        return {}
    notes: dict[pd.Timestamp, str] = {}
    for day, from_hour, until_hour in frame[["day", "data_from_hour", "data_until_hour"]].itertuples(
        index=False
    ):
        parts = []
        if pd.notna(from_hour):
            parts.append(f"from {int(from_hour):02d}:00")
        if pd.notna(until_hour):
            parts.append(f"until {int(until_hour):02d}:00")
        if parts:
            notes[pd.Timestamp(day).normalize()] = "data " + " ".join(parts) + " UTC only"
    return notes


def mark_partial_days(figure: go.Figure, frame: pd.DataFrame) -> go.Figure:
    """Shade each partial day and label it, so a short first or last day does not read as a dip."""
    half_day = timedelta(hours=12)
    for day, note in partial_days(frame).items():
        figure.add_vrect(
            x0=(day - half_day).isoformat(),
            x1=(day + half_day).isoformat(),
            fillcolor=PARTIAL_FILL,
            line_width=0,
            layer="below",
            annotation_text="partial day",
            annotation_position="top",
            annotation_font={"size": 11, "color": "#555"},
            annotation_hovertext=note,
        )
    return figure
