"""Reasons over time: stacked daily deactivations, one colour per reason."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from reports.figures import no_data_figure, reason_colours, style
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    fig = px.bar(
        df,
        x="day",
        y="deactivations",
        color="reason_label",
        color_discrete_map=reason_colours(df),
        labels={"day": "Day (UTC)", "deactivations": "Deactivations", "reason_label": "Reason"},
    )
    fig.update_layout(barmode="stack")
    return style(fig, x_title="Day (UTC)", y_title="Deactivations")


CHART = Chart(
    id="reasons_over_time",
    title="Deactivation reasons over time",
    description="Deactivations per day, stacked by the reason the site admin gave.",
    sql="chart_reasons_over_time.sql",
    figure=figure,
    order=10,
)
