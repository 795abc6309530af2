"""Deactivations by web server."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import count_bars
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    return count_bars(df, "server_software", category_title="Web server", versions=False, top=10)


CHART = Chart(
    id="server_software",
    title="Deactivations by web server",
    description="Deactivations by the web server software of the site (the SDK sends it optionally).",
    sql="chart_server_software.sql",
    figure=figure,
    order=70,
)
