"""Reasons over time: stacked daily deactivations, one colour per reason."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import count_axis, day_axis, mark_partial_days, no_data_figure, reason_colours, style
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    colours = reason_colours(df)
    order = df.groupby("reason_label")["deactivations"].sum().sort_values(ascending=False).index
    fig = go.Figure()
    for label in order:
        rows = df[df["reason_label"] == label]
        fig.add_bar(
            x=rows["day"],
            y=rows["deactivations"],
            name=label,
            marker_color=colours[label],
            hovertemplate="%{x|%Y-%m-%d}: %{y} %{fullData.name}<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    day_axis(fig, df["day"])
    count_axis(fig, df.groupby("day")["deactivations"].sum().max())
    mark_partial_days(fig, df)
    return style(fig, x_title="Day (UTC)", y_title="Deactivations")


CHART = Chart(
    id="reasons_over_time",
    title="Deactivation reasons over time",
    description="Deactivations per UTC day, stacked by the reason the site admin gave (0 on days "
    "without any). Shaded days hold only part of a day's data.",
    sql="chart_reasons_over_time.sql",
    figure=figure,
    order=10,
    kinds=("plugin",),
)
