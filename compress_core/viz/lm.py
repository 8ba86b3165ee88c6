"""Figures of the Language models page: variants' bits per character with error bars, SmoothQuant's α curve,
activation outliers per channel, a layer's channels before and after smoothing, and per-layer objectives.

Pure functions of ``compress_core.lm`` results (``Score`` objects, outlier tables, smoothing views).

Usage::

    res = scores(model, ds, ["rtn_w3_g128", "gptq_w3_g128"], calib)
    bpc_bars(res, "Weight-only, 3 bits")
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..lm.variants import Score, label
from .common import COLORS, SEQ, style

__all__ = ["alpha_chart", "bpc_bars", "channel_chart", "objective_chart", "smoothing_chart"]

METHOD_COLORS = {"rtn": COLORS["quant"], "magnitude": COLORS["quant"], "gptq": COLORS["ticket"],
                 "sparsegpt": COLORS["ticket"], "awq": COLORS["kept"], "wanda": COLORS["kept"],
                 "float": COLORS["float"]}


def _color(key: str) -> str:
    return METHOD_COLORS.get(key.split("_")[0], COLORS["accent"])


def bpc_bars(res: Mapping[str, Score], title: str, height: int = 360) -> go.Figure:
    """One bar per variant: how many bits per character it adds to float32 on the held-out windows (a paired
    difference, so the windows' own difficulty cancels), ± 2 standard errors: a bar whose whisker crosses zero is
    no different from float32. The bars start at zero; float32's own score is in the title."""
    keys = [k for k in res if k != "float"]
    ref = res["float"]
    fig = go.Figure(go.Bar(
        x=[label(k) for k in keys], y=[res[k].diff for k in keys],
        marker_color=[_color(k) for k in keys],
        error_y=dict(type="data", array=[2 * res[k].diff_se for k in keys], visible=True, color="#333"),
        customdata=np.array([[res[k].bpc, res[k].diff_se] for k in keys]),
        hovertemplate="%{x}: %{customdata[0]:.4f} bits/char<br>%{y:+.4f} ± %{customdata[1]:.4f} vs float32"
                      "<extra></extra>"))
    fig.add_hline(y=0.0, line=dict(color=COLORS["float"], width=1))
    fig.plotly_relayout({"yaxis.title.text": "bits / char above float32", "yaxis.zeroline": False})
    return style(fig, f"{title} — float32: {ref.bpc:.3f} bits/char", height, fixed=True, bottom=70)


def alpha_chart(res: Mapping[str, Score], alpha: float, title: str, height: int = 360) -> go.Figure:
    """SmoothQuant's W8A8 bits per character against α (band: ± 2 paired s.e.), with plain per-tensor and per-token
    W8A8 and float32 as lines, and the chosen α marked."""
    curve = sorted(((float(k.rsplit("_a", 1)[1]), s) for k, s in res.items() if "_a" in k), key=lambda t: t[0])
    xs = [a for a, _ in curve]
    ys = np.array([s.bpc for _, s in curve])
    err = np.array([2 * s.diff_se for _, s in curve])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs + xs[::-1], y=list(ys + err) + list((ys - err)[::-1]), fill="toself",
                             fillcolor="rgba(44,160,44,0.15)", line=dict(width=0), hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="SmoothQuant + W8A8 per tensor",
                             line=dict(color=COLORS["ticket"], width=3),
                             hovertemplate="α = %{x}: %{y:.4f} bits/char<extra></extra>"))
    for key, name, color, dash in (("w8a8_per_tensor", "W8A8 per tensor, no smoothing", COLORS["quant"], "dot"),
                                   ("w8a8_per_token", "W8A8 per token (dynamic)", COLORS["kept"], "dashdot"),
                                   ("float", "float32", COLORS["float"], "dash")):
        if key in res:
            fig.add_trace(go.Scatter(x=[0, 1], y=[res[key].bpc] * 2, mode="lines", name=name,
                                     line=dict(color=color, dash=dash), hoverinfo="skip"))
    chosen = min(curve, key=lambda t: abs(t[0] - alpha))
    fig.add_trace(go.Scatter(x=[chosen[0]], y=[chosen[1].bpc], mode="markers", name=f"α = {chosen[0]:g}",
                             marker=dict(size=16, color=COLORS["ticket"], line=dict(color="black", width=2)),
                             hovertemplate="α = %{x}: %{y:.4f} bits/char<extra></extra>"))
    fig.plotly_relayout({"xaxis.title.text": "migration strength α (0: all on the activations, 1: all on the "
                                             "weights)", "yaxis.title.text": "bits per character",
                         "xaxis.range": [-0.03, 1.03]})
    return style(fig, title, height, legend_below=-0.28, fixed=True, bottom=130)


def channel_chart(mags: np.ndarray, top: Sequence[int], layer: str, ratio: float, height: int = 340) -> go.Figure:
    """max |x_j| of every input channel of one layer, the largest channels in red."""
    colors = np.full(len(mags), COLORS["kept"], dtype=object)
    colors[list(top)] = COLORS["removed"]
    fig = go.Figure(go.Bar(x=np.arange(len(mags)), y=mags, marker_color=colors, marker_line_width=0,
                           hovertemplate="channel %{x}: max |x| = %{y:.3g}<extra></extra>"))
    fig.plotly_relayout({"xaxis.title.text": "input channel", "yaxis.title.text": "max |activation|",
                         "bargap": 0.05})
    return style(fig, f"{layer}: input channels (largest {ratio:.0f}× the median)", height, fixed=True, bottom=60)


def smoothing_chart(view: Mapping[str, np.ndarray], layer: str, alpha: float, height: int = 380) -> go.Figure:
    """One layer's per-channel maxima of |X| and |W| before (thin) and after (filled) smoothing at ``alpha``: the
    activations' peaks shrink and the weights' grow, until at α = 0.5 both have the same maximum per channel."""
    idx = np.arange(len(view["x"]))
    fig = go.Figure()
    for key, name, color, dash in (("x", "activations, before", COLORS["quant"], "dot"),
                                   ("w", "weights, before", COLORS["kept"], "dot"),
                                   ("x_smooth", "activations ÷ s", COLORS["quant"], None),
                                   ("w_smooth", "weights × s", COLORS["kept"], None)):
        fig.add_trace(go.Scatter(x=idx, y=view[key], mode="lines", name=name,
                                 line=dict(color=color, dash=dash, width=1 if dash else 2.5),
                                 hovertemplate="channel %{x}: %{y:.3g}<extra>" + name + "</extra>"))
    fig.plotly_relayout({"xaxis.title.text": "input channel", "yaxis.title.text": "max |value| (log)",
                         "yaxis.type": "log"})
    return style(fig, f"{layer}: channel maxima before and after smoothing, α = {alpha:g}", height,
                 legend_below=-0.25, fixed=True, bottom=120)


def objective_chart(rows: Sequence[Mapping], title: str, height: int = 380) -> go.Figure:
    """Per layer: the layer-wise error ‖XWᵀ − XŴᵀ‖²/N of GPTQ and AWQ relative to round-to-nearest's (1 = RTN's;
    below 1, the method's quantized layer reproduces the float layer's outputs better)."""
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    for i, method in enumerate(m for m in ("gptq", "awq") if m in rows[0]):
        fig.add_trace(go.Bar(x=names, y=[r[method] / max(r["rtn"], 1e-30) for r in rows], name=method.upper(),
                             marker_color=_color(method) if i == 0 else SEQ[0],
                             hovertemplate="%{x}: %{y:.2f}× RTN's error<extra>" + method.upper() + "</extra>"))
    fig.add_hline(y=1.0, line=dict(color=COLORS["quant"], dash="dash"), annotation_text="RTN",
                  annotation_position="top left")
    fig.plotly_relayout({"yaxis.title.text": "output error ÷ RTN's", "xaxis.tickangle": -45, "barmode": "group"})
    return style(fig, title, height, fixed=True, bottom=130)
