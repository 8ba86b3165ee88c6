"""Drop-debugger figures: where a compressed model's error comes from, layer by layer, and the flipped examples
drawn as data (digits as images, MNIST-1D as signals, 2-D points on their scatter, feature rows as a heat map).

Pure functions of ``recover.DropDebugger`` rows (``layers()``, ``flips()``) and numpy arrays; every figure goes
through ``common.style``.

Usage::

    dbg = DropDebugger(b.model, q, ds.x_test, ds.y_test)
    layer_drop(dbg.layers())                                   # SQNR only-this-layer vs accumulated, error split
    flipped_samples(ds.x_test.numpy(), ds.y_test.numpy(), dbg.flips(), ds.kind, ds.class_names)
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import SEQ, image_grid, sequence_lines, style

__all__ = ["PARTS", "changed_characters", "flip_label", "flipped_samples", "layer_drop"]

# the weight error's parts (``recover.weight_error``) and the output activations' (``activation_error``), stacked
PARTS = (("clip_rel", "weight clipping", "#d62728"), ("round_rel", "weight rounding", "#1f77b4"),
         ("prune_rel", "pruning", "#7f7f7f"), ("other_rel", "other weight change", "#9467bd"),
         ("act_clip_rel", "activation clipping", "#ff9896"), ("act_round_rel", "activation rounding", "#aec7e8"))
CAP_DB = 80.0  # an exact layer (no error: SQNR = ∞) is drawn at this height and labelled "exact"


def _db(v: float) -> float:
    return CAP_DB if math.isinf(v) and v > 0 else max(min(v, CAP_DB), -CAP_DB)


def layer_drop(rows: list[dict], scale: str = "db", title: str | None = None) -> go.Figure:
    """Top: each layer's output error when only that layer is compressed against the error accumulated up to it
    (every layer compressed): SQNR in dB (``scale="db"``, higher is better) or relative MSE (``"rel"``, log axis,
    lower is better). Bottom: that layer's own error split into its parts, relative to the signal, stacked."""
    if scale not in ("db", "rel"):
        raise ValueError("The error scale is 'db' (SQNR) or 'rel' (relative MSE).")
    names = [r["layer"] for r in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.55, 0.45])
    for key, label, color in (("only_layer", "only this layer compressed", SEQ[1]),
                              ("accumulated", "every layer compressed (accumulated)", "#555555")):
        if scale == "db":
            vals = [r[f"{key}_sqnr_db"] for r in rows]
            y = [_db(v) for v in vals]
            text = ["exact" if math.isinf(v) and v > 0 else f"{v:.1f}" for v in vals]
        else:
            vals = [r[f"{key}_rel_mse"] for r in rows]
            y = [v if v > 0 else None for v in vals]
            text = ["exact" if v == 0 else f"{v:.2g}" for v in vals]
        fig.add_trace(go.Bar(x=names, y=y, name=label, marker_color=color, text=text,
                             textposition="outside" if len(rows) <= 8 else "none",  # a dozen pairs: hover instead
                             cliponaxis=False, legendgroup="err", offsetgroup=key,
                             hovertemplate="%{x}: %{text}<extra>" + label + "</extra>"), row=1, col=1)
    base = [0.0] * len(rows)  # stacked by hand (``base``): the top panel's bars are grouped, and barmode is global
    for key, label, color in PARTS:
        vals = [float(r.get(key, 0.0)) for r in rows]
        if not any(v > 0 for v in vals):
            continue
        fig.add_trace(go.Bar(x=names, y=vals, base=list(base), name=label, marker_color=color, offsetgroup="parts",
                             legendgroup="parts",
                             hovertemplate="%{x}: %{y:.3g} of the signal<extra>" + label + "</extra>"), row=2, col=1)
        base = [b + v for b, v in zip(base, vals)]
    fig.update_layout(barmode="group")
    if scale == "db":
        fig.update_yaxes(title_text="SQNR (dB), higher = better", row=1, col=1)
    else:
        fig.update_yaxes(title_text="relative MSE, lower = better", type="log", row=1, col=1)
    fig.update_yaxes(title_text="own error ÷ signal", row=2, col=1)
    return style(fig, title, height=560, legend_below=-0.12)


def flip_label(r: dict, class_names: list[str]) -> str:
    """E.g. "#12 · 3: 3 (91%) → 8 (55%)": index, true label, float then compressed prediction with its probability."""
    c = list(class_names)
    return (f"#{r['index']} · {c[r['label']]}: {c[r['float_pred']]} ({r['float_probs'][r['float_pred']]:.0%}) → "
            f"{c[r['variant_pred']]} ({r['variant_probs'][r['variant_pred']]:.0%})")


def flipped_samples(x: np.ndarray, y: np.ndarray, flips: list[dict], kind: str, class_names: list[str],
                    limit: int = 20, title: str | None = None) -> go.Figure:
    """The flipped examples as data: images (N, 1, H, W) as a grid, signals (N, 1, T) as small line panels, 2-D
    points on the scatter of all examples (the flipped ones circled), other features as rows of a heat map. Each is
    labelled "true: float prediction → compressed prediction" (``flip_label``); at most ``limit`` are drawn.
    ``x``, ``y``: every example the debugger read and its label (``flips``' indices point into them)."""
    x, labels_all = np.asarray(x, dtype=float), np.asarray(y)
    shown = flips[:limit]
    if not shown:
        raise ValueError("No example flipped: there is nothing to draw.")
    idx = [r["index"] for r in shown]
    c = list(class_names)
    if kind == "image":
        labels = [f"{c[r['label']]}: {c[r['float_pred']]}→{c[r['variant_pred']]}" for r in shown]
        cols = min(8, len(idx))
        fig = image_grid(x[idx, 0], labels, cols=cols, title=title or "Flipped test images (true: float → quantized)")
        rows = -(-len(idx) // cols)
        fig.layout.height = int(90 + rows * min(170, 1000 / cols))  # tiles about as tall as the page is wide / cols
        return fig
    if kind == "sequence":
        return sequence_lines(x[idx, 0], [flip_label(r, c) for r in shown],
                              title=title or "Flipped test signals (true: float → quantized)")
    if kind == "points" and x.ndim == 2 and x.shape[1] == 2:
        fig = go.Figure()
        for k, name in enumerate(c):  # every test point, faded, by the class it is drawn from
            mask = labels_all == k
            fig.add_trace(go.Scatter(x=x[mask, 0], y=x[mask, 1], mode="markers", name=f"test, {name}",
                                     marker=dict(color=SEQ[k % len(SEQ)], size=6, opacity=0.25), hoverinfo="skip"))
        for k, name in enumerate(c):
            pts = [r for r in shown if r["label"] == k]
            if not pts:
                continue
            fig.add_trace(go.Scatter(
                x=[x[r["index"], 0] for r in pts], y=[x[r["index"], 1] for r in pts], mode="markers",
                name=f"flipped, true {name}", text=[flip_label(r, c) for r in pts],
                hovertemplate="%{text}<extra></extra>",
                marker=dict(color=SEQ[k % len(SEQ)], size=13, symbol="circle-open", line=dict(width=3))))
        fig.update_xaxes(title_text="x₁")
        fig.update_yaxes(title_text="x₂", scaleanchor="x")
        return style(fig, title or "Flipped test points (circled), on all test points", height=460)
    z = x[idx].reshape(len(idx), -1)
    fig = go.Figure(go.Heatmap(z=z, y=[flip_label(r, c) for r in shown], colorscale="RdBu", zmid=0,
                               colorbar=dict(title="value"),
                               hovertemplate="%{y}, feature %{x}: %{z:.3g}<extra></extra>"))
    fig.update_xaxes(title_text="feature")
    fig.update_yaxes(autorange="reversed", type="category")
    return style(fig, title or "Flipped test rows (true: float → quantized)", height=min(900, 140 + 22 * len(idx)))


def _glyph(ch: str) -> str:
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch)


def changed_characters(rows: list[dict], class_names: list[str], limit: int = 8,
                       title: str | None = None) -> go.Figure:
    """A language model's held-out windows as text (``DropDebugger.changed_characters`` rows): each cell is the true
    next character at that position, shaded where the float and the compressed model's top predictions differ —
    green where the compressed one is now right, red where it is now wrong, amber where both are wrong; the hover
    gives both predictions. At most ``limit`` windows, one per row."""
    shown = rows[:limit]
    if not shown:
        raise ValueError("No prediction changed: there is nothing to draw.")
    c = list(class_names)
    z, text, hover = [], [], []
    for r in shown:
        changed = set(r["changed"])
        zr, tr, hr = [], [], []
        for t, (y, pf, pv) in enumerate(zip(r["label"], r["float_pred"], r["variant_pred"])):
            if t not in changed:
                zr.append(0)
            else:
                zr.append(1 if pv == y else (3 if pf == y else 2))
            tr.append(_glyph(c[y]))
            hr.append(f"position {t}: next {_glyph(c[y])!r} · float {_glyph(c[pf])!r} · "
                      f"compressed {_glyph(c[pv])!r}")
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    # z = 0 unchanged, 1 now right, 2 both wrong, 3 now wrong: (z + 0.5) / 4 falls in the middle of each quarter
    scale = [[0, "#ffffff"], [0.25, "#ffffff"], [0.25, "#98df8a"], [0.5, "#98df8a"], [0.5, "#ffbb78"],
             [0.75, "#ffbb78"], [0.75, "#ff9896"], [1, "#ff9896"]]
    fig = go.Figure(go.Heatmap(z=z, text=text, customdata=hover, texttemplate="%{text}", textfont=dict(size=12),
                               colorscale=scale, zmin=-0.5, zmax=3.5, showscale=False, xgap=1, ygap=3,
                               y=[f"window {r['index']}" for r in shown],
                               hovertemplate="%{y}, %{customdata}<extra></extra>"))
    fig.update_xaxes(title_text="position in the window (the character to predict)", showgrid=False)
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False)
    return style(fig, title or "Held-out text: where the top prediction changed (green: now right, red: now wrong, "
                               "amber: both wrong)", height=int(130 + 34 * len(shown)))
