"""Reasons by version of the plugin or theme: does a release change why people leave?"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from reports.figures import no_data_figure, reason_colours, sort_versions, style
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure()
    fig = px.bar(
        df,
        x="project_version",
        y="deactivations",
        color="reason_label",
        color_discrete_map=reason_colours(df),
        category_orders={"project_version": sort_versions(df["project_version"])},
        labels={"project_version": "Version", "deactivations": "Deactivations", "reason_label": "Reason"},
    )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category")
    return style(fig, x_title="Version of the plugin/theme", y_title="Deactivations")


CHART = Chart(
    id="reasons_by_version",
    title="Deactivation reasons by version",
    description="Deactivations per version of the plugin or theme being deactivated, by reason.",
    sql="chart_reasons_by_version.sql",
    figure=figure,
    order=30,
)
