"""Quantization figures: the grid over a weight histogram, the staircase r → q → r̂, per-channel ranges,
per-layer error bars, accuracy (a language model: bits per character) vs bit width and vs size, the per-layer
sensitivity heatmap, and the published whitepaper numbers.

Pure functions of tensors, ``QParams`` and report rows; every figure goes through ``common.style``.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch

from ..quant.primitives import QParams, clip_mask, dequantize, fake_quantize, quantize
from ..quant.report import channel_qparams  # noqa: F401 (re-exported: it used to live here)
from ..stats import standard_error
from .common import COLORS, SEQ, nice_ticks, right_scale, stack, step_area, style

MAX_DRAWN_LEVELS = 64  # above this the dotted level lines fill the chart solid: the shaded band stands for them


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _vband(x0: float, x1: float, color: str, opacity: float) -> dict:
    return dict(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, fillcolor=color, opacity=opacity,
                line_width=0, layer="below")


def _note(text: str, x: float, y: float, xref: str = "paper", yref: str = "paper", **kw) -> dict:
    return dict(text=text, x=x, y=y, xref=xref, yref=yref, showarrow=False, **kw)


def grid_data(values: torch.Tensor, qp: QParams, bins: int = 80) -> dict:
    """What the grid chart draws: the histogram of ``values``, the levels used and how many values land
    on each (``level_counts``, true counts), the covered range and the clipped fraction. ``rounds_lo`` /
    ``rounds_hi``: half a step beyond the first and last level, where clipping starts; ``x_range``: the x axis's
    span, the histogram's and those two."""
    x = values.detach().float().reshape(-1)
    xs = x.numpy()
    lo_r, hi_r = float(qp.range_min), float(qp.range_max)
    lo, hi = min(float(xs.min()), lo_r), max(float(xs.max()), hi_r)
    pad = 0.04 * (hi - lo or 1.0)
    counts, edges = np.histogram(xs, bins=bins, range=(lo - pad, hi + pad))
    ymax = float(counts.max()) if counts.size else 1.0
    levels, level_counts = torch.unique(quantize(x, qp), return_counts=True)
    real_levels = dequantize(levels, qp).numpy()
    half = float(qp.scale.reshape(-1)[0]) / 2
    x_range = (min(float(edges[0]), lo_r - half), max(float(edges[-1]), hi_r + half))
    return {"lo": lo, "hi": hi, "pad": pad, "range_min": lo_r, "range_max": hi_r, "counts": counts, "edges": edges,
            "x_range": x_range, "ymax": ymax, "levels": levels.numpy(), "level_counts": level_counts.numpy(),
            "real_levels": real_levels, "rounds_lo": lo_r - half, "rounds_hi": hi_r + half,
            "clipped": float(clip_mask(x, qp).float().mean())}


def weight_grid(values: torch.Tensor, qp: QParams, title: str | None = None, bins: int = 80,
                x_range: tuple[float, float] | None = None, data: dict | None = None) -> go.Figure:
    """Histogram of ``values`` with the representable levels S·(q − Z) drawn over it, the covered range
    shaded, the clipped tails marked, the zero point labelled and the quantized counts as red stems. ``x_range``
    replaces the x axis's own (the values and where rounding ends), to share an axis (``grid_and_staircase``);
    ``data`` is ``grid_data(values, qp, bins)`` when the caller has it already.

    Built in one ``go.Figure`` call (shapes and notes as lists): this figure is redrawn on every slider move.
    """
    d = data if data is not None else grid_data(values, qp, bins)
    lo, hi, pad, ymax = d["lo"], d["hi"], d["pad"], d["ymax"]
    counts, edges, levels, level_counts, real_levels = (d["counts"], d["edges"], d["levels"], d["level_counts"],
                                                        d["real_levels"])
    clipped, top = d["clipped"], float(level_counts.max()) if level_counts.size else 1.0
    # one filled step outline, not a bar per bin: this figure is redrawn on every bit-width move
    traces = [step_area(edges, counts, COLORS["float"], "float values", "value %{customdata:.4f}<br>%{y} values"
                        "<extra></extra>", opacity=0.55)]
    if qp.levels <= MAX_DRAWN_LEVELS:
        grid = dequantize(torch.arange(qp.qmin, qp.qmax + 1), qp).numpy()
        traces.append(dict(type="scatter", x=np.repeat(grid, 3), y=np.tile([0, ymax * 1.05, np.nan], len(grid)),
                           mode="lines", line=dict(color=COLORS["quant"], width=1 if qp.levels > 32 else 1.6,
                                                   dash="dot"),
                           opacity=0.55, name=f"{qp.levels} levels S·(q − Z)", hoverinfo="skip"))
    # stems: true counts per level, on their own scale (a level collects a whole bin's worth of values or more),
    # drawn on the left axis at ``per`` units of it per value and labelled in true counts along the right edge
    right_top = top * 1.25
    per = ymax / top
    traces.append(dict(type="scatter", x=np.repeat(real_levels, 3),
                       y=np.stack([np.zeros(len(real_levels)), level_counts * per, np.full(len(real_levels), np.nan)],
                                  1).reshape(-1), mode="lines", line=dict(color=COLORS["quant"], width=3),
                       name="quantized: values per level (right)", hoverinfo="skip"))
    traces.append(dict(type="scatter", x=real_levels, y=level_counts * per, mode="markers",
                       marker=dict(color=COLORS["quant"], size=7),
                       showlegend=False, customdata=np.stack([levels, level_counts], 1),
                       hovertemplate="q = %{customdata[0]} → %{x:.4f}<br>%{customdata[1]} values<extra></extra>"))
    # the x axis spans the values and where rounding onto the grid ends (half a step past the end levels)
    x_lo, x_hi = x_range or d["x_range"]
    ticks = nice_ticks(right_top)
    scale, scale_title = right_scale(x_hi, ticks * per, [f"{t:g}" for t in ticks], "values per level",
                                     COLORS["quant"])
    traces.append(scale)
    # values within half a step of the end levels round onto them; clipping starts beyond
    r_lo, r_hi = d["rounds_lo"], d["rounds_hi"]
    shapes = [_vband(r_lo, r_hi, COLORS["accent"], 0.08)]
    shapes += [_vband(a, b, COLORS["removed"], 0.12) for a, b in ((lo - pad, r_lo), (r_hi, hi + pad)) if b > a]
    shapes.append(dict(type="line", xref="x", yref="paper", x0=0, x1=0, y0=0, y1=1, line=dict(color="black", width=2)))
    # short notes, anchored inside the plot; S, Z and clipping go into the title's second line (notes along the
    # top ran past the edges and over each other on a projector-sized chart)
    notes = [_note("rounds onto the grid", r_lo, 0.98, xref="x", xanchor="left", yanchor="top"),
             _note(f"real 0 ↔ Z = {int(qp.zero_point)}", 0.0, ymax * 1.1, xref="x", yref="y", font=dict(size=14),
                   bgcolor="rgba(255,255,255,0.8)"), scale_title]
    title = ((title or "") + f"<br><sup>S = {_fmt(float(qp.scale))}, Z = {int(qp.zero_point)}, {qp.bits} bits, "
             f"clipped {clipped:.2%}</sup>")
    fig = go.Figure(data=traces, layout=dict(
        xaxis=dict(title=dict(text="value"), range=[x_lo, x_hi]),
        yaxis=dict(title=dict(text="float values per bin"), range=[0, ymax * 1.25]), shapes=shapes,
        annotations=notes), _validate=False)
    return style(fig, title, height=520, legend_below=-0.18, bottom=150, right=80, top=85, left=75, fixed=True)


def staircase_data(qp: QParams, data_min: float | None = None, data_max: float | None = None,
                   x_range: tuple[float, float] | None = None) -> dict:
    """The staircase's points: r on the x axis (the step edges exactly), r̂ = S·(q − Z) on the y axis; over the
    grid's range and the data's, 8 % wider each side, or over ``x_range`` when given."""
    lo_r, hi_r = float(qp.range_min), float(qp.range_max)
    if x_range is None:
        lo = min(lo_r, data_min if data_min is not None else lo_r)
        hi = max(hi_r, data_max if data_max is not None else hi_r)
        span = hi - lo or 1.0
        lo, hi = lo - 0.08 * span, hi + 0.08 * span
    else:
        lo, hi = (float(v) for v in x_range)
    s = float(qp.scale)
    if qp.levels <= 1024:  # exact step edges (the half-way points between levels) plus the ends
        edges = (dequantize(torch.arange(qp.qmin, qp.qmax), qp) + s / 2).numpy()
        edges = edges[(edges > lo) & (edges < hi)]
        xs = np.concatenate([[lo], edges, [hi]])
        r_hat = dequantize(quantize(torch.from_numpy(np.concatenate([[lo], edges + 1e-6 * s])).float(), qp), qp)
        ys = np.concatenate([r_hat.numpy(), r_hat.numpy()[-1:]])
    else:  # 16 bits: the steps are far below a pixel; sample the curve
        xs = np.linspace(lo, hi, 2000)
        ys = dequantize(quantize(torch.from_numpy(xs).float(), qp), qp).numpy()
    ticks = np.unique(np.linspace(qp.qmin, qp.qmax, min(qp.levels, 9)).round().astype(int))
    return {"lo": lo, "hi": hi, "range_min": lo_r, "range_max": hi_r, "x": xs, "y": ys, "ticks": ticks}


def staircase(qp: QParams, data_min: float | None = None, data_max: float | None = None,
              title: str | None = None, x_range: tuple[float, float] | None = None) -> go.Figure:
    """The mapping real r → integer q → r̂ = S·(q − Z): a staircase against the identity, with the
    integer codes labelled along the right edge so that r = S·(q − Z) can be read off the chart."""
    d = staircase_data(qp, data_min, data_max, x_range)
    lo, hi, lo_r, hi_r, xs, ys, ticks = d["lo"], d["hi"], d["range_min"], d["range_max"], d["x"], d["y"], d["ticks"]
    s, z = float(qp.scale), int(qp.zero_point)
    traces = [
        dict(type="scatter", x=[lo, hi], y=[lo, hi], mode="lines", name="r̂ = r (no rounding)",
             line=dict(color=COLORS["float"], dash="dash", width=1.5)),
        dict(type="scatter", x=xs, y=ys, mode="lines", name="r̂ = S·(q − Z)",
             line=dict(color=COLORS["quant"], width=2.5, shape="hv"),
             hovertemplate="r = %{x:.4f} → r̂ = %{y:.4f}<extra></extra>"),
        # the label above and left of the point, clear of the line and of the codes on the right edge
        dict(type="scatter", x=[0.0], y=[0.0], mode="markers+text", text=[f"r = 0<br>↔ q = Z = {z} "],
             textposition="top left", marker=dict(color="black", size=10), name="zero point"),
    ]
    # the integer codes q along the right edge, at r̂ = S·(q − Z)
    codes, codes_title = right_scale(hi, [s * (int(q) - z) for q in ticks], [str(int(q)) for q in ticks],
                                     "integer code q", COLORS["quant"])
    traces.append(codes)
    shapes = [_vband(lo, lo_r, COLORS["removed"], 0.1), _vband(hi_r, hi, COLORS["removed"], 0.1)]
    notes = [_note("clipped", hi, 0.01, xref="x", xanchor="right", yanchor="bottom"),
             _note(f"S = {_fmt(s)}, Z = {z}<br>q ∈ [{qp.qmin}, {qp.qmax}]", 0.02, 0.98, xanchor="left", yanchor="top",
                   align="left", font=dict(size=15), bgcolor="rgba(255,255,255,0.85)", bordercolor=COLORS["quant"],
                   borderwidth=1), codes_title]
    fig = go.Figure(data=traces, layout=dict(
        xaxis=dict(title=dict(text="real value r"), range=[lo, hi]),
        yaxis=dict(title=dict(text="r̂ = S·(q − Z)"), range=[lo, hi]), shapes=shapes, annotations=notes),
        _validate=False)
    return style(fig, title, height=520, legend_below=-0.18, bottom=150, right=80, left=75, fixed=True)


def grid_and_staircase(values: torch.Tensor, qp: QParams, title: str | None = None, bins: int = 80) -> go.Figure:
    """``weight_grid`` over ``staircase`` on one x axis, as one chart: each value in the histogram maps straight
    down through the staircase to its level (and one chart redraws faster than two on a slider move)."""
    lo, hi = float(values.min()), float(values.max())
    d, sd = grid_data(values, qp, bins), staircase_data(qp, lo, hi)
    span = (min(d["x_range"][0], sd["lo"]), max(d["x_range"][1], sd["hi"]))
    return stack(weight_grid(values, qp, title, bins, x_range=span, data=d),
                 staircase(qp, lo, hi, title="The mapping r → q → r̂", x_range=span), heights=(270, 210),
                 bottom_margin=110)


def straight_through(qp: QParams, points: int = 801, title: str | None = None) -> go.Figure:
    """How a quantized model is trained: the forward pass r → r̂ (a staircase) beside the gradient the backward
    pass uses, ∂r̂/∂r, read off this library's own ``fake_quantize`` with autograd: 1 wherever the value rounds
    onto the grid (the straight-through estimator treats round() as the identity), 0 where it is clipped. The
    true derivative of the staircase is 0 almost everywhere, which would stop all learning."""
    s = float(qp.scale)
    lo, hi = float(qp.range_min) - 3 * s, float(qp.range_max) + 3 * s
    r = torch.linspace(lo, hi, points, requires_grad=True)
    r_hat = fake_quantize(r, qp)
    r_hat.sum().backward()
    x, fwd, grad = r.detach().numpy(), r_hat.detach().numpy(), r.grad.numpy()
    traces = [dict(type="scatter", x=[lo, hi], y=[lo, hi], mode="lines", name="identity r̂ = r",
                   line=dict(color=COLORS["float"], dash="dash", width=1.5), xaxis="x", yaxis="y"),
              dict(type="scatter", x=x, y=fwd, mode="lines", name="forward: r̂ = S·(clamp(round(r/S) + Z) − Z)",
                   line=dict(color=COLORS["quant"], width=2.5), xaxis="x", yaxis="y"),
              dict(type="scatter", x=x, y=grad, mode="lines", name="backward: ∂r̂/∂r used by training (STE)",
                   line=dict(color=COLORS["kept"], width=3), xaxis="x2", yaxis="y2"),
              dict(type="scatter", x=[lo, hi], y=[0, 0], mode="lines", name="true derivative of the staircase (0)",
                   line=dict(color=COLORS["removed"], dash="dot", width=2), xaxis="x2", yaxis="y2")]
    heads = [_note(text, xc, 1.0, xanchor="center", yanchor="bottom", font=dict(size=16))
             for text, xc in (("Forward pass: round and clip", 0.225), ("Backward pass: straight through", 0.775))]
    layout = dict(xaxis=dict(domain=[0, 0.45], anchor="y", title=dict(text="r")),
                  yaxis=dict(anchor="x", title=dict(text="r̂")),
                  xaxis2=dict(domain=[0.55, 1], anchor="y2", title=dict(text="r")),
                  yaxis2=dict(anchor="x2", range=[-0.15, 1.25], tickvals=[0, 1], title=dict(text="∂r̂/∂r")),
                  shapes=[_vband(a, b, COLORS["removed"], 0.12) for a, b in
                          ((lo, float(qp.range_min) - s / 2), (float(qp.range_max) + s / 2, hi))],
                  annotations=heads)
    return style(go.Figure(data=traces, layout=layout, _validate=False), title, height=420, legend_below=-0.22)


def channel_ranges(weight: torch.Tensor, per_channel: QParams | None = None, per_tensor: QParams | None = None,
                   title: str | None = None, max_channels: int = 120) -> go.Figure:
    """Each output channel's [min, max] as a floating bar, with the single per-tensor range as lines:
    when channel ranges differ, one shared grid wastes levels on the narrow channels."""
    w = weight.detach().float().reshape(weight.shape[0], -1)
    lo, hi = w.amin(1).numpy(), w.amax(1).numpy()
    idx = np.arange(len(lo))
    if len(idx) > max_channels:  # keep it readable: the widest and narrowest channels plus an even sample
        order = np.argsort(hi - lo)
        sample = np.linspace(0, len(lo) - 1, max_channels - 20).astype(int)
        keep = np.unique(np.concatenate([order[:10], order[-10:], sample]))
        idx = keep
    traces = [dict(type="bar", x=idx, y=(hi - lo)[idx], base=lo[idx], name="channel range [min, max]",
                   marker=dict(color=COLORS["kept"]), opacity=0.75,
                   hovertemplate="channel %{x}<br>min %{base:.4f}<br>range %{y:.4f}<extra></extra>")]
    layout = dict(xaxis=dict(title=dict(text="output channel")), yaxis=dict(title=dict(text="weight value")),
                  shapes=[], annotations=[])
    if per_tensor is not None:
        for v in (float(per_tensor.range_min), float(per_tensor.range_max)):
            layout["shapes"].append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=v, y1=v,
                                         line=dict(color=COLORS["quant"], dash="dash", width=2)))
        layout["annotations"].append(_note("per-tensor grid", 0, float(per_tensor.range_min), yref="y",
                                           xanchor="left", yanchor="top", font=dict(color=COLORS["quant"])))
        if per_channel is not None and per_channel.axis is not None:
            ratio = float(per_tensor.scale) / per_channel.scale.numpy()
            traces.append(dict(type="scatter", x=idx, y=ratio[idx], yaxis="y2", mode="markers",
                               name="S per tensor ÷ S channel",
                               marker=dict(color=COLORS["ticket"], size=6, symbol="diamond")))
            layout["yaxis2"] = dict(title=dict(text="finer by ×"), overlaying="y", side="right", showgrid=False,
                                    range=[0, float(ratio.max()) * 1.15])
    fig = go.Figure(data=traces, layout=layout, _validate=False)
    return style(fig, title, height=430, legend_below=-0.2, right=70)


def layer_errors(rows: list[dict], title: str | None = None) -> go.Figure:
    """SQNR (dB, higher is better) and MSE per quantized tensor, from ``layer_report`` rows.

    Two side-by-side axes built as plain dicts in one unvalidated constructor call (as ``make_subplots`` would
    lay them out): this figure is redrawn on every bit-width move.
    """
    colors = {"weight": COLORS["kept"], "input": COLORS["accent"], "output": COLORS["reinit"]}
    traces = []
    for kind in ("weight", "input", "output"):
        rs = [r for r in rows if r["tensor"] == kind]
        if not rs:
            continue
        labels = [f"{r['layer']} {kind}" for r in rs]
        sq = [min(r["sqnr_db"], 120.0) for r in rs]
        text = ["exact" if math.isinf(r["sqnr_db"]) else f"{r['sqnr_db']:.1f}" for r in rs]
        traces.append(dict(type="bar", x=labels, y=sq, text=text, textposition="outside", name=kind + "s",
                           marker=dict(color=colors[kind]), legendgroup=kind, xaxis="x", yaxis="y",
                           customdata=[[r["bits"], r["clip_fraction"]] for r in rs],
                           hovertemplate="%{x}<br>SQNR %{text} dB<br>%{customdata[0]} bits, clipped "
                                         "%{customdata[1]:.2%}<extra></extra>"))
        traces.append(dict(type="bar", x=labels, y=[max(r["mse"], 1e-16) for r in rs], name=kind + "s",
                           marker=dict(color=colors[kind]), legendgroup=kind, showlegend=False, xaxis="x2",
                           yaxis="y2", hovertemplate="%{x}<br>MSE %{y:.3g}<extra></extra>"))
    heads = [_note(text, x, 1.0, xanchor="center", yanchor="bottom", font=dict(size=16))
             for text, x in (("SQNR (dB) — higher is better", 0.225), ("MSE — lower is better", 0.775))]
    layout = dict(xaxis=dict(domain=[0, 0.45], anchor="y"), yaxis=dict(anchor="x", rangemode="tozero"),
                  xaxis2=dict(domain=[0.55, 1], anchor="y2"),
                  yaxis2=dict(anchor="x2", type="log", dtick=1, exponentformat="power"),  # powers of ten: readable
                  annotations=heads)
    return style(go.Figure(data=traces, layout=layout, _validate=False), title, height=460, legend_below=-0.2)



def _curve_traces(series: dict[str, list[dict]], x: str, y: str, y_hover: str, current: dict | None,
                  float_kb: float | None, float_y: float, error: str | None = None) -> list[dict]:
    """The lines of ``accuracy_curves`` / ``bpc_curves``: one per series (``y`` against ``x``, error bars from the
    ``error`` key), the float model as a square when ``x`` is the size, the current setting as a star."""
    traces = []
    for i, (name, rows) in enumerate(series.items()):
        rows = sorted(rows, key=lambda r: r[x])
        trace = dict(type="scatter", x=[r[x] for r in rows], y=[r[y] for r in rows], mode="lines+markers",
                     name=name, line=dict(color=SEQ[i % len(SEQ)], width=3), marker=dict(size=8),
                     customdata=[[r["bits"], r["kb"]] for r in rows],
                     hovertemplate=name + ": %{customdata[0]} bits, %{customdata[1]:.1f} KB<br>" + y_hover
                     + "<extra></extra>")
        if error:
            trace["error_y"] = dict(type="data", array=[r[error] for r in rows], visible=True, thickness=1.2, width=3)
        traces.append(trace)
    if x == "kb" and float_kb is not None:
        traces.append(dict(type="scatter", x=[float_kb], y=[float_y], mode="markers", name="float32 model",
                           marker=dict(color=COLORS["float"], size=12, symbol="square")))
    if current is not None:
        traces.append(dict(type="scatter", x=[current[x]], y=[current[y]], mode="markers", name="current setting",
                           marker=dict(color="gold", size=20, symbol="star", line=dict(color="black", width=1.5))))
    return traces


def _curve_axis(x: str) -> dict:
    """Bit width or model size, both on log scales with readable ticks."""
    if x == "bits":
        return dict(title=dict(text="bit width"), type="log", tickvals=[1, 2, 3, 4, 5, 6, 8, 16],
                    ticktext=["1", "2", "3", "4", "5", "6", "8", "16"])
    return dict(title=dict(text="model size (KB, log scale)"), type="log",
                tickvals=[2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000])


def accuracy_curves(series: dict[str, list[dict]], float_acc: float, x: str = "bits", current: dict | None = None,
                    float_kb: float | None = None, title: str | None = None,
                    control_acc: float | None = None) -> go.Figure:
    """Test accuracy against bit width (``x="bits"``) or size in KB (``x="kb"``), one line per series
    (PTQ per tensor, PTQ per channel, QAT...), float as a reference, the current setting as a star.
    Built as plain dicts in one unvalidated constructor call: it is redrawn on every bit-width move."""
    traces = _curve_traces(series, x, "accuracy", "accuracy %{y:.2%}", current, float_kb, float_acc)
    xaxis = _curve_axis(x)
    layout = dict(xaxis=xaxis, yaxis=dict(title=dict(text="test accuracy"), tickformat=".0%"),
                  shapes=[dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=float_acc, y1=float_acc,
                               line=dict(color=COLORS["float"], dash="dash", width=2))],
                  annotations=[_note(f"float {float_acc:.1%}", 1, float_acc, yref="y", xanchor="right",
                                     yanchor="top")])
    if control_acc is not None:  # the fair reference for QAT points: float with the same fine-tuning
        layout["shapes"].append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=control_acc,
                                     y1=control_acc, line=dict(color=COLORS["ticket"], dash="dash", width=2)))
        layout["annotations"].append(_note(f"float + QAT's fine-tuning {control_acc:.1%}", 0, control_acc,
                                           yref="y", xanchor="left", yanchor="bottom",
                                           font=dict(color=COLORS["ticket"])))
    return style(go.Figure(data=traces, layout=layout, _validate=False), title, height=460, legend_below=-0.2)


# Krishnamoorthi 2018, "Quantizing deep convolutional networks for efficient inference: a whitepaper" — see
# /work/shared/REFERENCES.md. Top-1 accuracy, 4-bit weights and 8-bit activations.
PUBLISHED_W4A8 = {
    "ResNet-v1-50": {"per-layer PTQ": 0.002, "per-channel PTQ": 0.54, "per-channel QAT": 0.732, "float": 0.752},
    "MobileNet-v1": {"per-layer PTQ": 0.02, "per-channel PTQ": 0.001, "per-channel QAT": 0.65, "float": 0.709},
}


def published_whitepaper() -> go.Figure:
    """Krishnamoorthi 2018's 4-bit-weight ImageNet results as grouped bars, labelled as published."""
    fig = go.Figure()
    methods = ["per-layer PTQ", "per-channel PTQ", "per-channel QAT", "float"]
    colors = [SEQ[0], SEQ[1], SEQ[2], COLORS["float"]]
    for m, c in zip(methods, colors):
        nets = list(PUBLISHED_W4A8)
        fig.add_trace(go.Bar(x=nets, y=[PUBLISHED_W4A8[n][m] for n in nets], name=m, marker_color=c,
                             text=[f"{PUBLISHED_W4A8[n][m]:.1%}" for n in nets], textposition="outside"))
    fig.update_layout(barmode="group", yaxis=dict(title="ImageNet top-1 (published)", tickformat=".0%",
                                                  range=[0, 0.9]))
    return style(fig, "Published: 4-bit weights, 8-bit activations (Krishnamoorthi 2018, ImageNet)", height=400)


def sensitivity_heatmap(scan: list[dict], suggestion: dict[str, int] | None = None,
                        title: str | None = None) -> go.Figure:
    """Change in accuracy (points, negative = worse) with only one layer's weights quantized, per layer × bit
    width, red for losses and blue for gains; the suggested bit width of each layer outlined. A language model's
    scan (rows with "change_bpc") shows the change in bits per character instead (positive = worse, still red)."""
    layers = list(dict.fromkeys(r["layer"] for r in scan))
    bits = sorted({r["bits"] for r in scan})
    z = np.full((len(layers), len(bits)), np.nan)
    bpc = bool(scan) and "change_bpc" in scan[0]
    for r in scan:
        z[layers.index(r["layer"]), bits.index(r["bits"])] = r["change_bpc"] if bpc else r["change_pts"]
    if bpc:
        return _bpc_heatmap(z, layers, bits, suggestion, title)
    worst = max(5.0, float(-np.nanmin(z)) if np.isfinite(z).any() else 5.0)
    shapes = _outlines(layers, bits, suggestion)
    # Plotly's RdBu runs blue → red from low to high: reversed, losses (negative) are red and gains blue
    heat = dict(type="heatmap", x=[f"{b} bits" for b in bits], y=layers, z=z, colorscale="RdBu", reversescale=True,
                zmid=0,
                zmin=-worst, zmax=worst, text=[[f"{v:+.1f}" for v in row] for row in z], texttemplate="%{text}",
                textfont=dict(size=15), colorbar=dict(title=dict(text="change<br>(points)")),
                hovertemplate="%{y} at %{x}: accuracy %{z:+.2f} points (negative = worse)<extra></extra>")
    fig = go.Figure(data=[heat], layout=dict(shapes=shapes, yaxis=dict(autorange="reversed")), _validate=False)
    return style(fig, title, height=max(260, 70 * len(layers) + 120))


def error_bars(fig: go.Figure, series: dict[str, list[dict]], n_test: int) -> go.Figure:
    """Draw ± 1 binomial standard error, √(p(1 − p)/n), on every point of the accuracy curves in ``fig``."""
    for trace in fig.data:
        if trace.name in series and trace.y is not None:
            trace.error_y = dict(type="data", array=[standard_error(float(y), n_test) for y in trace.y],
                                 visible=True, thickness=1.2, width=3)
    return fig


def _outlines(layers: list[str], bits: list[int], suggestion: dict[str, int] | None) -> list[dict]:
    return [dict(type="rect", x0=bits.index(suggestion[n]) - 0.5, x1=bits.index(suggestion[n]) + 0.5, y0=i - 0.5,
                 y1=i + 0.5, line=dict(color="black", width=3))
            for i, n in enumerate(layers) if suggestion and n in suggestion and suggestion[n] in bits]


def _bpc_heatmap(z: np.ndarray, layers: list[str], bits: list[int], suggestion: dict[str, int] | None,
                 title: str | None) -> go.Figure:
    """``sensitivity_heatmap`` of a language model: the change in bits per character, increases (worse) red."""
    worst = max(0.05, float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.05)
    heat = dict(type="heatmap", x=[f"{b} bits" for b in bits], y=layers, z=z, colorscale="RdBu", reversescale=False,
                zmid=0, zmin=-worst, zmax=worst, text=[[f"{v:+.3f}" for v in row] for row in z],
                texttemplate="%{text}", textfont=dict(size=13), colorbar=dict(title=dict(text="change<br>(bits/char)")),
                hovertemplate="%{y} at %{x}: %{z:+.4f} bits per character (positive = worse)<extra></extra>")
    fig = go.Figure(data=[heat], layout=dict(shapes=_outlines(layers, bits, suggestion),
                                             yaxis=dict(autorange="reversed")), _validate=False)
    return style(fig, title, height=max(260, 40 * len(layers) + 140))


def bpc_curves(series: dict[str, list[dict]], float_bpc: float, x: str = "bits", current: dict | None = None,
               float_kb: float | None = None, title: str | None = None) -> go.Figure:
    """A language model's ``accuracy_curves``: bits per character (lower is better) against bit width or size, from
    ``bits_sweep`` rows with "bpc" and "bpc_se" (± 1 standard error over the test windows drawn as error bars),
    float as a dashed reference, the current setting (``current``: bits, bpc, kb) as a star."""
    traces = _curve_traces(series, x, "bpc", "%{y:.3f} bits per character", current, float_kb, float_bpc,
                           error="bpc_se")
    xaxis = _curve_axis(x)
    layout = dict(xaxis=xaxis, yaxis=dict(title=dict(text="bits per character (lower is better)")),
                  shapes=[dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=float_bpc, y1=float_bpc,
                               line=dict(color=COLORS["float"], dash="dash", width=2))],
                  annotations=[_note(f"float {float_bpc:.3f}", 1, float_bpc, yref="y", xanchor="right",
                                     yanchor="bottom")])
    return style(go.Figure(data=traces, layout=layout, _validate=False), title, height=460, legend_below=-0.2)
