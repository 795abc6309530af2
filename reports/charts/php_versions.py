"""Deactivations by PHP version."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import count_bars
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    return count_bars(df, "php_version", category_title="PHP version (major.minor)", versions=True, top=None)


CHART = Chart(
    id="php_versions",
    title="Deactivations by PHP version",
    description="Deactivations by the PHP version (major.minor) the site runs on.",
    sql="chart_php_versions.sql",
    figure=figure,
    order=50,
)
