"""Deactivations per day, with the trailing 7-day average to show the trend."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import no_data_figure, style
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    fig = go.Figure()
    fig.add_bar(x=df["day"], y=df["deactivations"], name="Deactivations", marker_color="#88CCEE")
    fig.add_scatter(
        x=df["day"],
        y=df["seven_day_average"],
        name="7-day average",
        mode="lines",
        line={"color": "#CC6677", "width": 3},
    )
    return style(fig, x_title="Day (UTC)", y_title="Deactivations")


CHART = Chart(
    id="deactivations_per_day",
    title="Deactivations per day",
    description="All deactivations per UTC day, with the average of the last 7 days.",
    sql="chart_deactivations_per_day.sql",
    figure=figure,
    order=5,
)
