"""Figures of the recovery tools (``compress_core.recover``): which layer broke it, the flipped examples shown as
data, and the per-layer settings an accuracy-budget search chose.

Pure functions of the library's results, generic over the kind of variant (pruned, quantized, shared): the rows of
``DropDebugger.layers()`` and ``DropDebugger.flips()`` (for a language model, ``changed_characters``), and a
``BudgetResult``'s settings.

Usage::

    dbg = DropDebugger(b.model, variant, ds.x_test, ds.y_test)
    layer_drop_figure(dbg.layers(), language=False)
    flipped_examples_figure(ds.x_test.numpy(), ds.kind, dbg.flips(), ds.class_names, x_all=ds.x_test.numpy(),
                            y_all=ds.y_test.numpy())
    budget_rates_figure(dict(res.settings), uniform=0.9)
    error_split_figure(dbg.layers(), "db")   # a quantized variant: SQNR alone vs accumulated, clip/round stacked
"""
from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import COLORS, SEQ, style, tile_mosaic

__all__ = ["PARTS", "budget_rates_figure", "changed_characters_html", "error_split_figure", "flip_label",
           "flipped_examples_figure", "layer_drop_figure"]

SQNR_CAP = 60.0  # dB drawn for a layer with no error at all (SQNR = ∞), labelled "no error"


def _db(v: float) -> float:
    return SQNR_CAP if math.isinf(v) and v > 0 else max(-20.0, float(v))


def layer_drop_figure(rows: list[dict], *, language: bool = False, float_bits: float | None = None,
                      float_accuracy: float | None = None) -> go.Figure:
    """Per layer (``DropDebugger.layers()`` rows, forward order): top, the SQNR at the layer's output when only that
    layer is compressed against when every layer is (accumulated), in dB (higher = closer to the float model); bottom,
    what compressing only that layer costs at the model's output: accuracy points (classifiers, from
    ``only_change_pts``) or extra bits per character (``language``: ``only_bits`` − ``float_bits``).

    A layer without any error is drawn at ``SQNR_CAP`` dB and labelled "no error"."""
    names = [r["layer"] for r in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, row_heights=[0.6, 0.4])
    for key, label, color in (("only_layer_sqnr_db", "only this layer compressed", COLORS["kept"]),
                              ("accumulated_sqnr_db", "every layer compressed (accumulated)", COLORS["removed"])):
        vals = [r[key] for r in rows]
        fig.add_trace(go.Bar(x=names, y=[_db(v) for v in vals], name=label, marker=dict(color=color),
                             text=["no error" if math.isinf(v) and v > 0 else f"{v:.1f}" for v in vals],
                             textposition="outside", cliponaxis=False,
                             hovertemplate="%{x}: %{text} dB<extra>" + label + "</extra>"), row=1, col=1)
    if language:
        base = float_bits if float_bits is not None else 0.0
        cost = [r["only_bits"] - base for r in rows]
        text, axis = [f"{c:+.3f}" for c in cost], "Δ bits/char"
    else:
        cost = [r["only_change_pts"] for r in rows]
        text, axis = [f"{c:+.1f}" for c in cost], "Δ accuracy (pts)"
    fig.add_trace(go.Bar(x=names, y=cost, name="output cost, only this layer", marker=dict(color=COLORS["reinit"]),
                         text=text, textposition="outside", cliponaxis=False, showlegend=False,
                         hovertemplate="%{x}: %{text}<extra>only this layer compressed</extra>"), row=2, col=1)
    top = max([_db(r[k]) for r in rows for k in ("only_layer_sqnr_db", "accumulated_sqnr_db")] + [10.0])
    fig.update_yaxes(title_text="SQNR (dB)", range=[min(0.0, min(_db(r["accumulated_sqnr_db"]) for r in rows)),
                                                     top * 1.18], row=1, col=1)
    span = max([abs(c) for c in cost] + [1e-3])
    fig.update_yaxes(title_text=axis, range=[min(0.0, min(cost)) - 0.3 * span, max(0.0, max(cost)) + 0.3 * span],
                     row=2, col=1)
    fig.update_layout(barmode="group")
    fig.add_annotation(text="at the output, only this layer compressed", x=0, xref="paper", y=0.4, yref="paper",
                       xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=13))
    return style(fig, "Which layer broke it? Error per layer", height=540, top=100)


def flip_label(row: dict, class_names, compressed: str = "compressed", reference: str = "float") -> str:
    """Three short lines for a flipped example: its true class, the ``reference`` (float / dense) model's prediction
    and the ``compressed`` one's, each with the probability that model gives it."""
    name = (lambda c: str(class_names[c]))  # noqa: E731
    f, v = row["float_pred"], row["variant_pred"]
    return (f"<b>true {name(row['label'])}</b><br>{reference} {name(f)} ({row['float_probs'][f]:.0%})<br>"
            f"{compressed} {name(v)} ({row['variant_probs'][v]:.0%})")


def _image_tiles(images: np.ndarray, labels: list[str], title: str, cols: int) -> go.Figure:
    """Small images in one mosaic heat map with a three-line label above each (``tile_mosaic``)."""
    n, h, w = images.shape
    rows = int(math.ceil(n / cols))
    mosaic, corners = tile_mosaic(images, cols, gap=3, label_rows=5)
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale="gray_r", showscale=False, hoverongaps=False,
                               hovertemplate="%{z:.2f}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(annotations=[dict(x=left + (w - 1) / 2, y=top - 0.6, text=labels[i], showarrow=False,
                                        font=dict(size=12), yanchor="bottom")
                                   for i, (top, left) in enumerate(corners)])
    return style(fig, title, height=int(210 * rows + 90))


def flipped_examples_figure(x: np.ndarray, kind: str, flips: list[dict], class_names, *, limit: int = 20,
                            x_all: np.ndarray | None = None, y_all: np.ndarray | None = None,
                            compressed: str = "compressed", reference: str = "float") -> go.Figure:
    """The examples whose prediction flipped, drawn as data: digits as 8×8 images, MNIST-1D as signals, 2-D
    points on the scatter of every example (``x_all``, ``y_all``), feature rows as a heat map.

    ``x``: the examples the debugger ran on (rows of ``flips`` index into it); at most ``limit`` are drawn, in
    the order given (points: every one). Each is labelled with its true class and the ``reference`` and
    ``compressed`` predictions with their probabilities (``flip_label``)."""
    shown = flips if kind == "points" else flips[:limit]  # a point is one marker: draw every one
    if kind == "text":
        raise ValueError("Flipped examples are drawn for classifiers: a language model predicts every next character.")
    title = f"{len(shown)} of {len(flips)} flipped examples: true class, {reference} and {compressed} predictions"
    if not shown:
        fig = go.Figure()
        fig.add_annotation(text=f"No example flipped: the {compressed} model predicts what the float one does.",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=16))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return style(fig, "Flipped examples", height=200)
    idx = [r["index"] for r in shown]
    labels = [flip_label(r, class_names, compressed, reference) for r in shown]
    if kind == "image":
        return _image_tiles(np.asarray(x, dtype=float)[idx, 0], labels, title, cols=min(5, len(shown)))
    if kind == "sequence":
        cols = min(4, len(shown))
        n_rows = int(math.ceil(len(shown) / cols))
        height = 220 * n_rows + 130  # 140 px of signal and 80 px of its three-line title per row
        fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=labels, horizontal_spacing=0.03,
                            vertical_spacing=80 / (height - 170) if n_rows > 1 else 0.0)
        for i, j in enumerate(idx):
            fig.add_trace(go.Scatter(y=np.asarray(x)[j, 0], mode="lines", showlegend=False,
                                     line=dict(color=COLORS["kept"], width=2)), row=i // cols + 1, col=i % cols + 1)
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False)
        fig.update_annotations(font_size=12)
        return style(fig, title, height=height, top=120)
    if kind == "points":
        fig = go.Figure()
        if x_all is not None and y_all is not None:
            for c, name in enumerate(class_names):
                pts = np.asarray(x_all)[np.asarray(y_all) == c]
                fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=f"{name}",
                                         marker=dict(size=6, opacity=0.35)))
        xs = np.asarray(x)[idx]
        fig.add_trace(go.Scatter(x=xs[:, 0], y=xs[:, 1], mode="markers", name="flipped",
                                 marker=dict(size=13, symbol="x", color=COLORS["removed"]),
                                 text=[lb.replace("<br>", ": ") for lb in labels],
                                 hovertemplate="%{text}<extra></extra>"))
        return style(fig, f"{len(flips)} flipped points (×) among every test point", height=420)
    # feature rows
    fig = go.Figure(go.Heatmap(z=np.asarray(x)[idx], y=[lb.replace("<br>", ": ") for lb in labels],
                               colorscale="RdBu", zmid=0, colorbar=dict(title="value")))
    fig.update_yaxes(autorange="reversed", type="category")
    return style(fig, title, height=min(900, 140 + 22 * len(shown)), left=220)


def budget_rates_figure(settings: dict[str, float], uniform: float | None = None, *, unit: str = "rate") -> go.Figure:
    """The per-layer setting a budget search chose (``BudgetResult.settings``): pruning rates (``unit="rate"``) or
    weight bits (``unit="bits"``, 32 = float), with the uniform setting it started from as a dashed line."""
    names = list(settings)
    vals = [settings[n] for n in names]
    rate = unit == "rate"
    fig = go.Figure(go.Bar(x=names, y=vals, marker=dict(color=COLORS["removed"] if rate else COLORS["quant"]),
                           text=[f"{v:.0%}" if rate else ("float" if v >= 32 else f"{v:g} bits") for v in vals],
                           textposition="outside", cliponaxis=False, name="chosen per layer"))
    if uniform is not None:  # named in the legend: a label on the line would sit on the first bar's own
        line = dict(dash="dash", color=COLORS["baseline"])
        fig.add_hline(y=uniform, line=line)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=line, hoverinfo="skip",
                                 name=f"uniform start: {uniform:.0%}" if rate else f"uniform start: {uniform:g} bits"))
    if rate:
        fig.update_yaxes(range=[0, 1.15], tickformat=".0%", title_text="weights removed")
    else:
        fig.update_yaxes(range=[0, max(vals + [8]) * 1.15], title_text="weight bits")
    return style(fig, "Per-layer rates the search chose" if rate else "Per-layer bits the search chose", height=360)


def changed_characters_html(ch: dict, vocab, *, compressed: str = "compressed", reference: str = "float") -> str:
    """The held-out text with each character whose top prediction changed highlighted
    (``recover.text_flips.changed_characters``): red where the ``compressed`` model broke a character the
    ``reference`` one got right, green where it fixed one, amber where both are wrong; the hover names both
    predictions. Plain HTML (the characters escaped), for ``st.html``."""
    colors = {"broke": "#f8b4b4", "fixed": "#b7e4b7", "other": "#ffe08a"}
    show = (lambda c: "⏎" if c == "\n" else c)  # noqa: E731
    parts = []
    for t, f, v in zip(ch["target"], ch["float_pred"], ch["variant_pred"]):
        char = html.escape(vocab[t])
        if f == v:
            parts.append(char)
            continue
        kind = "broke" if f == t else "fixed" if v == t else "other"
        tip = html.escape(f"{reference}: {show(vocab[f])!r} → {compressed}: {show(vocab[v])!r}", quote=True)
        parts.append(f'<span title="{tip}" style="background:{colors[kind]}">{char}</span>')
    legend = (f'<span style="background:{colors["broke"]}">&nbsp;broke&nbsp;</span> right before, wrong after · '
              f'<span style="background:{colors["fixed"]}">&nbsp;fixed&nbsp;</span> wrong before, right after · '
              f'<span style="background:{colors["other"]}">&nbsp;changed&nbsp;</span> wrong both times')
    return (f'<div style="font-size:0.85rem;margin-bottom:0.3rem">{legend}</div>'
            '<pre style="white-space:pre-wrap;font-size:0.9rem;line-height:1.35;max-height:420px;overflow:auto;'
            f'border:1px solid #ddd;padding:0.6rem">{"".join(parts)}</pre>')


# the weight error's parts (``recover.weight_error``) and the output activations' (``activation_error``), stacked
PARTS = (("clip_rel", "weight clipping", "#d62728"), ("round_rel", "weight rounding", "#1f77b4"),
         ("prune_rel", "pruning", "#7f7f7f"), ("other_rel", "other weight change", "#9467bd"),
         ("act_clip_rel", "activation clipping", "#ff9896"), ("act_round_rel", "activation rounding", "#aec7e8"))
CAP_DB = 80.0  # an exact layer (no error: SQNR = ∞) is drawn at this height and labelled "exact"


def _db_capped(v: float) -> float:
    return CAP_DB if math.isinf(v) and v > 0 else max(min(v, CAP_DB), -CAP_DB)


def error_split_figure(rows: list[dict], scale: str = "db", title: str | None = None) -> go.Figure:
    """The quantization view of ``layer_drop_figure``. Top: each layer's output error when only that layer is
    compressed against the error accumulated up to it (every layer compressed): SQNR in dB (``scale="db"``, higher
    is better) or relative MSE (``"rel"``, log axis, lower is better). Bottom: that layer's own error split into its
    parts (``PARTS``: weight clipping and rounding, pruning, output activations' clipping and rounding), each
    relative to the signal, stacked."""
    if scale not in ("db", "rel"):
        raise ValueError("The error scale is 'db' (SQNR) or 'rel' (relative MSE).")
    names = [r["layer"] for r in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.55, 0.45])
    for key, label, color in (("only_layer", "only this layer compressed", SEQ[1]),
                              ("accumulated", "every layer compressed (accumulated)", "#555555")):
        if scale == "db":
            vals = [r[f"{key}_sqnr_db"] for r in rows]
            y = [_db_capped(v) for v in vals]
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
    fig = style(fig, title, height=560, legend_below=-0.12)
    # the legend is placed from the figure's bottom edge, not the axes': the rotated names of a GPT's layers
    # (block1.attn.proj) reach further below the axes than any fixed offset, and Plotly grows the margin for both
    fig.plotly_relayout({"legend.yref": "container", "legend.y": 0, "legend.yanchor": "bottom"})
    return fig
