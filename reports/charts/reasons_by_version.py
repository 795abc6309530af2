"""Reasons by version of the plugin or theme: does a release change why people leave?"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from reports.figures import count_axis, no_data_figure, reason_colours, sort_versions, style
from reports.registry import Chart

#: The newest versions drawn: the SDK sends the version, so their number is the sender's to choose.
MAX_VERSIONS = 12


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    versions = sort_versions(df["project_version"])[-MAX_VERSIONS:]
    df = df[df["project_version"].isin(versions)]
    fig = px.bar(
        df,
        x="project_version",
        y="deactivations",
        color="reason_label",
        color_discrete_map=reason_colours(df),
        category_orders={"project_version": versions},
        labels={"project_version": "Version", "deactivations": "Deactivations", "reason_label": "Reason"},
    )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category")
    count_axis(fig, df.groupby("project_version")["deactivations"].sum().max())
    return style(fig, x_title="Version of the plugin/theme", y_title="Deactivations")


CHART = Chart(
    id="reasons_by_version",
    title="Deactivation reasons by version",
    description="Deactivations per version of the plugin being deactivated (the 12 newest), by reason.",
    sql="chart_reasons_by_version.sql",
    figure=figure,
    order=30,
    kinds=("plugin",),
)
