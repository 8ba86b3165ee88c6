"""Per-layer report, size accounting, sensitivity scan, sweeps and the data behind the page's charts."""
import math

import numpy as np
import pytest
import torch

from compress_core import get_baseline, load_dataset
from compress_core.quant import (
    QuantConfig,
    bits_sensitivity,
    bits_sweep,
    compute_qparams,
    dequantize,
    fake_quantize,
    layer_report,
    model_size,
    quantize_model,
    sqnr_db,
    suggest_bits,
)
from compress_core.viz import quant as qviz


def test_sqnr_formula():
    x = torch.tensor([1.0, -2.0, 3.0])
    x_hat = torch.tensor([1.1, -2.0, 2.8])
    assert sqnr_db(x, x_hat) == pytest.approx(10 * math.log10(14 / (0.01 + 0.04)))
    assert math.isinf(sqnr_db(x, x))


def test_layer_report_rows_match_direct_computation(digits_mlp):
    b, ds = digits_mlp
    calib = ds.x_train[:128]
    q = quantize_model(b.model, QuantConfig(weight_bits=4), calib)
    rows = layer_report(q, calib)
    assert [(r["layer"], r["tensor"]) for r in rows] == [
        ("fc1", "input"), ("fc1", "weight"), ("fc1", "output"), ("fc2", "weight"), ("fc2", "output"),
        ("fc3", "weight"), ("fc3", "output")]
    w = q.fc2.weight.detach()
    row = rows[3]
    err = fake_quantize(w, q.fc2.weight_qparams) - w
    assert row["mse"] == pytest.approx(float(err.pow(2).mean()), rel=1e-6)
    assert row["sqnr_db"] == pytest.approx(sqnr_db(w, w + err), rel=1e-6)
    assert row["bits"] == 4 and row["granularity"] == "per channel" and row["count"] == w.numel()
    assert row["scale_min"] <= row["scale"] <= row["scale_max"]
    assert all(0.0 <= r["clip_fraction"] <= 1.0 for r in rows)
    out = rows[2]  # post-ReLU min-max range: nothing clipped, range starts at 0
    assert out["clip_fraction"] == 0.0 and out["range_min"] == 0.0 and out["data_min"] == 0.0
    assert layer_report(quantize_model(b.model, QuantConfig(target="weights")), None)[0]["tensor"] == "weight"


def test_model_size_counts_every_stored_bit(digits_mlp):
    b, ds = digits_mlp
    f = model_size(b.model)
    assert f["bits"] == 50_610 * 32 and f["ratio"] == 1.0
    q = quantize_model(b.model, QuantConfig(weight_bits=4, act_bits=8), ds.x_train[:64])
    s = model_size(q)
    weights, biases, channels = 64 * 300 + 300 * 100 + 100 * 10, 300 + 100 + 10, 300 + 100 + 10
    # 4-bit weights, int32 biases, one float32 scale per channel (symmetric: Z = 0 is not stored),
    # and a float32 scale + int32 zero point per activation tensor (input + 3 outputs)
    assert s["bits"] == weights * 4 + biases * 32 + channels * 32 + 4 * 64
    assert s["ratio"] == pytest.approx(f["bits"] / s["bits"])
    mixed = model_size(quantize_model(b.model, QuantConfig(target="weights", layer_bits=(("fc1", 2),))))
    assert [r["weight_bits"] for r in mixed["layers"]] == [2, 8, 8]


def test_sensitivity_scan_and_suggestion(digits_mlp):
    b, ds = digits_mlp
    seen = []
    rows = bits_sensitivity(b.model, ds, QuantConfig(target="weights"), bits=(1, 8), callback=seen.append)
    assert len(rows) == 6 and seen[-1] == 1.0
    by = {(r["layer"], r["bits"]): r for r in rows}
    assert abs(by[("fc1", 8)]["change_pts"]) < 1.0 and by[("fc1", 1)]["change_pts"] < by[("fc1", 8)]["change_pts"]
    for r in rows:  # the change in points and the count of lost examples say the same thing
        assert r["change_pts"] == pytest.approx(-100 * r["lost"] / r["n"], abs=1e-9)

    def row(layer, bits, lost, n=1000):
        return {"layer": layer, "bits": bits, "lost": lost, "n": n, "change_pts": -100 * lost / n}

    fake = [row("a", 2, 30), row("a", 4, 2), row("b", 2, 1), row("b", 4, 0), row("c", 2, 90), row("c", 4, 50)]
    # budget 1.5 points over 3 layers = 0.5 each (5 of 1,000 examples): a needs 4, b tolerates 2, c never -> most
    assert suggest_bits(fake, 1.5) == (("a", 4), ("b", 2), ("c", 4))
    # issue 10: a loss of exactly the budget qualifies (1.0 / 5 layers = 0.2 points = 2 of 1,000 examples), which
    # the floating-point comparison 0.20000000000000018 <= 0.2 got wrong
    five = [row(f"fc{i}", b, lost) for i in range(5) for b, lost in ((6, 2), (8, 0))]
    assert dict(suggest_bits(five, 1.0)) == {f"fc{i}": 6 for i in range(5)}
    assert dict(suggest_bits(five, 0.9)) == {f"fc{i}": 8 for i in range(5)}


def test_bits_sweep_ptq(digits_mlp):
    b, ds = digits_mlp
    rows = bits_sweep(b.model, ds, QuantConfig(target="weights"), (2, 8))
    assert [r["bits"] for r in rows] == [2, 8] and rows[0]["kb"] < rows[1]["kb"]
    assert rows[1]["accuracy"] >= rows[0]["accuracy"] - 0.01


def test_chart_data_is_the_quantizer():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, generator=g)
    qp = compute_qparams(x.min(), x.max(), 3)
    d = qviz.grid_data(x, qp)
    assert d["level_counts"].sum() == 500 and d["counts"].sum() == 500
    assert np.allclose(d["real_levels"], dequantize(torch.from_numpy(d["levels"]), qp).numpy())
    st = qviz.staircase_data(qp, float(x.min()), float(x.max()))
    levels = dequantize(torch.arange(qp.qmin, qp.qmax + 1), qp).numpy()
    assert np.isin(st["y"].astype(np.float32), levels).all()  # every step is a representable value
    assert (np.diff(st["x"]) > 0).all() and len(np.unique(st["y"])) == qp.levels
    fig = qviz.weight_grid(x, qp, title="t")
    assert any(f"{qp.levels} levels" in (t.name or "") for t in fig.data)
    per_channel = compute_qparams(torch.tensor([-1.0, -3.0]), torch.tensor([1.0, 2.0]), 4, axis=0)
    one = qviz.channel_qparams(per_channel, 1)  # re-exported from compress_core.quant.report
    assert one.axis is None and float(one.scale) == float(per_channel.scale[1])


def test_bits_sweep_leaves_out_a_width_the_settings_cannot_use():
    """A narrow range has no 1-bit grid: the sweep skips it (the Quantization page's curves crashed on it)."""
    from compress_core.quant import QuantConfig, bits_sweep

    b, ds = get_baseline("moons", "tiny"), load_dataset("moons")
    rows = bits_sweep(b.model, ds, QuantConfig(narrow_range=True), [1, 2, 8])
    assert [r["bits"] for r in rows] == [2, 8]
