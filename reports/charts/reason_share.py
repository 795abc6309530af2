"""Reason share: each reason's part of all deactivations in the period, as a donut."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import no_data_figure, reason_colours, style
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    colours = reason_colours(df)
    fig = go.Figure(
        go.Pie(
            labels=df["reason_label"],
            values=df["deactivations"],
            hole=0.45,
            sort=False,
            marker={"colors": [colours[label] for label in df["reason_label"]]},
            hovertemplate="%{label}<br>%{value} deactivations<br>%{percent}<extra></extra>",
        )
    )
    return style(fig)


CHART = Chart(
    id="reason_share",
    title="Share of each deactivation reason",
    description="Which reasons site admins give, as a share of all deactivations in the period.",
    sql="chart_reason_share.sql",
    figure=figure,
    order=20,
    kinds=("plugin",),
)
