"""Figures of the Pruning page: pure functions from weights, masks and result rows to Plotly figures.

Kept weights are blue and removed weights red everywhere (``COLORS['kept']`` / ``COLORS['removed']``).

Speed matters here: these figures are rebuilt on every slider move. Plotly validates every property
assignment through its object tree, about 20-40 ms a figure -- most of a slider move's budget. So each
builder writes plain dicts and makes the figure in one unvalidated constructor call (~1 ms), styled
with exactly what ``common.style`` sets. ``tests/test_pruning_viz.py`` re-validates every figure.

Usage::

    weight_histogram(w, mask["fc1.weight"], threshold=0.03, layer="fc1")
    curves_figure(rows, baseline_acc=0.98, current=0.9)
"""
from __future__ import annotations

import copy
import math
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go

from .common import COLORS, SEQ, step_area, style

MODE_NAMES = {"oneshot": "one-shot, no fine-tuning", "oneshot_ft": "one-shot + fine-tuning",
              "iterative": "iterative: prune → fine-tune → repeat",
              "gradual": "gradual (Zhu & Gupta) while fine-tuning",
              "gradual_scratch": "gradual (Zhu & Gupta) while training from θ0"}
MODE_COLORS = {"oneshot": COLORS["oneshot"], "oneshot_ft": COLORS["kept"], "iterative": COLORS["ticket"],
               "gradual": COLORS["random_mask"], "gradual_scratch": COLORS["accent"]}
MASK_SCALE = [[0, "#f6cccc"], [1, COLORS["kept"]]]  # removed: a pale version of the 'removed' red


@lru_cache(maxsize=8)
def _base_layout(titled: bool, height: int, fixed: bool = False, left: int = 60, right: int = 20) -> dict:
    """The layout ``common.style`` produces (template expanded to its JSON), computed once."""
    fig = style(go.Figure(), "t" if titled else None, height, fixed=fixed, left=left, right=right)
    layout = fig.to_dict()["layout"]
    layout.pop("template", None)  # the current default applies when the figure is built (none in the app)
    return layout


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _figure(data: list[dict], layout: dict, title: str | None, height: int, **margins) -> go.Figure:
    """One unvalidated constructor call with the app's style underneath ``layout``; ``margins`` are ``style``'s
    ``fixed``, ``left`` and ``right``."""
    base = copy.deepcopy(_base_layout(title is not None, height, **margins))
    if title is not None:
        base["title"]["text"] = title
    return go.Figure(data=data, layout=_merge(base, layout), _validate=False)


def _vline(x: float, dash: str = "dash") -> dict:
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                line=dict(color="black", dash=dash, width=2))


def weight_histogram(weights, mask, threshold: float | None, layer: str, bins: int | None = None) -> go.Figure:
    """Histogram of a layer's weights, kept and removed stacked in two colours, the threshold ±t marked.
    ``bins`` defaults to 80, fewer for small layers (about 4 weights a bin)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    bins = bins or int(min(80, max(10, w.size // 4)))
    keep = np.asarray(mask, dtype=bool).ravel()
    lim = float(np.abs(w).max()) if w.size and np.abs(w).max() > 0 else 1.0
    edges = np.linspace(-lim, lim, bins + 1)
    kept_counts = np.histogram(w[keep], edges)[0]
    removed_counts = np.histogram(w[~keep], edges)[0]
    # filled step outlines, kept stacked on removed: redrawn on every slider move (see common.step_area)
    data = [step_area(edges, kept_counts, COLORS["kept"], f"kept ({int(keep.sum()):,})",
                      "w≈%{customdata:.3f}: %{y} kept<extra></extra>", stack="w"),
            step_area(edges, removed_counts, COLORS["removed"], f"removed ({int((~keep).sum()):,})",
                      "w≈%{customdata:.3f}: %{y} removed<extra></extra>", stack="w")]
    # the legend under the axes: above them it wrapped into the title on a projector-sized chart (fixed margins)
    layout = dict(xaxis=dict(title=dict(text="weight value"), range=[-lim, lim]),
                  yaxis=dict(title=dict(text="number of weights"), rangemode="tozero"), margin=dict(b=105),
                  legend=dict(orientation="h", yanchor="top", y=-0.24, xanchor="left", x=0))
    if threshold is not None:
        layout["shapes"] = [_vline(-threshold), _vline(threshold)]
        # inside the axes, under the legend; on the side of the line with room for the text
        right_side = threshold <= 0.45 * lim
        layout["annotations"] = [dict(x=threshold, y=0.98, xref="x", yref="paper", showarrow=False,
                                      xanchor="left" if right_side else "right", yanchor="top",
                                      xshift=4 if right_side else -4, text=f"threshold |w| = {threshold:.3g}",
                                      font=dict(size=14), bgcolor="rgba(255,255,255,0.8)")]
    return _figure(data, layout, f"Weights of {layer}", 430, fixed=True, left=75)


def neuron_tiles(mask_rows, image_shape: tuple[int, int], count: int = 24, cols: int = 6,
                 title: str | None = None) -> go.Figure:
    """Each first-layer neuron's input mask as a small image (kept = blue, removed = pale red), labelled
    with its number of kept inputs. One mosaic heat map: one trace, however many tiles."""
    rows = np.asarray(mask_rows, dtype=float)[:count]
    h, w = image_shape
    n_rows = math.ceil(len(rows) / cols)
    gap, label = 1, 2  # blank columns between tiles; blank rows above each tile for its label
    mosaic = np.full((n_rows * (h + label), cols * (w + gap)), np.nan)
    notes = []
    for i, r in enumerate(rows):
        rr, cc = divmod(i, cols)
        top, left = rr * (h + label) + label, cc * (w + gap)
        mosaic[top:top + h, left:left + w] = r.reshape(h, w)
        notes.append(dict(x=left + (w - 1) / 2, y=top - 1.2, xref="x", yref="y", text=f"{int(r.sum())}/{r.size}",
                          showarrow=False, font=dict(size=13)))
    z = [[None if math.isnan(v) else v for v in row] for row in mosaic.tolist()]
    data = [dict(type="heatmap", z=z, colorscale=MASK_SCALE, zmin=0, zmax=1, showscale=False, hoverongaps=False,
                 hovertemplate="%{z:.0f}<extra></extra>")]
    layout = dict(annotations=notes, xaxis=dict(visible=False),
                  yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return _figure(data, layout, title, int(120 * n_rows + 90))


def mask_heatmap(mask, layer: str, max_cells: int = 40_000) -> go.Figure:
    """A layer's mask as outputs × inputs (conv kernels flattened per filter)."""
    m = np.asarray(mask, dtype=float)
    m = m.reshape(m.shape[0], -1)
    step = max(1, math.ceil(math.sqrt(m.size / max_cells)))  # average blocks so the browser stays fast
    if step > 1:
        hh, ww = m.shape[0] // step * step, m.shape[1] // step * step
        m = m[:hh, :ww].reshape(hh // step, step, ww // step, step).mean(axis=(1, 3))
    suffix = f" (÷{step})" if step > 1 else ""
    data = [dict(type="heatmap", z=m.tolist(), colorscale=MASK_SCALE, zmin=0, zmax=1,
                 colorbar=dict(title=dict(text="kept")), hovertemplate="out %{y}, in %{x}: %{z:.2f}<extra></extra>")]
    layout = dict(yaxis=dict(autorange="reversed", title=dict(text="output neuron" + suffix)),
                  xaxis=dict(title=dict(text="input" + suffix)))
    return _figure(data, layout, f"Mask of {layer}: blue = kept", 420, fixed=True, left=75, right=110)


def layer_bars(layer_sparsity: dict[str, float], published: dict[str, float] | None = None) -> go.Figure:
    """Per-layer sparsity, with an optional published reference (e.g. Han et al. 2015) beside it."""
    names = list(layer_sparsity)
    data = [dict(type="bar", x=names, y=[layer_sparsity[n] for n in names], name="measured here",
                 marker=dict(color=COLORS["removed"]), text=[f"{layer_sparsity[n]:.1%}" for n in names],
                 textposition="outside")]
    if published:
        data.append(dict(type="bar", x=list(published), y=list(published.values()),
                         name="published (Han et al. 2015)", marker=dict(color=COLORS["baseline"]),
                         text=[f"{v:.0%}" for v in published.values()], textposition="outside"))
    layout = dict(barmode="group", yaxis=dict(range=[0, 1.12], tickformat=".0%", title=dict(text="weights removed")))
    return _figure(data, layout, "Sparsity per layer", 360)


def gpt_blocks_figure(summary: list[dict]) -> go.Figure:
    """Per transformer block, the share of attention heads and of MLP neurons that survive surgery, labelled with
    the counts (rows of ``pruning.gpt_structured.gpt_summary``)."""
    names = [r["block"] for r in summary]
    data = [dict(type="bar", x=names, y=[r[f"kept_{k}"] / r[k] for r in summary], name=label,
                 marker=dict(color=color), text=[f"{r[f'kept_{k}']} of {r[k]}" for r in summary],
                 textposition="outside", cliponaxis=False)
            for k, label, color in (("heads", "attention heads kept", COLORS["kept"]),
                                    ("neurons", "MLP neurons kept", COLORS["baseline"]))]
    layout = dict(barmode="group", yaxis=dict(range=[0, 1.15], tickformat=".0%", title=dict(text="kept")))
    return _figure(data, layout, "Heads and MLP neurons kept per block", 360)


DENSITY_TICKS = [100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1]


def curves_figure(rows: list[dict], baseline_acc: float, current: float | None = None,
                  control_acc: float | None = None) -> go.Figure:
    """Test accuracy vs weights remaining (log axis) per mode; the baseline and the slider's position marked, and
    with ``control_acc`` the dense model given one point's fine-tuning (the fair reference for the fine-tuned
    curves)."""
    data = []
    for mode in MODE_NAMES:
        pts = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["sparsity"])
        if pts:
            data.append(dict(type="scatter", mode="lines+markers", name=MODE_NAMES[mode],
                             x=[max(100 * (1 - r["sparsity"]), 0.05) for r in pts], y=[r["test_acc"] for r in pts],
                             line=dict(color=MODE_COLORS[mode], width=3), marker=dict(size=8),
                             cliponaxis=False,  # a point at 100 % shows whole on an axis that ends at 100 %
                             hovertemplate="%{x:.2f}% remaining: %{y:.1%}<extra></extra>"))
    shapes = [dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=baseline_acc, y1=baseline_acc,
                   line=dict(color=COLORS["baseline"], dash="dot", width=2))]
    notes = [dict(x=0, y=baseline_acc, xref="paper", yref="y", text=f"dense baseline {baseline_acc:.1%}",
                  showarrow=False, xanchor="left", yanchor="top", font=dict(size=14, color=COLORS["baseline"]))]
    if control_acc is not None:
        shapes.append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=control_acc, y1=control_acc,
                           line=dict(color=COLORS["accent"], dash="dash", width=2)))
        notes.append(dict(x=1, y=control_acc, xref="paper", yref="y", showarrow=False, xanchor="right",
                          yanchor="bottom", text=f"dense + same fine-tuning {control_acc:.1%}",
                          font=dict(size=14, color=COLORS["accent"])))
    if current is not None:
        x = max(100 * (1 - current), 0.05)
        shapes.append(_vline(x))  # shapes take data values on a log axis, annotations take log10
        notes.append(dict(x=math.log10(x), y=0.02, xref="x", yref="paper", text=f"slider: {current:.1%} sparse",
                          showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=14)))
    layout = dict(shapes=shapes, annotations=notes,
                  xaxis=dict(type="log", autorange="reversed", tickvals=DENSITY_TICKS,
                             ticktext=[f"{t:g}%" for t in DENSITY_TICKS],
                             title=dict(text="weights remaining, all layers (log scale)")),
                  yaxis=dict(tickformat=".0%", range=[0, 1], title=dict(text="test accuracy")))
    return _figure(data, layout, "Accuracy vs sparsity", 460)


def sensitivity_figure(rows: list[dict], baseline_acc: float) -> go.Figure:
    """One line per layer: accuracy when only that layer is pruned."""
    data = []
    for i, layer in enumerate(dict.fromkeys(r["layer"] for r in rows)):
        pts = [r for r in rows if r["layer"] == layer]
        data.append(dict(type="scatter", mode="lines+markers", name=layer,
                         x=[100 * r["sparsity"] for r in pts], y=[r["test_acc"] for r in pts],
                         line=dict(color=SEQ[i % len(SEQ)], width=3),
                         hovertemplate=layer + ": %{x:.0f}% pruned → %{y:.1%}<extra></extra>"))
    layout = dict(shapes=[dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=baseline_acc, y1=baseline_acc,
                               line=dict(color=COLORS["baseline"], dash="dot", width=2))],
                  xaxis=dict(title=dict(text="sparsity of that one layer (%)")),
                  yaxis=dict(tickformat=".0%", title=dict(text="test accuracy")))
    return _figure(data, layout, "Sensitivity: prune one layer at a time", 420)


def _color(name: str) -> str:
    if name.startswith(("dense", "masked")):
        return COLORS["baseline"]
    return COLORS["ticket"] if name.startswith("structured") else COLORS["kept"]  # sparse formats: blue


def _hbars(names: list[str], values: list[float], texts: list[str], colors: list[str], axis_title: str,
           title: str) -> go.Figure:
    """Horizontal bars (long category names stay readable), first row on top."""
    data = [dict(type="bar", orientation="h", y=names, x=values, text=texts, textposition="outside",
                 marker=dict(color=colors), cliponaxis=False, hovertemplate="%{y}: %{text}<extra></extra>")]
    layout = dict(yaxis=dict(autorange="reversed", automargin=True),
                  xaxis=dict(title=dict(text=axis_title), range=[0, 2.2 * max(values)]),
                  margin=dict(l=20, r=30), showlegend=False)
    return _figure(data, layout, title, int(110 + 48 * len(names)))


def timing_figure(rows: list[dict], batch: int, repeats: int) -> go.Figure:
    """Measured median latency per variant, the ratio to dense as text (and the variant's test accuracy when the
    rows carry it); the title says what was timed: one forward pass of a batch of ``batch``, median of ``repeats``."""
    rows = [r for r in rows if r.get("median_ms") is not None]
    what = "one inference (batch 1)" if batch == 1 else f"a batch of {batch:,}"
    return _hbars([r["variant"] for r in rows], [r["median_ms"] for r in rows],
                  [f"{r['median_ms']:.2f} ms ({r['vs_dense']:.2f}× dense)"
                   + (f" · {r['test_acc']:.1%}" if "test_acc" in r else "") for r in rows],
                  [_color(r["variant"]) for r in rows], f"median time of {what} (ms)",
                  f"Measured forward time: {what}, median of {repeats}")


def size_figure(rows: list[dict]) -> go.Figure:
    """Bytes per storage format, the ratio to dense as text."""
    return _hbars([r["format"] for r in rows], [r["bytes"] / 1024 for r in rows],
                  [f"{r['bytes'] / 1024:.1f} KB ({r['vs_dense']:.2f}× dense)" for r in rows],
                  [_color(r["format"]) for r in rows], "KB", "Size in each storage format")


def nm_pattern(weights, mask, m: int = 4, rows: int = 6, cols: int = 24) -> go.Figure:
    """A patch of a layer: |w| of the kept entries, pruned entries crossed out, groups of ``m`` outlined."""
    w = np.abs(np.asarray(weights, dtype=float).reshape(np.shape(weights)[0], -1))[:rows, :cols]
    k = np.asarray(mask, dtype=float).reshape(np.shape(mask)[0], -1)[:rows, :cols]
    z = [[float(v) if keep else None for v, keep in zip(wr, kr)] for wr, kr in zip(w, k)]
    ys, xs = np.nonzero(k == 0)
    data = [dict(type="heatmap", z=z, colorscale="Blues", showscale=False, hoverongaps=False,
                 hovertemplate="|w| = %{z:.3f}<extra></extra>"),
            dict(type="scatter", mode="markers", x=xs.tolist(), y=ys.tolist(), name="pruned", hoverinfo="skip",
                 marker=dict(symbol="x", size=14, color=COLORS["removed"]))]
    shapes = [dict(type="line", xref="x", yref="paper", x0=g - 0.5, x1=g - 0.5, y0=0, y1=1,
                   line=dict(color="black", width=2)) for g in range(0, w.shape[1] + 1, m)]
    layout = dict(shapes=shapes, yaxis=dict(autorange="reversed", title=dict(text="output row")),
                  xaxis=dict(title=dict(text=f"input column (groups of {m})")))
    return _figure(data, layout, None, 300)
