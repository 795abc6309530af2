"""Deactivations by WordPress version."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import count_bars
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    return count_bars(
        df, "wp_version", category_title="WordPress version (major.minor)", versions=True, top=None
    )


CHART = Chart(
    id="wordpress_versions",
    title="Deactivations by WordPress version",
    description="Deactivations by the WordPress version (major.minor) of the site.",
    sql="chart_wordpress_versions.sql",
    figure=figure,
    order=40,
)
