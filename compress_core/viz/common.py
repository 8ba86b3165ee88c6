"""Shared figure style and the foundation figures: data samples and training curves."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ..models import decision_grid, predictor

# One palette for the whole app: the same concept keeps its colour on every page.
COLORS = {
    "kept": "#1f77b4", "removed": "#d62728", "baseline": "#7f7f7f", "ticket": "#2ca02c",
    "reinit": "#ff7f0e", "random_mask": "#9467bd", "oneshot": "#8c564b", "train": "#1f77b4",
    "val": "#ff7f0e", "test": "#2ca02c", "float": "#7f7f7f", "quant": "#d62728", "accent": "#17becf",
}
SEQ = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
       "#bcbd22", "#17becf"]
FONT = dict(size=15)
if pio.templates.default == "plotly":  # figures outside the app (notebooks, exports); the app has set "none"
    pio.templates.default = "plotly_white"


def style(fig: go.Figure, title: str | None = None, height: int = 380, *, legend_below: float | None = None,
          bottom: int | None = None, top: int | None = None, right: int = 20, centered: bool = False,
          left: int = 60, fixed: bool = False) -> go.Figure:
    """Apply the app's look: readable fonts, compact margins, legend on top, the title on the left.

    Applied with ``plotly_relayout`` (one validated write of the given keys, under 1 ms) rather than
    ``update_layout`` (7–12 ms a figure in Plotly 7, most of a slider move's budget), and no per-figure
    template: the white template is the process-wide default (set above), and in the app Streamlit's
    chart theme styles the rest.

    Args:
        legend_below: put the legend under the axes at this y (e.g. -0.2), with a ``bottom`` margin (110 unless
            given), where above them it would collide with the title; ``centered`` centres it.
        top, right, left, bottom: margins other than the defaults.
        fixed: keep the margins as given, for the figures redrawn on every slider move. Otherwise Plotly grows a
            margin to fit what overflows it (tick labels, legend, colour bar) by measuring the drawn text and
            drawing the chart again: about 10 ms of browser time a redraw (a press on the Pruning page).
    """
    legend = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0)
    margin = dict(l=left, r=right, t=top if top is not None else 60 if title else 30,
                  b=bottom if bottom is not None else 110 if legend_below is not None else 50)
    if legend_below is not None:
        legend = dict(orientation="h", yanchor="top", y=legend_below, xanchor="center" if centered else "left",
                      x=0.5 if centered else 0)
    layout = dict(font=FONT, height=height, margin=margin, legend=legend)
    if title:
        layout["title"] = dict(text=title, x=0, xanchor="left", font=dict(size=18))
    if fixed:
        margin["autoexpand"] = False
        axes = {"xaxis", "yaxis"} | {ax for ax in fig.layout.to_plotly_json() if ax.startswith(("xaxis", "yaxis"))}
        layout.update({f"{ax}.automargin": False for ax in axes})
    fig.plotly_relayout(layout)
    return fig


def step_area(edges, counts, color: str, name: str, hover: str, *, stack: str | None = None,
              opacity: float = 1.0) -> dict:
    """A histogram as one filled step outline: one SVG path, where a bar trace draws a path per bin (80 bins
    cost about 15 ms more to redraw on a slider move). ``edges`` has one more entry than ``counts``, and so has
    the trace's ``y``: the last count repeats to close the step at the right edge. ``hover``
    is a hover template that reads the bin's centre as ``%{customdata:.3f}``. ``stack`` stacks the traces
    that share it (kept on top of removed); otherwise the area fills down to zero."""
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts)
    y = np.append(counts, counts[-1:])  # the last bin's top runs on to the right edge
    centres = np.append((edges[:-1] + edges[1:]) / 2, edges[-1:])
    fill = _fade(color, opacity)
    trace = dict(type="scatter", x=edges, y=y, mode="lines", name=name, customdata=centres,
                 line=dict(shape="hv", width=0, color=fill), fillcolor=fill, hovertemplate=hover)
    if stack:
        trace["stackgroup"] = stack
    else:
        trace["fill"] = "tozeroy"
    return trace


def nice_ticks(top: float, count: int = 6) -> np.ndarray:
    """Round tick values from 0 to ``top``: steps of 1, 2 or 5 × 10^k, about ``count`` of them."""
    if top <= 0:
        return np.array([0.0])
    raw = top / count
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return np.arange(0.0, top + step * 1e-9, step)


def right_scale(x_edge: float, positions, labels: list[str], title: str, color: str) -> tuple[dict, dict]:
    """A second scale drawn along a chart's right edge: a text trace (``labels`` at y = ``positions``, just right
    of ``x_edge``, the x axis's upper end) and the scale's title as a note. Plotly's own overlaid second axis
    cost the browser 8-15 ms more to redraw a chart, on every slider move; these draw in the fixed right margin
    (``style(..., right=80, fixed=True)``)."""
    trace = dict(type="scatter", x=[x_edge] * len(labels), y=list(positions), mode="text",
                 text=[f" {t}" for t in labels], textposition="middle right", cliponaxis=False, showlegend=False,
                 hoverinfo="skip", textfont=dict(color=color, size=13))
    note = dict(text=title, x=1, y=0.5, xref="paper", yref="paper", xanchor="left", yanchor="middle", xshift=48,
                textangle=90, showarrow=False, font=dict(color=color))
    return trace, note


def stack(top: go.Figure, bottom: go.Figure, heights: tuple[int, int], gap: int = 44, *, legend: bool = True,
          bottom_margin: int | None = None) -> go.Figure:
    """Two figures made with ``style(..., fixed=True)``, each on one pair of axes, as one figure over the bottom
    one's x axis: ``top``'s plot ``heights[0]`` pixels tall above ``bottom``'s, ``gap`` pixels apart.

    The browser redraws one Plotly chart for the pair: two charts side by side cost about 25 ms more a slider move
    (bench/bench_browser.py). The top keeps its title; the bottom's title is written over its plot. Notes and
    shapes placed on a figure's own plot (``paper`` or its y axis) stay on it; the legends become one, under the x
    axis (``legend=False``: none). The x axis, its range and title are ``bottom``'s: give both figures the same x
    range. ``bottom_margin`` replaces ``bottom``'s (the room under the axis, for its labels and the legend).

    The two figures are spent: the result shares their traces' arrays and styles. It reads their plain property
    dicts (Plotly's ``_data`` and ``_layout``) where ``to_dict()`` would deep-copy them, two thirds of this
    function's 1.5 ms a move.
    """
    la, lb = top._layout, bottom._layout
    for fig in (top, bottom):
        if any(t.get("xaxis", "x") != "x" or t.get("yaxis", "y") != "y" for t in fig._data):
            raise ValueError("stack() takes figures drawn on one pair of axes each.")
    h1, h2 = heights
    plot = h1 + gap + h2
    domains = {"y": ((h2 + gap) / plot, 1.0), "y2": (0.0, h2 / plot)}

    def placed(items: list[dict], axis: str) -> list[dict]:
        lo, hi = domains[axis]
        out = []
        for item in items:
            item = dict(item)
            ref = item.get("yref", "y")
            if ref == "paper":  # a fraction of the figure's own plot: of its panel now
                for k in ("y", "y0", "y1"):
                    if k in item:
                        item[k] = lo + item[k] * (hi - lo)
            elif ref in ("y", "y domain"):
                item["yref"] = ref.replace("y", axis, 1)
            out.append(item)
        return out

    title = (lb.get("title") or {}).get("text")
    notes = placed(la.get("annotations", []), "y") + placed(lb.get("annotations", []), "y2")
    if title:
        notes.append(dict(text=title, x=0, xref="paper", xanchor="left", y=domains["y2"][1], yref="paper",
                          yanchor="bottom", yshift=6, showarrow=False, font=dict(size=16)))
    margin = dict(l=max(la["margin"]["l"], lb["margin"]["l"]), r=max(la["margin"]["r"], lb["margin"]["r"]),
                  t=la["margin"]["t"], b=lb["margin"]["b"] if bottom_margin is None else bottom_margin,
                  autoexpand=False)
    layout = dict(la, height=margin["t"] + plot + margin["b"], margin=margin,
                  xaxis=dict(lb["xaxis"], anchor="y2"), yaxis=dict(la["yaxis"], domain=domains["y"]),
                  yaxis2=dict(lb["yaxis"], domain=domains["y2"], anchor="x"),
                  shapes=placed(la.get("shapes", []), "y") + placed(lb.get("shapes", []), "y2"), annotations=notes,
                  # one legend for both, at the figure's foot (in pixels: the plot's height is not the figure's)
                  showlegend=legend,
                  legend=dict(orientation="h", xanchor="left", x=0, yref="container", yanchor="bottom", y=0))
    data = list(top._data) + [dict(t, yaxis="y2") for t in bottom._data]
    return go.Figure(data=data, layout=layout, _validate=False)


def _fade(color: str, opacity: float) -> str:
    """``#rrggbb`` at ``opacity`` as an rgba() colour (a filled area has no opacity of its own that stacks)."""
    if opacity >= 1:
        return color
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{opacity:g})"


def tile_mosaic(tiles: np.ndarray, cols: int, *, gap: int = 1, label_rows: int = 0, row_gap: int | None = None,
                trim: bool = False) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay small 2-D tiles (N, H, W) out as one array, ``cols`` per row, NaN between them (drawn blank).

    The one mosaic builder of the app's tile figures (data samples, neuron masks): a single heat map renders in
    milliseconds where N subplots take seconds. ``gap`` blank columns after each tile, ``label_rows`` blank rows
    above each tile (for its label), ``row_gap`` blank rows below it (default ``gap``); ``trim`` drops the gaps
    after the last row and column.

    Returns:
        the mosaic, and each tile's (top, left) position in it.
    """
    tiles = np.asarray(tiles, dtype=float)
    n, h, w = tiles.shape
    row_gap = gap if row_gap is None else row_gap
    rows = int(np.ceil(n / cols))
    pitch_r, pitch_c = h + label_rows + row_gap, w + gap
    mosaic = np.full((rows * pitch_r - (row_gap if trim else 0), cols * pitch_c - (gap if trim else 0)), np.nan)
    corners = []
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        top, left = r * pitch_r + label_rows, c * pitch_c
        mosaic[top:top + h, left:left + w] = tile
        corners.append((top, left))
    return mosaic, corners


def image_grid(images: np.ndarray, labels: list[str], cols: int = 10, title: str | None = None,
               colorscale: str = "gray_r", zmin: float | None = None, zmax: float | None = None) -> go.Figure:
    """A grid of small images (N, H, W) drawn as one mosaic heat map (``tile_mosaic``), a label over each tile.

    One trace instead of N subplots: it renders in milliseconds, even for a hundred tiles.
    """
    images = np.asarray(images, dtype=float)
    n, h, w = images.shape
    rows = int(np.ceil(n / cols))
    mosaic, corners = tile_mosaic(images, cols, gap=1, label_rows=1)
    annotations = [dict(x=left + (w - 1) / 2, y=top - 0.9, text=str(labels[i]), showarrow=False, font=dict(size=13),
                        yanchor="bottom") for i, (top, left) in enumerate(corners)]
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale=colorscale, showscale=False, zmin=zmin, zmax=zmax,
                               hoverongaps=False, hovertemplate="%{z:.2f}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(annotations=annotations)
    return style(fig, title, height=int(max(160, 110 * rows + 90)))


def sequence_lines(seqs: np.ndarray, labels: list[str], title: str | None = None) -> go.Figure:
    """MNIST-1D style: each 1-D signal drawn as a curve, one small panel per example."""
    n = len(seqs)
    cols = min(5, n)
    rows = int(np.ceil(n / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=labels, horizontal_spacing=0.03,
                        vertical_spacing=0.12)
    for i, s in enumerate(seqs):
        fig.add_trace(go.Scatter(y=s, mode="lines", line=dict(color=SEQ[i % len(SEQ)], width=2),
                                 showlegend=False), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return style(fig, title, height=int(160 * rows + 80))


def data_samples(x: np.ndarray, y: np.ndarray, kind: str, class_names: list[str]) -> go.Figure:
    """The training data at a glance: two images of each class, one signal of each class, or every point."""
    k = len(class_names)
    if kind == "image":
        idx = [int(np.flatnonzero(y == c)[i]) for i in range(2) for c in range(k)]
        return image_grid(x[idx, 0], [class_names[y[i]] for i in idx], cols=k,
                          title="Two training images of each class")
    if kind == "sequence":
        idx = [int(np.flatnonzero(y == c)[0]) for c in range(k)]
        return sequence_lines(x[idx, 0], [f"digit {class_names[y[i]]}" for i in idx],
                              title=f"One training signal of each class ({x.shape[-1]} time steps)")
    if kind == "features":
        return feature_rows(x, y, list(class_names))
    return scatter_points(x, y, list(class_names), title="Training points by class")


def feature_rows(x: np.ndarray, y: np.ndarray, class_names: list[str], per_class: int = 8) -> go.Figure:
    """Rows of a feature table at a glance: a few examples of each class (rows, grouped by class) × features."""
    idx = [i for c in range(len(class_names)) for i in np.flatnonzero(y == c)[:per_class]]
    labels = [f"{class_names[y[i]]} · #{i}" for i in idx]
    fig = go.Figure(go.Heatmap(z=x[idx], y=labels, colorscale="RdBu", zmid=0, colorbar=dict(title="value"),
                               hovertemplate="%{y}, feature %{x}: %{z:.3g}<extra></extra>"))
    fig.update_xaxes(title_text="feature")
    fig.update_yaxes(autorange="reversed", type="category")
    return style(fig, f"{per_class} training rows of each class (standardised features)",
                 height=min(900, 120 + 14 * len(idx)))


def scatter_points(x: np.ndarray, y: np.ndarray, class_names: list[str], title: str | None = None) -> go.Figure:
    """2-D points coloured by class."""
    fig = go.Figure()
    for c, name in enumerate(class_names):
        pts = x[y == c]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name,
                                 marker=dict(color=SEQ[c % len(SEQ)], size=6, opacity=0.75)))
    fig.update_yaxes(scaleanchor="x")
    return style(fig, title, height=420)


def training_curves(records: list[dict], title: str | None = None) -> go.Figure:
    """Loss (left) and accuracy (right) against epochs, train / validation / test."""
    ep = [r["epoch"] for r in records]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for key, name in (("train_loss", "train"), ("val_loss", "validation"), ("test_loss", "test")):
        fig.add_trace(go.Scatter(x=ep, y=[r[key] for r in records], name=name, mode="lines",
                                 line=dict(color=COLORS["train" if name == "train" else
                                                        "val" if name == "validation" else "test"], width=2.5),
                                 legendgroup=name), row=1, col=1)
    for key, name in (("val_acc", "validation"), ("test_acc", "test")):
        fig.add_trace(go.Scatter(x=ep, y=[r[key] for r in records], name=name, mode="lines",
                                 line=dict(color=COLORS["val" if name == "validation" else "test"], width=2.5),
                                 legendgroup=name, showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    return style(fig, title, height=400, legend_below=-0.22, bottom=90, centered=True)


def boundary_traces(grid: dict, x: np.ndarray, y: np.ndarray, class_names: list[str], *, opacity: float = 0.3,
                    size: int = 5, showlegend: bool = True) -> list:
    """A decision grid (``models.decision_grid``) as a faint class heat map, and the points by class on top."""
    k = len(class_names)
    scale = [[i / max(k - 1, 1), SEQ[i % len(SEQ)]] for i in range(k)]
    traces = [go.Heatmap(x=grid["x"], y=grid["y"], z=grid["z"], colorscale=scale, zmin=0, zmax=max(k - 1, 1),
                         opacity=opacity, showscale=False, hoverinfo="skip")]
    for c, name in enumerate(class_names):
        pts = x[y == c]
        traces.append(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name, legendgroup=name,
                                 showlegend=showlegend, marker=dict(color=SEQ[c % len(SEQ)], size=size,
                                                                    line=dict(width=0.5, color="white"))))
    return traces


def decision_boundary(predict, x: np.ndarray, y: np.ndarray, class_names: list[str], title: str | None = None,
                      resolution: int = 120) -> go.Figure:
    """Predicted class over a grid (a function ``predict(points: ndarray) -> class ndarray``) under the points."""
    fig = go.Figure(boundary_traces(decision_grid(predict, x, resolution), x, y, class_names))
    fig.update_yaxes(scaleanchor="x")
    return style(fig, title, height=400)


model_predictor = predictor  # ``points -> predicted class`` of a torch model, for ``decision_boundary``
