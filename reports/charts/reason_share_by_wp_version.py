"""Reason share by WordPress version.

How the mix of deactivation reasons differs between WordPress major versions (x.y): each bar is one
version's deactivations split by reason.

Promoted from 02-prototype-a-chart.ipynb by `deact chart promote`; edit it here from now on.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import no_data_figure, reason_colours, style, version_key
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    colours = reason_colours(df)
    fig = go.Figure()
    for label, rows in df.groupby("reason_label", sort=False):
        fig.add_trace(
            go.Bar(
                x=rows["share"],
                y=rows["wordpress_version"],
                name=label,
                orientation="h",
                marker_color=colours[label],
                customdata=rows["deactivations"],
                hovertemplate="WordPress %{y}: %{x:.1%} (%{customdata} deactivations)<extra></extra>",
            )
        )
    versions = sorted(df["wordpress_version"].unique(), key=version_key)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(categoryorder="array", categoryarray=versions)
    fig.update_xaxes(tickformat=".0%")
    return style(fig, x_title="share of the version's deactivations", y_title="WordPress version")


CHART = Chart(
    id="reason_share_by_wp_version",
    title="Reason share by WordPress version",
    description=(
        "How the mix of deactivation reasons differs between WordPress major versions (x.y): each "
        "bar is one version's deactivations split by reason."
    ),
    sql="chart_reason_share_by_wp_version.sql",
    figure=figure,
    kinds=("plugin",),
)
