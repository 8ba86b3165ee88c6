"""The integer program as tables: per-layer summary, bytes, the one-layer walk-through, the multiplier explorer."""
import math

import numpy as np
import pytest
import torch

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.integer import (
    compare_models,
    explain_multiplier,
    fake_quant_codes,
    layer_summary,
    model_bytes,
    quantize_multiplier,
    to_integer,
    walk_through,
)
from compress_core.integer.report import download_record, example_logits, trace_unit
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


def test_compare_models(setup, prediction_flips):
    ds, b, qm, prog = setup
    c = compare_models(b.model, qm, prog, ds.x_test, ds.y_test)
    assert c["max_step_diff"] <= 1 and c["frac_within_1"] == 1.0  # the premise of the bound below
    # Integer logits within 1 step of fake-quant can only change a prediction whose top-2 fake-quant codes are
    # ≤ 2 steps apart (see tests/conftest.py near_tie_flips): count the differing predictions against that bound
    # rather than bounding the accuracy gap by a margin that one more near-tie breaks.
    with torch.no_grad():
        fq_logits = qm.eval()(ds.x_test)
    f = prediction_flips(fq_logits, fake_quant_codes(qm, prog, ds.x_test), prog(ds.x_test))
    assert f["outside"] == 0, f  # every flip is a near-tie
    assert f["differ"] <= f["near_ties"], f
    # the report's figures count the same flips: each one changes the number of correct answers by at most 1
    n = len(ds.y_test)
    assert round(abs(c["integer"] - c["fake_quant"]) * n) <= f["differ"]
    assert round((1 - c["pred_agree_fq"]) * n) <= f["near_ties"]  # pred_agree_fq compares with argmax of the codes


def test_multiplier_explorer():
    e = explain_multiplier(0.0123, acc=12345)
    assert (e["M0"], e["shift"], e["n"]) == (1690499128, -6, 6)
    assert e["value"] == 1690499128 / 2 ** 31 / 2 ** 6
    assert abs(e["rel_error"]) < 2 ** -30 and 0.5 <= e["M0_fraction"] < 1
    assert e["int_result"] == round(e["float_result"]) == 152
    assert e["M0_hex"] == "0x64C2F838"
    with pytest.raises(ValueError):
        explain_multiplier(0.0)


def test_unit_trace_carries_every_number_of_the_walk(setup):
    """The walk-through's numbers, one output at a time: integer steps chain, and the float side is the float layer."""
    ds, b, qm, prog = setup
    for op in prog.layers:
        w = walk_through(prog, qm, ds.x_test[3], op.name)
        m = dict(qm.named_children())[op.name]
        for unit in {0, w.largest_unit, len(w.units["acc"]) - 1}:
            t = trace_unit(w, qm, unit)
            assert t.acc == t.sum + t.bias_code == int(w.units["acc"][unit])
            assert t.scaled == t.acc * 2 ** t.L and abs(t.scaled) <= 2 ** 31 and abs(t.acc) <= t.acc_bound
            assert t.M == pytest.approx(t.S_w * t.S_x / t.S_y, rel=1e-6) and (t.M0, -t.n) == quantize_multiplier(t.M)
            assert t.plus_zero == t.shifted + t.Z_y and t.out == min(max(t.plus_zero, t.lo), t.hi)
            assert t.real_out == pytest.approx(t.S_y * (t.out - t.Z_y)) and abs(t.out - t.fq_code) <= 1
            assert t.bias_real == pytest.approx(float(m.bias.detach()[t.channel]))
            assert t.pre == pytest.approx(t.dot + t.bias_real)
            assert t.y_float == pytest.approx(max(t.pre, 0.0) if t.relu else t.pre, abs=1e-4)
            assert t.diff == pytest.approx(t.real_out - t.y_float) and t.diff_steps == pytest.approx(t.diff / t.S_y)
            top = np.abs(t.top["(q_x−Z_x)(q_w−Z_w)"])
            assert len(top) == min(10, t.n_terms) and list(top) == sorted(top, reverse=True)
    assert w.largest_unit == int(np.argmax(w.units["float_out"]))
    logits = example_logits(b.model, qm, prog, ds.x_test[3])
    assert logits["predicted"][0] == int(np.argmax(logits["float"])) and len(logits["integer"]) == ds.num_classes
    c = {"float": 0.9, "fake_quant": 0.8, "integer": 0.8, "frac_logits_equal": 0.99, "max_step_diff": 1}
    rec = download_record({"bits": 8}, "ptq", 256, c, {"int8": 3}, [{"layer": "fc1"}])
    assert rec["accuracy"] == {"float": 0.9, "fake_quant": 0.8, "integer": 0.8} and rec["max_step_difference"] == 1


def test_multiplier_explorer_left_shift_and_its_overflow():
    """M ≥ 1 is a left shift (TFLite); an accumulator that the shift pushes out of int32 has no result."""
    from compress_core.integer import explain_multiplier

    e = explain_multiplier(3.0, 1000)
    assert e["shift"] == 2 and e["n"] == -2 and e["int_result"] == 3000
    assert explain_multiplier(3.0, 2 ** 30)["int_result"] is None
    assert explain_multiplier(0.25, 2 ** 30)["int_result"] == 2 ** 28
