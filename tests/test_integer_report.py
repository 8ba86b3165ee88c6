"""The integer program as tables: per-layer summary, bytes, the one-layer walk-through, the multiplier explorer."""
import math

import numpy as np
import pytest

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.integer import (
    compare_models,
    explain_multiplier,
    layer_summary,
    model_bytes,
    quantize_multiplier,
    to_integer,
    walk_through,
)
from compress_core.models import summary
from compress_core.quant import QuantConfig, quantize_model
from compress_core.train import TrainConfig


@pytest.fixture(scope="module", params=[("digits", "mlp", 6), ("mnist1d", "cnn", 4)])
def setup(request):
    d, m, epochs = request.param
    ds = load_dataset(d)
    b = get_baseline(d, m, seed=0, train_config=TrainConfig(epochs=epochs, lr=1e-3 if m == "mlp" else 2e-3))
    qm = quantize_model(b.model, QuantConfig(weight_symmetric=False), ds.x_train[:512])
    return ds, b, qm, to_integer(qm, ds.input_shape)


def test_summary_rows_and_multipliers(setup):
    ds, b, qm, prog = setup
    rows = layer_summary(prog)
    assert [r["layer"] for r in rows] == [op.name for op in prog.layers]
    for r, op in zip(rows, prog.layers):
        assert r["accumulator"] == "int32" and r["input"].startswith("uint8") and "int8" in r["weights"]
        assert r["S_out"] == pytest.approx(float(op.y.qp.scale))
        for c in range(op.M.numel()):  # M0, n are quantize_multiplier of M = S_w·S_x/S_out
            M = float(op.w_qp.scale[c]) * float(op.x.qp.scale) / float(op.y.qp.scale)
            assert (int(op.M0[c]), int(op.shift[c])) == quantize_multiplier(M)
            assert 2 ** 30 <= int(op.M0[c]) < 2 ** 31 and op.shift[c] <= 0
        assert 0 < r["max |acc| / 2^31"] < 1


def test_model_bytes(setup):
    ds, b, qm, prog = setup
    mb = model_bytes(prog)
    info = summary(b.model, ds.input_shape)
    assert mb["float32"] == info["total_bytes"]
    n_w = sum(r["weights"] for r in info["layers"])
    n_b = sum(r["biases"] for r in info["layers"])
    assert mb["weights"] == n_w and mb["biases"] == n_b
    overhead = mb["int8"] - n_w - 4 * n_b
    assert 0 < overhead < 7 * n_b + 2 * len(prog.layers) + 1
    assert mb["packed4"] == mb["int8"] - n_w + sum(math.ceil(op.weight_codes.numel() / 2) for op in prog.layers)
    assert mb["float32"] / mb["int8"] > 3.5 and mb["packed4"] < mb["int8"]


def test_walk_through_numbers_add_up(setup):
    ds, b, qm, prog = setup
    for layer in [op.name for op in prog.layers]:
        w = walk_through(prog, qm, ds.x_test[7], layer)
        u = w.units
        op = w.layer
        n_units = op.bias.numel() * w.positions
        assert all(len(v) == n_units for v in u.values())
        # the real input is what the integer codes stand for
        assert np.allclose(w.x_real, (w.q_in - int(op.x.qp.zero_point)) * float(op.x.qp.scale))
        # out = clamp(shifted + Z), and the real value is S·(q − Z)
        zy = int(op.y.qp.zero_point)
        lo = max(op.y.qp.qmin, zy) if op.relu else op.y.qp.qmin
        assert np.array_equal(u["out_code"], np.clip(u["shifted"] + zy, lo, op.y.qp.qmax))
        assert np.allclose(u["real_out"], (u["out_code"] - zy) * float(op.y.qp.scale))
        assert np.abs(u["out_code"] - u["fq_code"]).max() <= 1
        # the integer result is within a few steps of the float layer on the same input
        assert np.abs(u["diff"]).max() <= 3 * float(op.y.qp.scale)
        for unit in (0, n_units // 2, n_units - 1):
            t = w.unit_terms(unit)
            assert t["acc"] == u["acc"][unit] and t["bias"] == u["bias"][unit]
            assert len(t["products"]) == w.cols.shape[1]


def test_compare_models(setup):
    ds, b, qm, prog = setup
    c = compare_models(b.model, qm, prog, ds.x_test, ds.y_test)
    assert abs(c["integer"] - c["fake_quant"]) <= 0.002 + 1e-9
    assert c["max_step_diff"] <= 1 and c["frac_within_1"] == 1.0 and c["pred_agree_fq"] > 0.99


def test_multiplier_explorer():
    e = explain_multiplier(0.0123, acc=12345)
    assert (e["M0"], e["shift"], e["n"]) == (1690499128, -6, 6)
    assert e["value"] == 1690499128 / 2 ** 31 / 2 ** 6
    assert abs(e["rel_error"]) < 2 ** -30 and 0.5 <= e["M0_fraction"] < 1
    assert e["int_result"] == round(e["float_result"]) == 152
    assert e["M0_hex"] == "0x64C2F838"
    with pytest.raises(ValueError):
        explain_multiplier(0.0)
