"""Quantization figures built as plain dicts without Plotly's validation (they are redrawn on every move): each
must still be a valid figure, which the validating constructor checks here, and show what it claims."""
import base64
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from compress_core.viz.quant import accuracy_curves, layer_errors

ROWS = [dict(layer="fc1", tensor="weight", sqnr_db=35.2, mse=1e-4, bits=8, clip_fraction=0.0),
        dict(layer="fc1", tensor="input", sqnr_db=math.inf, mse=0.0, bits=8, clip_fraction=0.0),
        dict(layer="fc2", tensor="weight", sqnr_db=12.5, mse=3e-3, bits=4, clip_fraction=0.01),
        dict(layer="fc2", tensor="output", sqnr_db=28.0, mse=2e-4, bits=8, clip_fraction=0.002)]
SERIES = {"PTQ per channel": [dict(bits=b, kb=b * 10.0, accuracy=0.5 + b / 20) for b in (2, 4, 8)],
          "QAT": [dict(bits=b, kb=b * 10.0, accuracy=0.7 + b / 40) for b in (8, 2, 4)]}


def test_layer_errors_is_valid_and_pairs_sqnr_with_mse():
    spec = layer_errors(ROWS, title="t").to_dict()
    go.Figure(spec)  # raises on any invalid property
    sq = [t for t in spec["data"] if t["yaxis"] == "y"]
    mse = [t for t in spec["data"] if t["yaxis"] == "y2"]
    assert [t["name"] for t in sq] == ["weights", "inputs", "outputs"] and len(mse) == 3
    assert sq[0]["text"] == ["35.2", "12.5"] and sq[1]["text"] == ["exact"] and sq[1]["y"] == [120.0]
    assert spec["layout"]["yaxis2"]["type"] == "log" and mse[1]["y"] == [1e-16]


def test_accuracy_curves_is_valid_sorted_and_marks_float_and_the_current_setting():
    for x in ("bits", "kb"):
        spec = accuracy_curves(SERIES, 0.91, x, current=dict(bits=4, kb=40.0, accuracy=0.8), float_kb=320.0).to_dict()
        go.Figure(spec)
        qat = next(t for t in spec["data"] if t["name"] == "QAT")
        assert qat["x"] == ([2, 4, 8] if x == "bits" else [20.0, 40.0, 80.0])
        star = next(t for t in spec["data"] if t["name"] == "current setting")
        assert star["y"] == [0.8] and star["x"] == [4 if x == "bits" else 40.0]
        assert spec["layout"]["shapes"][0]["y0"] == 0.91 and "float 91.0%" in spec["layout"]["annotations"][0]["text"]
        assert any(t["name"] == "float32 model" for t in spec["data"]) == (x == "kb")


def test_grid_and_sensitivity_heatmap_are_valid_figures():
    import torch

    from compress_core.quant import compute_qparams
    from compress_core.viz.quant import sensitivity_heatmap, weight_grid

    x = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    for bits in (2, 8, 12):  # 12 bits: too many levels to draw one by one
        spec = weight_grid(x, compute_qparams(x.min(), x.max(), bits=bits), title="t").to_dict()
        go.Figure(spec)
        y = spec["data"][0]["y"]  # numpy arrays travel as base64 typed arrays; the last count repeats (step_area)
        assert np.frombuffer(base64.b64decode(y["bdata"]), y["dtype"])[:-1].sum() == 2000
    scan = [dict(layer=n, bits=b, change_pts=-d) for n, d0 in (("fc1", 3.0), ("fc2", 0.5)) for b, d in
            ((2, d0), (4, d0 / 4), (8, 0.0))]
    spec = sensitivity_heatmap(scan, {"fc1": 4, "fc2": 2}).to_dict()
    go.Figure(spec)
    assert [(r["x0"], r["y0"]) for r in spec["layout"]["shapes"]] == [(0.5, -0.5), (-0.5, 0.5)]
    heat = spec["data"][0]
    # losses are red: the low end of the (reversed) blue-to-red scale, centred on no change
    assert heat["colorscale"] == "RdBu" and heat["reversescale"] and heat["zmid"] == 0 and heat["zmin"] == -5.0


def test_staircase_and_channel_ranges_are_valid_figures():
    import torch

    from compress_core.quant import compute_qparams
    from compress_core.viz.quant import channel_ranges, staircase

    w = torch.randn(16, 30, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.1, 2, 16)[:, None]
    qp = compute_qparams(w.min(), w.max(), bits=4)
    go.Figure(staircase(qp, float(w.min()), float(w.max()), title="t").to_dict())
    per_ch = compute_qparams(w.amin(1), w.amax(1), bits=4, axis=0)
    spec = channel_ranges(w, per_ch, qp, title="t").to_dict()
    go.Figure(spec)
    assert [t["name"] for t in spec["data"]] == ["channel range [min, max]", "S per tensor ÷ S channel"]


def test_grid_stems_are_true_counts_and_clipping_starts_half_a_step_out():
    """Issue 10: the stems were rescaled onto the 'count' axis, the clipped shading began at the last level (at 2
    bits it shaded values reported as 0.00 % clipped), and 256 dotted levels filled the chart at 8 bits."""
    import torch

    from compress_core.quant import compute_qparams
    from compress_core.viz.quant import grid_data, weight_grid

    x = torch.randn(3000, generator=torch.Generator().manual_seed(2))
    qp = compute_qparams(x.min(), x.max(), bits=2, symmetric=True)
    d = grid_data(x, qp)
    assert d["clipped"] == 0.0 and d["rounds_hi"] == pytest.approx(float(qp.range_max) + float(qp.scale) / 2)
    spec = weight_grid(x, qp).to_dict()
    stems = next(t for t in spec["data"] if t.get("mode") == "markers")
    counts = _decode(stems["customdata"]).reshape(-1, 2)[:, 1]
    assert counts.sum() == 3000  # true counts, shown on hover
    # drawn on the left axis at a fixed scale, and the right edge's labels (true counts) read on that same scale
    per = _decode(stems["y"]) / counts
    assert np.allclose(per, per[0])
    scale = next(t for t in spec["data"] if t.get("mode") == "text")
    labels = np.array([float(t) for t in scale["text"]])
    assert np.allclose(np.asarray(scale["y"]), labels * per[0]) and labels.max() >= counts.max() / 2
    assert any(a["text"] == "values per level" for a in spec["layout"]["annotations"])
    red = [sh for sh in spec["layout"]["shapes"] if sh.get("fillcolor") == "#d62728"]
    assert all(sh["x0"] >= d["rounds_hi"] - 1e-9 or sh["x1"] <= d["rounds_lo"] + 1e-9 for sh in red)
    assert all(not (sh["x0"] < xv < sh["x1"]) for sh in red for xv in (float(x.min()), float(x.max())))
    eight = weight_grid(x, compute_qparams(x.min(), x.max(), bits=8)).to_dict()
    assert not any("levels S·(q − Z)" in (t.get("name") or "") for t in eight["data"])  # no solid wall of lines


def _decode(v):
    return np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]) if isinstance(v, dict) else np.asarray(v)


def test_straight_through_figure_is_the_library_gradient():
    """Issue 10: how a quantized model trains, drawn from fake_quantize's own backward pass."""
    from compress_core.quant import compute_qparams
    from compress_core.viz.quant import straight_through

    qp = compute_qparams(-1.0, 1.0, bits=3)
    spec = straight_through(qp, points=401).to_dict()
    go.Figure(spec)
    grad = next(t for t in spec["data"] if t["name"].startswith("backward"))
    x, g = _decode(grad["x"]), _decode(grad["y"])
    lo, hi = float(qp.range_min) - float(qp.scale) / 2, float(qp.range_max) + float(qp.scale) / 2
    inside, outside = (x > lo + 1e-4) & (x < hi - 1e-4), (x < lo - 1e-4) | (x > hi + 1e-4)
    assert (g[inside] == 1).all() and (g[outside] == 0).all() and inside.any() and outside.any()
    fwd = _decode(next(t for t in spec["data"] if t["name"].startswith("forward"))["y"])
    assert len(np.unique(np.round(fwd, 6))) == qp.levels  # the staircase has exactly 2^b steps


def test_accuracy_curves_draw_the_float_control_of_qat_when_given():
    spec = accuracy_curves(SERIES, 0.91, "bits", control_acc=0.93).to_dict()
    go.Figure(spec)
    assert [sh["y0"] for sh in spec["layout"]["shapes"]] == [0.91, 0.93]
    assert any("QAT's fine-tuning 93.0%" in a["text"] for a in spec["layout"]["annotations"])


def test_grid_over_staircase_is_one_valid_chart_on_one_value_axis():
    """The grid and the staircase as one chart: every trace of both, the staircase's on the lower axis, one x axis
    spanning both figures' ranges, each right-hand scale at that axis's end, and the notes on their own panels."""
    import torch

    from compress_core.quant import compute_qparams
    from compress_core.viz.quant import grid_and_staircase, staircase, weight_grid

    x = torch.linspace(-0.3, 0.5, 400) ** 3
    qp = compute_qparams(x.min(), x.max(), bits=3)
    both = grid_and_staircase(x, qp, title="fc1").to_dict()
    go.Figure(both)
    grid, stair = weight_grid(x, qp, title="fc1").to_dict(), staircase(qp, float(x.min()), float(x.max())).to_dict()
    assert len(both["data"]) == len(grid["data"]) + len(stair["data"])
    lower = both["data"][len(grid["data"]):]
    assert all(t["yaxis"] == "y2" for t in lower) and all(t.get("yaxis", "y") == "y" for t in both["data"][:len(lower)])
    lo, hi = both["layout"]["xaxis"]["range"]
    assert lo <= min(grid["layout"]["xaxis"]["range"][0], stair["layout"]["xaxis"]["range"][0])
    assert hi >= max(grid["layout"]["xaxis"]["range"][1], stair["layout"]["xaxis"]["range"][1])
    scales = [t for t in both["data"] if t.get("mode") == "text" and t.get("textposition") == "middle right"]
    assert len(scales) == 2 and all(set(_decode(t["x"]).tolist()) == {hi} for t in scales)
    (top_lo, top_hi), (low_lo, low_hi) = both["layout"]["yaxis"]["domain"], both["layout"]["yaxis2"]["domain"]
    assert low_hi < top_lo
    notes = {n["text"]: n for n in both["layout"]["annotations"]}
    assert top_lo <= notes["values per level"]["y"] <= top_hi and low_lo <= notes["integer code q"]["y"] <= low_hi
    assert notes["The mapping r → q → r̂"]["y"] == low_hi  # the lower panel's title, over it
    assert both["layout"]["title"]["text"].startswith("fc1")



def test_error_split_groups_the_errors_and_stacks_the_parts():
    import math

    from compress_core.viz.recover import error_split_figure

    rows = [{"layer": "fc1", "only_layer_sqnr_db": 20.0, "accumulated_sqnr_db": 20.0, "only_layer_rel_mse": 0.01,
             "accumulated_rel_mse": 0.01, "clip_rel": 0.002, "round_rel": 0.008},
            {"layer": "fc2", "only_layer_sqnr_db": math.inf, "accumulated_sqnr_db": 12.0, "only_layer_rel_mse": 0.0,
             "accumulated_rel_mse": 0.06, "clip_rel": 0.0, "round_rel": 0.0}]
    fig = error_split_figure(rows)
    only, acc, clip, rnd = fig.data
    assert list(only.text) == ["20.0", "exact"] and list(acc.y) == [20.0, 12.0]
    assert only.offsetgroup != acc.offsetgroup  # side by side, not on top of each other
    assert list(rnd.base) == list(clip.y)  # rounding stacked on clipping
    assert list(error_split_figure(rows, "rel").data[0].y) == [0.01, None]  # no error: no bar on the log axis
    # the legend hangs from the figure's bottom edge, so long rotated layer names (block1.attn.proj) never run under it
    assert fig.layout.legend.yref == "container" and fig.layout.legend.yanchor == "bottom"
