"""Figures of the Lottery Ticket page: pure functions of ``summarize`` rows and ``LotteryRun`` results.

Accuracy and early-stopping iteration against the % of weights remaining on a log axis, as in Frankle &
Carbin 2019 (Figures 3-4), with bands across seeds; the masks (surviving first-layer connections per input
pixel or time step, per-neuron tiles, per-layer remaining, overlap between rounds); training curves of a
round; and Greydanus 2020's published MNIST-1D numbers.

Usage::

    rows = summarize(runs)
    fig = accuracy_vs_remaining(rows, "final test accuracy")
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..lottery.results import ARM_LABELS, ARMS
from .common import COLORS, style, tile_mosaic

ARM_ORDER = ARMS  # the order of the legend and the table
DASH = {"ticket": "solid", "reinit": "dash", "random_mask": "dot", "oneshot": "dashdot"}
# Greydanus 2020, MNIST-1D lottery-ticket notebook: test accuracy of two trials (REFERENCES.md)
GREYDANUS = {"sparsity": [51, 81, 91, 96], "ticket": [(67.4, 65.0), (71.2, 70.5), (75.0, 72.4), (69.3, 71.5)],
             "reinit": [(63.8, 61.7), (64.3, 65.4), (62.3, 60.6), (51.5, 49.9)], "dense": (66.4, 64.8)}
# Frankle & Carbin 2019: % of weights remaining per round, LeNet-300-100, 20 % per round (output 10 %)
FRANKLE_CARBIN_REMAINING = [100, 80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8, 8.7, 7.0, 5.6, 4.5,
                            3.6, 2.9]


TICKS = (100, 80, 64, 50, 40, 30, 20, 15, 10, 7, 5, 3, 2, 1.5, 1, 0.7, 0.5, 0.3, 0.2, 0.1)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _log_remaining_axis(fig: go.Figure, xs: list[float], **kw) -> None:
    """x = % of weights remaining on a log axis, 100 % on the left (pruning moves right)."""
    lo = max(min(xs) * 0.85, 0.05) if xs else 1
    ticks = [v for v in TICKS if v >= lo]
    if len(ticks) > 9:  # a long range: the 1-2-5 steps are enough
        ticks = [v for v in ticks if str(v).lstrip("0.")[:1] in "125"]
    fig.update_xaxes(type="log", range=[np.log10(105), np.log10(lo)], title_text="weights remaining (%, log scale)",
                     tickvals=ticks, ticktext=[f"{v:g}" for v in ticks], **kw)


def _dense_line(fig: go.Figure, acc: float, lowest: float) -> None:
    """The dense network's accuracy across the whole axis, named in the legend (not over the data)."""
    fig.add_trace(go.Scatter(x=[105, lowest * 0.85], y=[acc, acc], mode="lines", name=f"dense network {acc:.1f} %",
                             line=dict(color=COLORS["baseline"], width=2, dash="dash"),
                             hovertemplate=f"dense network: {acc:.1f} %<extra></extra>"))


def _arm_rows(rows: list[dict], arm: str) -> list[dict]:
    dense = [r for r in rows if r["arm"] == "dense"]
    return dense + [r for r in rows if r["arm"] == arm]  # every arm starts from the dense round 0


def accuracy_vs_remaining(rows: list[dict], measure_label: str, title: str | None = None) -> go.Figure:
    """Accuracy of each arm against % remaining (log), a band from the lowest to the highest seed when there
    are several, and the dense network's accuracy as a horizontal line."""
    fig = go.Figure()
    seeds = max((r["seeds"] for r in rows), default=1)
    xs = [r["remaining"] for r in rows]
    for arm in ARM_ORDER:
        pts = _arm_rows(rows, arm)
        if len(pts) <= 1:
            continue
        x = [p["remaining"] for p in pts]
        color = COLORS[arm]
        if seeds > 1:
            fig.add_trace(go.Scatter(x=x + x[::-1], y=[p["acc_max"] for p in pts] + [p["acc_min"] for p in pts][::-1],
                                     fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=arm))
        fig.add_trace(go.Scatter(
            x=x, y=[p["acc_mean"] for p in pts], mode="lines+markers", name=ARM_LABELS[arm], legendgroup=arm,
            line=dict(color=color, width=3, dash=DASH[arm]), marker=dict(size=8),
            customdata=[[p["round"], p["acc_min"], p["acc_max"]] for p in pts],
            hovertemplate="round %{customdata[0]} · %{x:.1f} % left<br>%{y:.1f} % (seeds %{customdata[1]:.1f}–"
                          "%{customdata[2]:.1f})<extra>" + ARM_LABELS[arm] + "</extra>"))
    dense = next((r for r in rows if r["arm"] == "dense"), None)
    if dense:
        _dense_line(fig, dense["acc_mean"], min(xs))
    _log_remaining_axis(fig, xs)
    fig.update_yaxes(title_text=f"{measure_label} (%)")
    band = f" · band: lowest to highest of {seeds} seeds" if seeds > 1 else ""
    return style(fig, title or f"Accuracy as weights are pruned{band}", height=460)


def early_stop_vs_remaining(rows: list[dict], title: str | None = None) -> go.Figure:
    """Iteration of minimum validation loss (Frankle & Carbin's 'early-stopping iteration') against % remaining:
    lower means the network learns faster."""
    fig = go.Figure()
    for arm in ARM_ORDER:
        pts = _arm_rows(rows, arm)
        if len(pts) <= 1:
            continue
        fig.add_trace(go.Scatter(x=[p["remaining"] for p in pts], y=[p["early_stop_iteration"] for p in pts],
                                 mode="lines+markers", name=ARM_LABELS[arm], line=dict(color=COLORS[arm], width=3,
                                                                                       dash=DASH[arm]),
                                 marker=dict(size=8), hovertemplate="%{x:.1f} % left: iteration %{y:.0f}<extra>"
                                 + ARM_LABELS[arm] + "</extra>"))
    _log_remaining_axis(fig, [r["remaining"] for r in rows])
    fig.update_yaxes(title_text="early-stopping iteration", rangemode="tozero")
    return style(fig, title or "When validation loss is lowest (lower = learns faster)", height=420)


def first_layer_inputs(fc1_mask: np.ndarray, input_shape: tuple[int, ...], kind: str, round_: int,
                       title: str | None = None) -> go.Figure:
    """How many first-layer connections survive from each input: an image for pictures, a bar per time step
    for sequences, a bar per coordinate for points. ``fc1_mask`` is (neurons, inputs)."""
    counts = fc1_mask.reshape(fc1_mask.shape[0], -1).sum(axis=0)
    n = fc1_mask.shape[0]
    title = title or f"Round {round_}: connections kept per input"
    if kind == "image":
        img = counts.reshape(input_shape[-2:])
        fig = go.Figure(go.Heatmap(z=img[::-1], colorscale="Viridis", zmin=0, zmax=n,
                                   colorbar=dict(title="kept"),
                                   hovertemplate="row %{y}, col %{x}: %{z} connections<extra></extra>"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False, scaleanchor="x")
        # fixed margins, the colour bar's included: redrawn on every slider move of the Pruning page
        return style(fig, title, height=440, right=110, left=20, top=80, fixed=True)  # room for a 2-line title
    fig = go.Figure(go.Bar(x=np.arange(len(counts)), y=counts, marker_color=COLORS["ticket"],
                           hovertemplate="input %{x}: %{y} connections<extra></extra>"))
    fig.update_xaxes(title_text="time step" if kind == "sequence" else "input")
    fig.update_yaxes(title_text="connections kept", range=[0, n])
    return style(fig, title, height=380, fixed=True)  # redrawn on every round or sparsity move


def neuron_tiles(fc1_mask: np.ndarray, input_shape: tuple[int, ...], kind: str, count: int = 48,
                 title: str | None = None) -> go.Figure:
    """Each first-layer neuron's surviving input connections as a tile (pictures) or a row (sequences), the
    ``count`` neurons with most connections left, most connected first."""
    rows = fc1_mask.reshape(fc1_mask.shape[0], -1).astype(float)  # plotly draws no heatmap from booleans
    kept = rows.sum(axis=1)
    order = np.argsort(-kept, kind="stable")[:count]
    if kind == "image":
        h, w = input_shape[-2:]
        mosaic, _ = tile_mosaic(rows[order].reshape(-1, h, w), cols=8, gap=1, trim=True)
        fig = go.Figure(go.Heatmap(z=mosaic[::-1], colorscale=[[0, "#f0f0f0"], [1, COLORS["ticket"]]], zmin=0, zmax=1,
                                   showscale=False, hoverinfo="skip"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False, scaleanchor="x")
        height = 460
    else:
        fig = go.Figure(go.Heatmap(z=rows[order], colorscale=[[0, "#f0f0f0"], [1, COLORS["ticket"]]], zmin=0, zmax=1,
                                   showscale=False, y=[f"n{j}" for j in order],
                                   hovertemplate="neuron %{y}, input %{x}<extra></extra>"))
        fig.update_xaxes(title_text="time step" if kind == "sequence" else "input")
        fig.update_yaxes(title_text="neuron", showticklabels=False, autorange="reversed")
        height = 460
    return style(fig, title or f"{len(order)} first-layer neurons (green = kept)", height=height,
                 fixed=True)  # redrawn on every round move: no margin measured and drawn twice


def layer_remaining(layer_remaining_by_round: dict[int, dict[str, float]], chosen: int,
                    title: str | None = None) -> go.Figure:
    """% of each layer's weights remaining, the chosen round highlighted among all finished rounds."""
    fig = go.Figure()
    for rnd, layers in sorted(layer_remaining_by_round.items()):
        names = list(layers)
        on = rnd == chosen
        fig.add_trace(go.Bar(x=names, y=[100 * layers[n] for n in names], name=f"round {rnd}",
                             marker_color=COLORS["ticket"] if on else _rgba(COLORS["baseline"], 0.25 + 0.5 * on),
                             text=[f"{100 * layers[n]:.1f} %" if on else "" for n in names], textposition="outside",
                             showlegend=False, hovertemplate=f"round {rnd} · %{{x}}: %{{y:.1f}} %<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.15)
    fig.update_yaxes(title_text="weights remaining (%)", range=[0, 110])
    return style(fig, title or f"Weights remaining per layer (green: round {chosen}; grey: the other rounds)",
                 height=380, fixed=True)


def overlap(jaccard_matrix: list[list[float]], rows_by_arm: dict[str, list[tuple[int, float]]],
            title: str | None = None) -> go.Figure:
    """Left: Jaccard overlap of the ticket's masks between every pair of rounds (0 = dense;
    ``lottery.overlap_matrix``). Right: how much each control's mask overlaps the ticket's at the same round."""
    jac = np.asarray(jaccard_matrix, dtype=float)
    n = len(jac)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Ticket vs ticket, between rounds",
                                                        "Each control vs the ticket, same round"),
                        column_widths=[0.45, 0.55], horizontal_spacing=0.12)
    fig.add_trace(go.Heatmap(z=jac, x=list(range(n)), y=list(range(n)), colorscale="Blues", zmin=0, zmax=1,
                             text=np.round(jac, 2), texttemplate="%{text}" if n <= 12 else None, showscale=False,
                             hovertemplate="rounds %{y} and %{x}: %{z:.3f}<extra></extra>"), row=1, col=1)
    fig.update_xaxes(title_text="round", row=1, col=1, dtick=1)
    fig.update_yaxes(title_text="round", row=1, col=1, dtick=1, autorange="reversed")
    for arm, pts in rows_by_arm.items():
        if not pts:
            continue
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=ARM_LABELS[arm], line=dict(color=COLORS[arm], width=3, dash=DASH[arm])),
                      row=1, col=2)
    fig.update_xaxes(title_text="round", row=1, col=2, dtick=1)
    fig.update_yaxes(title_text="overlap with the ticket", range=[0, 1.05], row=1, col=2)
    fig = style(fig, title or "How much the masks overlap (Jaccard: shared ÷ either)", height=460, legend_below=-0.22,
                bottom=120, top=90)
    return fig


def round_curves(curves: dict[str, list[dict]], round_: int, title: str | None = None) -> go.Figure:
    """Validation loss (left) and test accuracy (right) against iteration for each arm at one round, with the
    dense network for reference; a diamond marks each arm's early-stopping iteration."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Validation loss", "Test accuracy"), horizontal_spacing=0.1)
    for arm, recs in curves.items():
        if not recs:
            continue
        color = COLORS["baseline"] if arm == "dense" else COLORS[arm]
        dash = "dash" if arm == "dense" else DASH[arm]
        it = [r["iteration"] for r in recs]
        es = min(recs, key=lambda r: r["val_loss"])
        fig.add_trace(go.Scatter(x=it, y=[r["val_loss"] for r in recs], mode="lines", name=ARM_LABELS[arm],
                                 legendgroup=arm, line=dict(color=color, width=2.5, dash=dash)), row=1, col=1)
        fig.add_trace(go.Scatter(x=[es["iteration"]], y=[es["val_loss"]], mode="markers", legendgroup=arm,
                                 showlegend=False, marker=dict(symbol="diamond", size=12, color=color),
                                 hovertemplate="early stop: iteration %{x}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=it, y=[100 * r["test_acc"] for r in recs], mode="lines", legendgroup=arm,
                                 showlegend=False, line=dict(color=color, width=2.5, dash=dash),
                                 hovertemplate="iteration %{x}: %{y:.1f} %<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="training iteration")
    fig.update_yaxes(title_text="test accuracy (%)", row=1, col=2)
    # fixed margins: redrawn on every move of the round slider (no margin measured, then the chart drawn again)
    fig = style(fig, title or f"Training at round {round_}", height=460, legend_below=-0.22, bottom=120, top=90,
                fixed=True)
    return fig


def published_greydanus() -> go.Figure:
    """Greydanus 2020's MNIST-1D lottery tickets vs random re-initialization (mean of two trials; the dots
    are the trials). Published numbers, not measured here."""
    fig = go.Figure()
    x = [100 - s for s in GREYDANUS["sparsity"]]
    for arm in ("ticket", "reinit"):
        pairs = GREYDANUS[arm]
        fig.add_trace(go.Scatter(x=x, y=[sum(p) / 2 for p in pairs], mode="lines+markers", name=ARM_LABELS[arm],
                                 line=dict(color=COLORS[arm], width=3, dash=DASH[arm]), marker=dict(size=9)))
        fig.add_trace(go.Scatter(x=x + x, y=[p[0] for p in pairs] + [p[1] for p in pairs], mode="markers",
                                 marker=dict(color=COLORS[arm], size=6, opacity=0.5), showlegend=False,
                                 hoverinfo="skip"))
    _dense_line(fig, sum(GREYDANUS["dense"]) / 2, 3)
    _log_remaining_axis(fig, x + [3])
    fig.update_yaxes(title_text="test accuracy (%)")
    fig = style(fig, "Published: Greydanus 2020, MNIST-1D", height=440, legend_below=-0.22, bottom=120, top=90)
    return fig
