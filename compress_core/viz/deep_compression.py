"""Figures of the Deep compression page (Han et al. 2016): size and accuracy by stage, shared weights, formula, and
where the compressed file's bytes go.

Pure functions of ``compress_core.deep_compression.PipelineResult`` contents (lists of dicts, tensors).

Usage::

    res = run_pipeline(b, ds, PipelineConfig())
    size_by_stage(res.stages); accuracy_by_stage(res.stages)
    file_bytes(deep_compression.file_breakdown(res), len(res.file))
    shared_histogram(res.pruned_state["fc1.weight"], res.mask["fc1.weight"], res.final_state["fc1.weight"],
                     res.centroids["fc1.weight"], "fc1")
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch

from .common import COLORS, stack, style

STAGE_COLORS = {"dense": COLORS["baseline"], "pruned": COLORS["kept"], "k-means": COLORS["ticket"],
                "uniform": COLORS["quant"], "Huffman": COLORS["accent"], "file": COLORS["accent"]}


def _color(stage: str) -> str:
    return next((c for k, c in STAGE_COLORS.items() if stage.startswith(k)), COLORS["accent"])


def _kb(b: float) -> str:
    return f"{b / 1024:.1f} KB"


_TICKS = {"k-means + tuned centroids": "tuned k-means", "Huffman-coded file": "file", "file, fixed-width codes": "file"}


def _tick(stage: str) -> str:
    """A stage's name under the chart, the long ones shortened (the table and the hover have them whole): they ran
    into each other on a projector-sized chart."""
    return _TICKS.get(stage, stage)


def _stage_figure(trace: dict, yaxis: dict, title: str, **layout) -> go.Figure:
    """One unvalidated constructor call (Plotly's validated setters took 8-13 ms a figure, on every slider move),
    fixed margins with room for the slanted stage names (see ``common.style``)."""
    names = list(trace["x"])
    xaxis = dict(tickangle=45, tickvals=names, ticktext=[_tick(n) for n in names])
    fig = go.Figure(data=[trace], layout=dict(yaxis=yaxis, xaxis=xaxis, **layout), _validate=False)
    return style(fig, title, height=460, left=75, right=60, bottom=120, fixed=True)


def size_by_stage(stages: list[dict]) -> go.Figure:
    """Stored bytes per stage on a log axis, labelled with the ratio to dense (the sizes are in the table above
    the chart and on hover: two lines of text did not fit a bar on a projector)."""
    names = [r["stage"] for r in stages]
    sizes = [r["bytes"] for r in stages]
    bars = dict(type="bar", x=names, y=sizes, marker=dict(color=[_color(n) for n in names]),
                # whole numbers from 10× up: "15.4×" over each of seven bars ran together on a projector
                text=[f"{r['ratio']:.0f}×" if r["ratio"] >= 10 else f"{r['ratio']:.1f}×" for r in stages],
                textposition="outside", textfont=dict(size=15), constraintext="none",  # never shrunk to fit a bar
                customdata=[[_kb(r["bytes"]), f"{r['ratio']:.2f}"] for r in stages],
                hovertemplate="%{x}: %{customdata[0]} (%{y:,} bytes), %{customdata[1]}× smaller than dense"
                              "<extra></extra>",
                cliponaxis=False)
    yaxis = dict(type="log", title=dict(text="stored bytes (log)"), dtick=1, tickformat="~s",
                 range=[math.log10(min(sizes)) - 0.5, math.log10(max(sizes)) + 0.6])
    return _stage_figure(bars, yaxis, "Stored size by stage")


def accuracy_by_stage(stages: list[dict]) -> go.Figure:
    """Test accuracy after each stage, with the dense accuracy as a dotted reference."""
    names = [r["stage"] for r in stages]
    acc = [r["test_acc"] for r in stages]
    # no text on the points: close values overlapped into an unreadable row (the table above has every number)
    line = dict(type="scatter", x=names, y=acc, mode="lines+markers", line=dict(color=COLORS["test"], width=3),
                marker=dict(size=12, color=[_color(n) for n in names]), name="test accuracy",
                hovertemplate="%{x}: %{y:.2%}<extra></extra>", cliponaxis=False)
    # the axis never passes 100 % (a point at 100 % is drawn whole: cliponaxis=False)
    yaxis = dict(tickformat=".0%", title=dict(text="test accuracy"),
                 range=[max(0.0, min(acc) - 0.08), min(1.0, max(acc) + 0.04)])
    dense = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=acc[0], y1=acc[0],
                 line=dict(color=COLORS["baseline"], dash="dot"))
    note = dict(text=f"dense {acc[0]:.1%}", xref="paper", x=1, yref="y", y=acc[0], xanchor="right", yanchor="bottom",
                showarrow=False)  # at the right end, above the line: clear of the dense point
    return _stage_figure(line, yaxis, "Test accuracy by stage", shapes=[dense], annotations=[note])


def stages_chart(stages: list[dict]) -> go.Figure:
    """``size_by_stage`` over ``accuracy_by_stage``, one chart on one row of stage names: what each stage saves
    and what it costs, read down a column (and one chart redraws faster than two on a slider move)."""
    return stack(size_by_stage(stages), accuracy_by_stage(stages), heights=(250, 170), gap=40, legend=False)


def shared_histogram(pruned_w: torch.Tensor, mask: torch.Tensor, final_w: torch.Tensor, centroids: list[float],
                     layer: str, bins: int = 80) -> go.Figure:
    """Surviving weights before sharing (bars) and after (where the shared values sit).

    k-means: the k centroids as vertical lines. Uniform: the quantized values' own histogram on top
    (each output channel has its own grid, so there is no single set of levels to mark).
    """
    keep = mask.bool()
    before = pruned_w[keep].detach().cpu().numpy()
    after = final_w[keep].detach().cpu().numpy()
    fig = go.Figure()
    if before.size == 0:
        fig.add_annotation(text="Every weight of this layer was pruned", showarrow=False, font=dict(size=18))
        return style(fig, f"{layer}: no surviving weight", height=400)
    lo, hi = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)  # pre-binned: 80 counts, not every weight
    centers, width = ((edges[:-1] + edges[1:]) / 2).tolist(), float(edges[1] - edges[0])
    data = [dict(type="bar", x=centers, y=np.histogram(before, edges)[0].tolist(), width=width,
                 name="before sharing", marker=dict(color=COLORS["kept"]), opacity=0.75,
                 hovertemplate="%{x:.4f}: %{y} weights<extra></extra>")]
    shapes = []
    if centroids:
        shapes = [dict(type="line", xref="x", yref="paper", x0=c, x1=c, y0=0, y1=1,
                       line=dict(color=COLORS["quant"], width=1.5, dash="dash")) for c in centroids]
        data.append(dict(type="scatter", x=list(centroids), y=[0] * len(centroids), mode="markers",
                         name=f"{len(centroids)} centroids",
                         marker=dict(color=COLORS["quant"], size=11, symbol="triangle-up"),
                         hovertemplate="centroid %{x:.4f}<extra></extra>"))
        title = f"{layer}: {before.size:,} surviving weights and the {len(centroids)} shared values"
    else:
        data.append(dict(type="bar", x=centers, y=np.histogram(after, edges)[0].tolist(), width=width,
                         name="after quantization", marker=dict(color=COLORS["quant"]), opacity=0.6,
                         hovertemplate="%{x:.4f}: %{y} weights<extra></extra>"))
        title = f"{layer}: {before.size:,} surviving weights before and after uniform quantization"
    fig = go.Figure(data=data, layout=dict(barmode="overlay", bargap=0, shapes=shapes,
                                           xaxis=dict(title=dict(text="weight value")),
                                           yaxis=dict(title=dict(text="count"))), _validate=False)
    return style(fig, title, height=420)


def formula_bars(formula: list[dict]) -> go.Figure:
    """Per layer: Han's r = n·b/(n·log2 k + k·b), the measured sharing ratio, and the ratio with index cost."""
    layers = [r["layer"] for r in formula]
    fig = go.Figure()
    for key, name, color in (("han_formula", "Han's formula", COLORS["baseline"]),
                             ("measured", "measured (values + codebook)", COLORS["ticket"]),
                             ("measured_with_index", "measured, with index cost", COLORS["kept"])):
        ys = [r[key] for r in formula]
        fig.add_trace(go.Bar(x=layers, y=ys, name=name, marker_color=color,
                             text=[f"{y:.2f}×" if y == y else "–" for y in ys], textposition="inside",
                             insidetextanchor="end", textangle=0, textfont=dict(color="white")))
    vals = [r[k] for r in formula for k in ("han_formula", "measured", "measured_with_index") if r[k] == r[k]]
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="compression of the sharing step", range=[0, (max(vals) if vals else 1) * 1.2])
    return style(fig, "Weight sharing: formula vs measured, per layer", height=430, legend_below=-0.15)


def file_bytes(breakdown: list[dict], total: int) -> go.Figure:
    """The file's bytes by kind (``deep_compression.file_breakdown``), one bar each, labelled with the share
    of the file's length ``total``."""
    rows = breakdown[::-1]  # the first part on top
    fig = go.Figure(go.Bar(y=[r["part"] for r in rows], x=[r["bytes"] for r in rows], orientation="h",
                           marker_color=COLORS["accent"], text=[f"{r['bytes']:,} B ({r['share']:.0%})" for r in rows],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:,} bytes<extra></extra>"))
    fig.update_xaxes(title_text="bytes", range=[0, max(r["bytes"] for r in rows) * 1.35])
    return style(fig, f"Where the file's {total:,} bytes go", height=330, bottom=60)


def stage_frame_rows(stages: list[dict]) -> list[dict]:
    """Stage rows as the text a table shows: thousands separated, two decimals, percentages. Text, not numbers
    under a pandas Styler: a styled table took the browser about 13 ms more to redraw on every slider move."""
    return [{"stage": r["stage"], "test accuracy": f"{r['test_acc']:.2%}", "bytes": f"{r['bytes']:,}",
             "KB": f"{r['bytes'] / 1024:,.2f}", "× smaller than dense": f"{r['ratio']:,.2f}",
             "sparsity": f"{r['sparsity']:.1%}", "bits / kept weight": f"{r['bits_per_weight']:,.2f}",
             "storage": r["detail"]} for r in stages]


__all__ = ["stages_chart", "size_by_stage", "accuracy_by_stage", "shared_histogram", "formula_bars", "file_bytes",
           "stage_frame_rows"]
