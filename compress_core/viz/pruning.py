"""Figures of the Pruning page: pure functions from weights, masks and result rows to Plotly figures.

Kept weights are blue and removed weights red everywhere (``COLORS['kept']`` / ``COLORS['removed']``).

Usage::

    weight_histogram(w, mask["fc1.weight"], threshold=0.03, layer="fc1")
    curves_figure(rows, baseline_acc=0.98, current=0.9)
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .common import COLORS, SEQ, image_grid, style

MODE_NAMES = {"oneshot": "one-shot, no fine-tuning", "oneshot_ft": "one-shot + fine-tuning",
              "iterative": "iterative: prune → fine-tune → repeat"}
MODE_COLORS = {"oneshot": COLORS["oneshot"], "oneshot_ft": COLORS["kept"], "iterative": COLORS["ticket"]}


def weight_histogram(weights, mask, threshold: float | None, layer: str, bins: int = 80) -> go.Figure:
    """Histogram of a layer's weights, kept and removed stacked in two colours, the threshold ±t marked."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    keep = np.asarray(mask, dtype=bool).ravel()
    lim = float(np.abs(w).max()) if w.size else 1.0
    edges = np.linspace(-lim, lim, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    kept_counts, _ = np.histogram(w[keep], edges)
    removed_counts, _ = np.histogram(w[~keep], edges)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centers, y=kept_counts, name=f"kept ({keep.sum():,})", marker_color=COLORS["kept"],
                         width=edges[1] - edges[0], hovertemplate="w≈%{x:.3f}: %{y} kept<extra></extra>"))
    fig.add_trace(go.Bar(x=centers, y=removed_counts, name=f"removed ({(~keep).sum():,})",
                         marker_color=COLORS["removed"], width=edges[1] - edges[0],
                         hovertemplate="w≈%{x:.3f}: %{y} removed<extra></extra>"))
    fig.update_layout(barmode="stack", bargap=0)
    if threshold is not None:
        for x in (-threshold, threshold):
            fig.add_vline(x=x, line=dict(color="black", dash="dash", width=2))
        fig.add_annotation(x=threshold, y=1, yref="paper", text=f"threshold |w| = {threshold:.3g}",
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=14))
    fig.update_xaxes(title_text="weight value")
    fig.update_yaxes(title_text="number of weights")
    return style(fig, f"Weights of {layer}", height=380)


def neuron_tiles(mask_rows, image_shape: tuple[int, int], count: int = 40, cols: int = 10,
                 title: str | None = None) -> go.Figure:
    """Each first-layer neuron's input mask as a small image (kept = blue, removed = pale red), labelled
    with its number of kept inputs."""
    rows = np.asarray(mask_rows, dtype=float)[:count]
    imgs = rows.reshape(len(rows), *image_shape)
    labels = [str(int(r.sum())) for r in rows]  # inputs still connected
    scale = [[0, "#f6cccc"], [1, COLORS["kept"]]]  # removed: a pale version of the 'removed' red
    return image_grid(imgs, labels, cols=cols, title=title, colorscale=scale, zmin=0, zmax=1)


def mask_heatmap(mask, layer: str, max_cells: int = 40_000) -> go.Figure:
    """A layer's mask as outputs × inputs (conv kernels flattened per filter)."""
    m = np.asarray(mask, dtype=float)
    m = m.reshape(m.shape[0], -1)
    step = max(1, math.ceil(math.sqrt(m.size / max_cells)))  # average blocks so the browser stays fast
    if step > 1:
        h, w = m.shape[0] // step * step, m.shape[1] // step * step
        m = m[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
    fig = go.Figure(go.Heatmap(z=m, colorscale=[[0, "#ffffff"], [1, COLORS["kept"]]], zmin=0, zmax=1,
                               colorbar=dict(title="kept"), hovertemplate="out %{y}, in %{x}: %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="output neuron" + (f" (÷{step})" if step > 1 else ""))
    fig.update_xaxes(title_text="input" + (f" (÷{step})" if step > 1 else ""))
    return style(fig, f"Mask of {layer}: blue = kept", height=420)


def layer_bars(layer_sparsity: dict[str, float], published: dict[str, float] | None = None) -> go.Figure:
    """Per-layer sparsity, with an optional published reference (e.g. Han et al. 2015) beside it."""
    names = list(layer_sparsity)
    fig = go.Figure(go.Bar(x=names, y=[layer_sparsity[n] for n in names], name="measured here",
                           marker_color=COLORS["removed"], text=[f"{layer_sparsity[n]:.1%}" for n in names],
                           textposition="outside"))
    if published:
        fig.add_trace(go.Bar(x=list(published), y=list(published.values()), name="published (Han et al. 2015)",
                             marker_color=COLORS["baseline"], text=[f"{v:.0%}" for v in published.values()],
                             textposition="outside"))
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title_text="weights removed")
    fig.update_layout(barmode="group")
    return style(fig, "Sparsity per layer", height=360)


def _density_axis(fig: go.Figure) -> None:
    ticks = [100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1]
    fig.update_xaxes(type="log", autorange="reversed", tickvals=ticks, ticktext=[f"{t:g}%" for t in ticks],
                     title_text="weights remaining, all layers (log scale)")


def curves_figure(rows: list[dict], baseline_acc: float, current: float | None = None) -> go.Figure:
    """Test accuracy vs weights remaining for each mode; the baseline and the slider's position marked."""
    fig = go.Figure()
    for mode in MODE_NAMES:
        pts = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["sparsity"])
        if not pts:
            continue
        fig.add_trace(go.Scatter(x=[max(100 * (1 - r["sparsity"]), 0.05) for r in pts], y=[r["test_acc"] for r in pts],
                                 mode="lines+markers", name=MODE_NAMES[mode],
                                 line=dict(color=MODE_COLORS[mode], width=3), marker=dict(size=8),
                                 hovertemplate="%{x:.2f}% remaining: %{y:.1%}<extra></extra>"))
    fig.add_hline(y=baseline_acc, line=dict(color=COLORS["baseline"], dash="dot", width=2),
                  annotation_text=f"dense baseline {baseline_acc:.1%}", annotation_position="bottom left")
    if current is not None:
        x = max(100 * (1 - current), 0.05)
        fig.add_vline(x=x, line=dict(color="black", width=2, dash="dash"))  # shapes take data values
        fig.add_annotation(x=math.log10(x), y=0.02, yref="paper", text=f"slider: {current:.1%} sparse",
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=14))  # annotations: log10
    _density_axis(fig)
    fig.update_yaxes(tickformat=".0%", title_text="test accuracy", range=[0, 1.04])
    return style(fig, "Accuracy vs sparsity", height=460)


def sensitivity_figure(rows: list[dict], baseline_acc: float) -> go.Figure:
    """One line per layer: accuracy when only that layer is pruned."""
    fig = go.Figure()
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for i, layer in enumerate(layers):
        pts = [r for r in rows if r["layer"] == layer]
        fig.add_trace(go.Scatter(x=[100 * r["sparsity"] for r in pts], y=[r["test_acc"] for r in pts],
                                 mode="lines+markers", name=layer, line=dict(color=SEQ[i % len(SEQ)], width=3),
                                 hovertemplate=layer + ": %{x:.0f}% pruned → %{y:.1%}<extra></extra>"))
    fig.add_hline(y=baseline_acc, line=dict(color=COLORS["baseline"], dash="dot", width=2))
    fig.update_xaxes(title_text="sparsity of that one layer (%)")
    fig.update_yaxes(tickformat=".0%", title_text="test accuracy")
    return style(fig, "Sensitivity: prune one layer at a time", height=420)


def timing_figure(rows: list[dict]) -> go.Figure:
    """Measured median latency per variant (bars), ratio to dense as text."""
    rows = [r for r in rows if r.get("median_ms") is not None]
    colors = [COLORS["baseline"] if r["variant"] == "dense" else COLORS["ticket"] if "structured" in r["variant"]
              else COLORS["removed"] if "sparse" in r["variant"] else COLORS["kept"] for r in rows]
    fig = go.Figure(go.Bar(x=[r["variant"] for r in rows], y=[r["median_ms"] for r in rows], marker_color=colors,
                           text=[f"{r['median_ms']:.2f} ms · ×{r['vs_dense']:.2f}" for r in rows],
                           textposition="outside"))
    fig.update_yaxes(title_text="median latency (ms)", range=[0, 1.2 * max(r["median_ms"] for r in rows)])
    return style(fig, "Measured forward time", height=380)


def size_figure(rows: list[dict]) -> go.Figure:
    """Bytes per storage format."""
    fig = go.Figure(go.Bar(x=[r["format"] for r in rows], y=[r["bytes"] / 1024 for r in rows],
                           marker_color=[COLORS["baseline"] if r["format"].startswith(("dense", "masked")) else
                                         COLORS["ticket"] if r["format"].startswith("structured") else COLORS["kept"]
                                         for r in rows],
                           text=[f"{r['bytes'] / 1024:.1f} KB · ×{r['vs_dense']:.2f}" for r in rows],
                           textposition="outside"))
    fig.update_yaxes(title_text="KB", range=[0, 1.2 * max(r["bytes"] for r in rows) / 1024])
    return style(fig, "Size in each storage format", height=380)


def nm_pattern(weights, mask, m: int = 4, rows: int = 6, cols: int = 24) -> go.Figure:
    """A patch of a layer: |w| shown, pruned entries crossed out, groups of ``m`` outlined."""
    w = np.abs(np.asarray(weights, dtype=float).reshape(np.shape(weights)[0], -1))[:rows, :cols]
    k = np.asarray(mask, dtype=float).reshape(np.shape(mask)[0], -1)[:rows, :cols]
    z = np.where(k > 0, w, np.nan)
    fig = go.Figure(go.Heatmap(z=z, colorscale="Blues", showscale=False, hoverongaps=False,
                               hovertemplate="|w| = %{z:.3f}<extra></extra>"))
    ys, xs = np.nonzero(k == 0)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker=dict(symbol="x", size=14, color=COLORS["removed"]),
                             name="pruned", hoverinfo="skip"))
    for g in range(0, w.shape[1] + 1, m):
        fig.add_vline(x=g - 0.5, line=dict(color="black", width=2))
    fig.update_yaxes(autorange="reversed", title_text="output row")
    fig.update_xaxes(title_text=f"input column (groups of {m})")
    return style(fig, None, height=300)
