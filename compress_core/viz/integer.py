"""Integer-inference figures: float vs integer per output unit, the rescale pipeline, logits of one example,
accuracy and memory bars, and the multiplier explorer's error curve (Jacob et al. 2018).

Pure functions of numbers produced by ``compress_core.integer``; every figure goes through ``style``.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..integer.fixed_point import multiplier_value, quantize_multiplier
from .common import COLORS, style

INT_COLOR = "#2ca02c"  # the integer-only model, next to COLORS["float"] and COLORS["quant"] (fake-quant)


def int_vs_float(units: dict, scale: float, title: str | None = None) -> go.Figure:
    """Each output unit of one layer: the integer result's real value S·(q − Z) against the float layer's
    output on the same input; the band is ± half a quantization step around the diagonal."""
    f, r = np.asarray(units["float_out"], float), np.asarray(units["real_out"], float)
    steps = np.abs(r - f) / scale
    lo, hi = float(min(f.min(), r.min())), float(max(f.max(), r.max()))
    pad = 0.05 * (hi - lo or 1.0)
    line = np.array([lo - pad, hi + pad])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.r_[line, line[::-1]], y=np.r_[line - scale / 2, line[::-1] + scale / 2],
                             fill="toself", fillcolor="rgba(44,160,44,0.12)", line=dict(width=0),
                             name="± ½ step", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=line, y=line, mode="lines", line=dict(color=COLORS["float"], dash="dash"),
                             name="integer = float", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=f, y=r, mode="markers", name="output units",
                             marker=dict(size=7, color=steps, colorscale="Viridis", cmin=0, cmax=max(1.0, steps.max()),
                                         colorbar=dict(title="|diff|<br>(steps)", thickness=14)),
                             customdata=np.arange(len(f)),
                             hovertemplate="unit %{customdata}<br>float %{x:.4f}<br>integer %{y:.4f}<extra></extra>"))
    fig.update_xaxes(title_text="float layer output (same input)")
    fig.update_yaxes(title_text="integer result, S·(q − Z)")
    return style(fig, title, height=420)


def logits_bars(class_names: list[str], float_logits: np.ndarray, fq_logits: np.ndarray, int_logits: np.ndarray,
                title: str | None = None) -> go.Figure:
    """The chosen example's logits per class in the three models; the predicted class of each is outlined."""
    fig = go.Figure()
    for name, vals, color in (("float", float_logits, COLORS["float"]), ("fake-quant", fq_logits, COLORS["quant"]),
                              ("integer-only", int_logits, INT_COLOR)):
        top = int(np.argmax(vals))
        fig.add_trace(go.Bar(x=list(class_names), y=vals, name=name, marker=dict(
            color=color, line=dict(color=["black" if i == top else color for i in range(len(vals))],
                                   width=[3 if i == top else 0 for i in range(len(vals))])),
            hovertemplate=name + ": class %{x}, logit %{y:.3f}<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text="logit (real value)")
    return style(fig, title, height=360)


def accuracy_bars(acc: dict[str, float], title: str | None = None) -> go.Figure:
    """Test accuracy of the float, fake-quantized and integer-only models."""
    names = ["float32", "fake-quant", "integer-only"]
    vals = [acc["float"], acc["fake_quant"], acc["integer"]]
    fig = go.Figure(go.Bar(x=names, y=vals, marker_color=[COLORS["float"], COLORS["quant"], INT_COLOR],
                           text=[f"{v:.2%}" for v in vals], textposition="outside",
                           hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    low = min(vals)
    fig.update_yaxes(tickformat=".0%", range=[max(0.0, low - 0.1), min(1.0, max(vals) + 0.05)])
    return style(fig, title, height=340)


def memory_bars(sizes: dict[str, int], weight_bits: int, title: str | None = None) -> go.Figure:
    """Model bytes: float32, int8 (int32 biases and rescale parameters included), packed 4-bit, and the
    converted model at its own weight bit width."""
    rows = [("float32", sizes["float32"], COLORS["float"]), ("int8", sizes["int8"], COLORS["quant"]),
            ("packed 4-bit", sizes["packed4"], COLORS["accent"])]
    if weight_bits not in (8, 4):
        rows.append((f"as converted ({weight_bits}-bit)", sizes["as_converted"], INT_COLOR))
    fig = go.Figure(go.Bar(y=[r[0] for r in rows], x=[r[1] / 1024 for r in rows], orientation="h",
                           marker_color=[r[2] for r in rows],
                           text=[f"{r[1] / 1024:.1f} KB · {sizes['float32'] / r[1]:.1f}× smaller" if i else
                                 f"{r[1] / 1024:.1f} KB" for i, r in enumerate(rows)],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.2f} KB<extra></extra>"))
    # room right of the longest bar for its label: outside labels are never cut off
    fig.update_xaxes(title_text="kilobytes", range=[0, 1.9 * sizes["float32"] / 1024])
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, height=90 + 60 * len(rows))


def multiplier_error(M: float, title: str | None = None, points: int = 400) -> go.Figure:
    """Relative error of M0·2^−n against M over six decades, with the chosen M marked: the error never
    exceeds 2^−31 in relative terms (M0 has 31 significant bits) — the rescale is essentially exact."""
    Ms = np.logspace(-6, np.log10(0.999), points)
    errs = []
    for m in Ms:
        M0, sh = quantize_multiplier(float(m))
        errs.append(abs(multiplier_value(M0, sh) - m) / m)
    M0, sh = quantize_multiplier(M)
    e = abs(multiplier_value(M0, sh) - M) / M
    errs = np.array(errs)
    keep = errs > 0  # exactly representable multipliers (powers of two...) have no error to draw on a log axis
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=Ms[keep], y=errs[keep], mode="lines", name="|M0·2^−n − M| / M",
                             line=dict(color=COLORS["kept"], width=1.5)))
    fig.add_hline(y=2.0 ** -31, line=dict(color=COLORS["removed"], dash="dash"),
                  annotation_text="2^−31 (half a unit of M0 at its smallest)", annotation_position="top left")
    fig.add_trace(go.Scatter(x=[M], y=[max(e, 1e-14)], mode="markers", name="your M" + (" (exact)" if e == 0 else ""),
                             marker=dict(size=14, color=COLORS["reinit"], symbol="diamond")))
    fig.update_xaxes(type="log", title_text="multiplier M")
    fig.update_yaxes(type="log", title_text="relative error", exponentformat="power", range=[-14, -8.5])
    return style(fig, title, height=360)


def rescale_steps(values: list[tuple[str, float]], title: str | None = None) -> go.Figure:
    """The rescale of one accumulator as a row of labelled magnitudes: acc → ·2^L → high → shift → +Z → clamp."""
    labels = [v[0] for v in values]
    nums = [float(v[1]) for v in values]
    fig = go.Figure(go.Bar(x=labels, y=[max(abs(n), 0.5) for n in nums], text=[f"{n:,.0f}" for n in nums],
                           textposition="outside", marker_color=[COLORS["kept"]] * 3 + [INT_COLOR] * (len(nums) - 3),
                           hovertemplate="%{x}: %{text}<extra></extra>"))
    fig.update_yaxes(type="log", title_text="|value| (log scale)")
    return style(fig, title, height=340)
