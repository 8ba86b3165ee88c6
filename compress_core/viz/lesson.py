"""Figures of the Lesson page that no topic page draws: the pruning taxonomy as a clickable tree, and a class's
guess marked on a topic figure.

Usage::

    fig = taxonomy(TAXONOMY)              # leaves carry their name in customdata (a click selects one)
    mark_guess(curves_fig, x=10, y=0.6)   # a star where the class guessed
"""
from __future__ import annotations

import plotly.graph_objects as go

from .common import COLORS, SEQ, style


def taxonomy(tree: dict[str, dict], title: str | None = "How one prunes: pick a branch to open it") -> go.Figure:
    """The axes of pruning (what, how, when, scope) as columns of leaves under a root. Each leaf is a marker whose
    ``customdata`` is its name, so a click on it can open the live view of that choice."""
    fig = go.Figure()
    axes = list(tree)
    root = (len(axes) - 1) / 2
    for i, axis in enumerate(axes):
        leaves = list(tree[axis])
        ys = [-(j + 1) * 1.0 for j in range(len(leaves))]
        fig.add_trace(go.Scatter(x=[root, i], y=[1.2, 0.3], mode="lines", line=dict(color="#bbbbbb", width=2),
                                 hoverinfo="skip", showlegend=False))
        for y in ys:
            fig.add_trace(go.Scatter(x=[i, i], y=[0.3, y], mode="lines", line=dict(color="#dddddd", width=1.5),
                                     hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=[i], y=[0.3], mode="markers+text", text=[f"<b>{axis}</b>"],
                                 textposition="top center", textfont=dict(size=18),
                                 marker=dict(size=16, color=SEQ[i % len(SEQ)]), hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=[i] * len(leaves), y=ys, mode="markers+text", text=leaves,
                                 textposition="bottom center", textfont=dict(size=16, color="#222222"),
                                 customdata=leaves,
                                 marker=dict(size=22, color=SEQ[i % len(SEQ)], line=dict(color="white", width=2)),
                                 hovertemplate="%{customdata}: click to open it<extra></extra>", showlegend=False))
    fig.add_trace(go.Scatter(x=[root], y=[1.2], mode="markers+text", text=["<b>pruning</b>"],
                             textposition="top center", textfont=dict(size=20),
                             marker=dict(size=20, color=COLORS["baseline"]), hoverinfo="skip", showlegend=False))
    depth = max(len(v) for v in tree.values())
    fig.update_xaxes(visible=False, range=[-0.6, len(axes) - 0.4])
    fig.update_yaxes(visible=False, range=[-depth - 0.8, 1.9])
    return style(fig, title, height=460, top=50)


def mark_guess(fig: go.Figure, x: float, y: float, label: str = "the class's guess") -> go.Figure:
    """Add the class's guess to a figure (in its data coordinates) as a large star."""
    fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers+text", name=label, text=[f"guess {y:.0%}"],
                             textposition="middle right", textfont=dict(size=15),
                             marker=dict(symbol="star", size=22, color="gold", line=dict(color="black", width=1.5))))
    return fig


def note_guess(fig: go.Figure, text: str) -> go.Figure:
    """Write a yes/no guess on a figure (top left, inside the axes)."""
    fig.add_annotation(x=0.01, y=0.99, xref="paper", yref="paper", xanchor="left", yanchor="top", showarrow=False,
                       text=f"★ the class guessed: {text}", font=dict(size=16), bgcolor="rgba(255,215,0,0.35)")
    return fig
