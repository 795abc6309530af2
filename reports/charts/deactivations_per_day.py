"""Deactivations per day, with the 7-day average where a full week of complete days exists."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import count_axis, day_axis, mark_partial_days, no_data_figure, partial_days, style
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    notes = partial_days(df)
    hover = [notes.get(pd.Timestamp(day).normalize(), "") for day in df["day"]]
    fig = go.Figure()
    fig.add_bar(
        x=df["day"],
        y=df["deactivations"],
        name="Deactivations",
        marker_color="#88CCEE",
        customdata=hover,
        hovertemplate="%{x|%Y-%m-%d}: %{y} deactivations %{customdata}<extra></extra>",
    )
    average = df["seven_day_average"]
    if average.notna().any():  # no "7-day average" line drawn over fewer than 7 complete days
        fig.add_scatter(
            x=df["day"],
            y=average,
            name="7-day average",
            mode="lines+markers" if average.notna().sum() == 1 else "lines",
            line={"color": "#CC6677", "width": 3},
            hovertemplate="%{x|%Y-%m-%d}: 7-day average %{y:.1f}<extra></extra>",
        )
    fig.update_layout(showlegend=True)
    day_axis(fig, df["day"])
    count_axis(fig, max(df["deactivations"].max(), average.max(skipna=True) if average.notna().any() else 0))
    mark_partial_days(fig, df)
    return style(fig, x_title="Day (UTC)", y_title="Deactivations")


CHART = Chart(
    id="deactivations_per_day",
    title="Deactivations per day",
    description="All deactivations per UTC day (0 on days without any), with the average of the last "
    "7 days where 7 complete days of data exist. Shaded days hold only part of a day's data.",
    sql="chart_deactivations_per_day.sql",
    figure=figure,
    order=5,
)
