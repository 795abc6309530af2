"""Top terms per reason: the words site admins use most when they explain a reason."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.figures import count_axis, no_data_figure, reason_colours, style
from reports.registry import Chart

COLUMNS = 2


def figure(df: pd.DataFrame) -> go.Figure:
    if df.empty:
        return no_data_figure("No written answers used a word twice in this period")
    colours = reason_colours(df)
    reasons = df.groupby("reason_label")["mentions"].sum().sort_values(ascending=False).index.tolist()
    rows = math.ceil(len(reasons) / COLUMNS)
    fig = make_subplots(
        rows=rows,
        cols=COLUMNS,
        subplot_titles=reasons,
        horizontal_spacing=0.22,
        vertical_spacing=min(0.3 / rows, 0.12),
    )
    for index, label in enumerate(reasons):
        terms = df[df["reason_label"] == label].sort_values(["mentions", "term"], ascending=[True, False])
        fig.add_bar(
            x=terms["mentions"],
            y=terms["term"],
            orientation="h",
            name=label,
            marker_color=colours[label],
            showlegend=False,
            hovertemplate="%{y}: %{x} mentions<extra></extra>",
            row=index // COLUMNS + 1,
            col=index % COLUMNS + 1,
        )
    fig.update_xaxes(title_text="Mentions", row=rows)
    count_axis(fig, df["mentions"].max(), axis="x")
    fig.update_yaxes(title_text="Word", col=1)
    fig.update_yaxes(dtick=1)  # label every bar, however many
    style(fig)
    fig.update_layout(height=max(420, 240 * rows + 80))
    return fig


CHART = Chart(
    id="top_terms",
    title="Top words in written answers, per reason",
    description="The most frequent words of the free-text answers (stop words, e-mail addresses, "
    "URLs, numbers and words used only once removed).",
    sql="chart_top_terms.sql",
    figure=figure,
    order=80,
    kinds=("plugin",),
)
