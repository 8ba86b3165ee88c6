"""Figures of the Compare page: trade-off scatter plots with the Pareto front, the sparsity × bits grid, and the
variants' decision boundaries. Pure functions of ``compress_core.experiments.Result`` objects.

Usage::

    results = [run(r) for r in recipes]
    tradeoff(results, explored=results, x="bytes")
    sweep_heatmap([0.5, 0.9], [8, 4], [[r.test_acc for r in row] for row in table])
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..experiments import Result, pareto_front
from .common import COLORS, SEQ, boundary_traces, style

AXES = {
    "bytes": ("stored size (bytes, log)", lambda r: r.bytes, True, "%{x:,} bytes"),
    "latency": ("latency of one inference (ms): integer-only, else shrunk, else float", None, False, "%{x:.3f} ms"),
    "energy": ("energy per inference (µJ, log; Horowitz 2014, 45 nm)", lambda r: r.energy_pj / 1e6, True,
               "%{x:.3g} µJ"),
}


def latency_of(r: Result) -> float:
    """The latency the compressed network runs at: integer-only when it applies, else the shrunk dense network,
    else the float one (unstructured zeros run at dense speed)."""
    lat = r.latency_ms
    return next(v for v in (lat.get("integer"), lat.get("shrunk"), lat.get("float")) if v is not None)


def _x(r: Result, axis: str) -> float:
    return latency_of(r) if axis == "latency" else AXES[axis][1](r)


def _score(r: Result) -> tuple[float, float]:
    """(score, its standard error): test accuracy, or a language model's bits per character."""
    return (r.bpc, r.bpc_se) if r.is_lm else (r.test_acc, r.test_acc_se)


def tradeoff(variants: Sequence[Result], explored: Sequence[Result] = (), x: str = "bytes") -> go.Figure:
    """Test accuracy (± its standard error) against ``x`` ("bytes", "latency" or "energy"): the variants in
    colour, every run explored in the session in grey, and the Pareto front of all of them (no run is both
    smaller/faster/cheaper and more accurate than a point on it). A language model's runs read bits per character
    instead (lower is better: the front minimises both axes). Explored runs of the other kind are left out."""
    title, _, log, fmt = AXES[x]
    lm = bool(variants) and variants[0].is_lm
    explored = [r for r in explored if r.is_lm == lm]
    yfmt = "%{y:.3f} bits/char" if lm else "%{y:.2%}"
    fig = go.Figure()
    runs = list({id(r): r for r in [*explored, *variants]}.values())
    pts = [(_x(r, x), _score(r)[0]) for r in runs]
    front = [runs[i] for i in pareto_front(pts, lower_is_better=lm)]
    others = [r for r in explored if all(r is not v for v in variants)]
    if others:
        fig.add_trace(go.Scatter(x=[_x(r, x) for r in others], y=[_score(r)[0] for r in others], mode="markers",
                                 name="explored this session", marker=dict(color=COLORS["baseline"], size=7,
                                                                          opacity=0.45),
                                 text=[r.title for r in others],
                                 hovertemplate=f"%{{text}}<br>{fmt}<br>{yfmt}<extra></extra>"))
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=[_x(r, x) for r in front], y=[_score(r)[0] for r in front], mode="lines",
                                 line=dict(color=COLORS["accent"], width=2, shape="hv", dash="dot"),
                                 name="Pareto front", hoverinfo="skip"))
    for i, r in enumerate(variants):
        y, se = _score(r)
        pm = f"{y:.3f} ± {se:.3f} bits/char" if lm else f"{y:.2%} ± {se:.2%}"
        fig.add_trace(go.Scatter(x=[_x(r, x)], y=[y], mode="markers", name=f"{i + 1}. {r.title}",
                                 marker=dict(color=SEQ[i % len(SEQ)], size=15, line=dict(color="white", width=1)),
                                 error_y=dict(type="data", array=[se], thickness=1.5, width=4),
                                 hovertemplate=f"{r.title}<br>{fmt}<br>{pm}<extra></extra>"))
    base = next(((r.baseline_bpc if lm else r.baseline_acc) for r in runs), None)
    if base is not None:
        fig.add_hline(y=base, line=dict(color=COLORS["baseline"], dash="dash", width=1),
                      annotation_text=f"float baseline {base:.3f} bits/char" if lm else f"float baseline {base:.1%}",
                      annotation_position="top left")
    fig.update_xaxes(title_text=title, type="log" if log else "linear", tickformat="~s" if x == "bytes" else None)
    if lm:
        fig.update_yaxes(title_text="bits per character (test, lower is better)", tickformat=".2f")
    else:
        fig.update_yaxes(title_text="test accuracy", tickformat=".0%")
    names = {"bytes": "size", "latency": "latency", "energy": "energy"}
    what = "Bits per character" if lm else "Accuracy"
    return style(fig, f"{what} vs {names[x]}", height=440, legend_below=-0.22, bottom=130)


def sweep_heatmap(sparsities: Sequence[float], bits: Sequence[int], acc: Sequence[Sequence[float]],
                  sizes: Sequence[Sequence[int]] | None = None, baseline_acc: float | None = None, *,
                  bpc: bool = False) -> go.Figure:
    """Test accuracy over a sparsity (rows) × weight bit width (columns) grid, each cell labelled; with ``bpc``,
    a language model's bits per character (``acc`` holds them, ``baseline_acc`` the float model's; the colours
    reversed, so the better cells are bright either way)."""
    z = np.asarray(acc, dtype=float)
    if bpc:
        return _bpc_heatmap(sparsities, bits, z, sizes, baseline_acc)
    text = [[f"{v:.1%}" for v in row] for row in z]
    custom = np.asarray(sizes if sizes is not None else np.zeros_like(z), dtype=float) / 1024
    ylab = [f"{s:.0%}" for s in sparsities]
    xlab = [f"{b}-bit" for b in bits]
    lo = float(np.nanmin(z)) if z.size else 0.0
    hi = baseline_acc if baseline_acc is not None else float(np.nanmax(z)) if z.size else 1.0
    fig = go.Figure(go.Heatmap(z=z, x=xlab, y=ylab, text=text, texttemplate="%{text}", textfont=dict(size=15),
                               colorscale="Viridis", zmin=lo, zmax=max(hi, lo + 1e-6), customdata=custom,
                               colorbar=dict(title="accuracy", tickformat=".0%"),
                               hovertemplate="sparsity %{y}, %{x}: %{z:.2%}<br>%{customdata:.1f} KB<extra></extra>"))
    fig.update_xaxes(title_text="weight bits (post-training quantization)", type="category")
    fig.update_yaxes(title_text="sparsity", type="category", autorange="reversed")
    return style(fig, "Accuracy over sparsity × bit width", height=max(320, 60 * len(sparsities) + 140))


def _bpc_heatmap(sparsities, bits, z: np.ndarray, sizes, baseline: float | None) -> go.Figure:
    custom = np.asarray(sizes if sizes is not None else np.zeros_like(z), dtype=float) / 1024
    lo = baseline if baseline is not None else float(np.nanmin(z)) if z.size else 0.0
    hi = float(np.nanmax(z)) if z.size else 1.0
    fig = go.Figure(go.Heatmap(z=z, x=[f"{b}-bit" for b in bits], y=[f"{s:.0%}" for s in sparsities],
                               text=[[f"{v:.3f}" for v in row] for row in z], texttemplate="%{text}",
                               textfont=dict(size=15), colorscale="Viridis", reversescale=True, zmin=min(lo, hi),
                               zmax=max(hi, lo + 1e-6), customdata=custom,
                               colorbar=dict(title="bits/char", tickformat=".2f"),
                               hovertemplate="sparsity %{y}, %{x}: %{z:.3f} bits/char<br>%{customdata:.1f} KB"
                                             "<extra></extra>"))
    fig.update_xaxes(title_text="weight bits (post-training, weights only)", type="category")
    fig.update_yaxes(title_text="sparsity", type="category", autorange="reversed")
    return style(fig, "Bits per character over sparsity × bit width", height=max(320, 60 * len(sparsities) + 140))


def boundaries(variants: Sequence[Result], x: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """The variants' decision boundaries side by side (2-D data), test points on top."""
    n = len(variants)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[f"{i + 1}. {r.title}<br>{r.test_acc:.1%}"
                                                        for i, r in enumerate(variants)],
                        horizontal_spacing=0.03)
    for j, r in enumerate(variants, 1):
        for trace in boundary_traces(r.boundary, x, y, list(class_names), opacity=0.35, size=4, showlegend=j == 1):
            fig.add_trace(trace, row=1, col=j)
        fig.update_xaxes(showticklabels=False, row=1, col=j)
        fig.update_yaxes(showticklabels=False, row=1, col=j)
    fig.update_annotations(font_size=13)
    return style(fig, None, height=max(320, min(440, 1400 // max(n, 1) + 40)), top=70, legend_below=-0.04,
                 bottom=50, centered=True)

