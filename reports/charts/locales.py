"""Deactivations by site language."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from reports.figures import count_bars
from reports.registry import Chart


def figure(df: pd.DataFrame) -> go.Figure:
    return count_bars(df, "locale", category_title="Site locale", versions=False, top=15)


CHART = Chart(
    id="locales",
    title="Deactivations by site language",
    description="Deactivations by the WordPress locale of the site (the 15 most frequent).",
    sql="chart_locales.sql",
    figure=figure,
    order=60,
)
