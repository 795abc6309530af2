"""Shared figure building blocks for chart modules: layout, the empty state, colours, version order."""

from __future__ import annotations

import re

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from deactivation.reasons import BUILT_IN_REASONS, THEME_SWITCH

NO_DATA_MESSAGE = "No deactivations for this project in the selected period"

_KNOWN_REASONS = [*BUILT_IN_REASONS, THEME_SWITCH]
_PALETTE = qualitative.Safe + qualitative.Vivid


def no_data_figure(message: str = NO_DATA_MESSAGE) -> go.Figure:
    """The empty state: no axes, one centred message."""
    figure = go.Figure()
    figure.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 16}
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return style(figure)


def style(figure: go.Figure, *, x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        legend_title_text="",
        height=420,
    )
    if x_title:
        figure.update_xaxes(title_text=x_title)
    if y_title:
        figure.update_yaxes(title_text=y_title)
    return figure


def reason_colours(frame: pd.DataFrame) -> dict[str, str]:
    """A stable colour per reason label: built-in reasons always get the same colour."""
    custom = sorted(set(frame["reason_id"]) - set(_KNOWN_REASONS))
    position = {reason: i for i, reason in enumerate([*_KNOWN_REASONS, *custom])}
    pairs = frame[["reason_id", "reason_label"]].drop_duplicates()
    return {
        label: _PALETTE[position[reason] % len(_PALETTE)]
        for reason, label in zip(pairs["reason_id"], pairs["reason_label"], strict=True)
    }


def version_key(version: str) -> tuple:
    """Order versions numerically (1.10 after 1.9); 'unknown' and other text last."""
    parts = re.findall(r"\d+", version)
    return (0, tuple(int(p) for p in parts)) if parts else (1, (version,))


def sort_versions(values) -> list[str]:
    return sorted({str(v) for v in values}, key=version_key)


def count_bars(
    frame: pd.DataFrame, column: str, *, category_title: str, versions: bool = False, top: int | None = None
) -> go.Figure:
    """Deactivations per value of `column`: versions in version order, other values largest first."""
    if frame.empty:
        return no_data_figure()
    if versions:
        order = sort_versions(frame[column])
        frame = frame.set_index(column).loc[order].reset_index()
    else:
        frame = frame.sort_values(["deactivations", column], ascending=[False, True]).head(top)
    figure = go.Figure(
        go.Bar(
            x=frame[column].astype(str),
            y=frame["deactivations"],
            marker_color="#44AA99",
            hovertemplate="%{x}: %{y} deactivations<extra></extra>",
        )
    )
    figure.update_xaxes(type="category")
    return style(figure, x_title=category_title, y_title="Deactivations")
