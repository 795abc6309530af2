"""Two versions compared: each reason's share of the deactivations of the plugin's two newest versions."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import no_data_figure, sort_versions, style
from reports.registry import Chart

#: Older version first, lighter.
VERSION_COLOURS = ("#88CCEE", "#332288")


def compared_versions(df: pd.DataFrame) -> list[str]:
    """The two newest versions in the frame (numeric order), older first; one if only one exists."""
    return sort_versions(df["project_version"])[-2:]


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    versions = compared_versions(df)
    compared = df[df["project_version"].isin(versions)]
    # Every reason of either version on both, so a reason one version never got shows as 0%.
    labels = compared.groupby("reason_label")["deactivations"].sum().sort_values().index.tolist()
    fig = go.Figure()
    for version, colour in zip(versions, VERSION_COLOURS[-len(versions) :], strict=True):
        rows = compared[compared["project_version"] == version].set_index("reason_label")
        total = int(rows["deactivations"].sum())
        fig.add_bar(
            x=[float(rows["share"].get(label, 0.0)) for label in labels],
            y=labels,
            customdata=[int(rows["deactivations"].get(label, 0)) for label in labels],
            orientation="h",
            name=f"{version} ({total:,} deactivations)",
            marker_color=colour,
            hovertemplate="%{y}: %{x:.1%} (%{customdata})<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(barmode="group", legend={"traceorder": "reversed"})
    fig.update_xaxes(tickformat=".0%", rangemode="tozero")
    if len(versions) == 1:
        fig.add_annotation(
            text=f"Only version {versions[0]} had deactivations in this period",
            x=1,
            y=1.08,
            xref="paper",
            yref="paper",
            xanchor="right",
            showarrow=False,
        )
    style(fig, x_title="Share of the version's deactivations", y_title="Reason")
    fig.update_layout(height=max(420, 60 + 48 * len(labels)))
    return fig


CHART = Chart(
    id="version_comparison",
    title="The two newest versions compared",
    description="Each reason's share of the deactivations of the plugin's two newest versions in the "
    "period, side by side: did the release change why people leave?",
    sql="chart_version_comparison.sql",
    figure=figure,
    order=35,
    kinds=("plugin",),
)
