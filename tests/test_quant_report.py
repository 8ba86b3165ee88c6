"""compress_core.quant.report: the numbers the Quantization page shows, checked against the primitives."""
import math
from dataclasses import replace

import pytest
import torch

from compress_core import get_baseline, load_dataset
from compress_core.quant import (
    QuantConfig,
    compute_qparams,
    dequantize,
    fake_quantize,
    model_size,
    quant_layers,
    quantize,
    quantize_model,
    sqnr_db,
    weight_qparams_for,
)
from compress_core.quant import report as qr
from compress_core.train import evaluate


@pytest.fixture(scope="module")
def setup():
    b, ds = get_baseline("digits", "mlp"), load_dataset("digits")
    calib = ds.x_train[:128]
    return b, ds, calib, quantize_model(b.model, qr.make_config(4), calib)


def test_make_config_keeps_activations_at_8_bits_only_with_both():
    assert qr.make_config(4).act_bits == 8 and qr.make_config(4, keep_act8=False).act_bits == 4
    assert qr.make_config(4, "activations").act_bits == 4
    c = qr.make_config(3, "weights", symmetric=False, per_channel=False, method="percentile", percentile=99.9)
    assert (c.weight_symmetric, c.act_symmetric, c.per_channel, c.weight_method, c.act_method) == \
        (False, False, False, "percentile", "percentile")
    with pytest.raises(ValueError, match="Narrow range needs at least 2 bits"):
        qr.make_config(1, narrow_range=True)
    assert qr.describe(qr.make_config(4)) == "weights 4-bit per channel · activations 8-bit"
    # activations affine by default (TFLite, PyTorch's observers, the Integer page); symmetric only when asked
    assert not qr.make_config(8).act_symmetric and qr.make_config(8, act_symmetric=True).act_symmetric
    assert qr.describe(qr.make_config(6, "activations")) == "weights float · activations 6-bit"


def test_summary_deltas(setup):
    b, ds, _, q = setup
    fm, fs = evaluate(b.model, ds.x_test, ds.y_test), model_size(b.model)
    qm, qs = evaluate(q, ds.x_test, ds.y_test), model_size(q)
    sm = qr.summarize(fm, fs, qm, qs)
    assert sm.accuracy_delta_pts == pytest.approx(100 * (qm.accuracy - fm.accuracy))
    assert sm.kb_delta == pytest.approx(qs["kb"] - fs["kb"]) and sm.ratio == qs["ratio"] > 1


def test_widest_channel_and_channel_view(setup):
    _, _, calib, q = setup
    t = qr.layer_tensor(q, "fc1", calib)
    w = dict(quant_layers(q))["fc1"].weight.detach()
    assert t.what == "weights" and t.per_channel and t.channels == w.shape[0]
    ranges = w.amax(1) - w.amin(1)
    assert float(ranges[t.widest_channel]) == float(ranges.max())
    c = t.channel(t.widest_channel)
    assert c.label == f"fc1 weights, channel {t.widest_channel}" and not c.per_channel and c.qparams.axis is None
    assert float(c.qparams.scale) == float(t.qparams.scale[t.widest_channel])
    assert torch.equal(c.values, w[t.widest_channel])


def test_layer_tensor_falls_back_to_activations_when_weights_are_float(setup):
    b, _, calib, _ = setup
    q = quantize_model(b.model, qr.make_config(8, "activations"), calib)
    t = qr.layer_tensor(q, "fc2", calib)
    assert t.what == "output activations" and t.values.shape[0] == calib.shape[0] and not t.per_channel
    assert t.label == "fc2 output activations"


def test_channel_qparams():
    per_channel = compute_qparams(torch.tensor([-1.0, -3.0]), torch.tensor([1.0, 2.0]), 4, axis=0)
    one = qr.channel_qparams(per_channel, 1)
    assert one.axis is None and float(one.scale) == float(per_channel.scale[1])
    assert qr.channel_qparams(per_channel, None) is per_channel


def test_round_trip_matches_quantize_and_dequantize():
    qp = compute_qparams(torch.tensor(-1.0), torch.tensor(2.0), 4, symmetric=False)
    ex = qr.round_trip(0.63, qp)
    assert ex.q == int(quantize(torch.tensor([0.63]), qp))
    assert ex.r_hat == pytest.approx(float(dequantize(torch.tensor([ex.q]), qp)))
    assert ex.r_hat == pytest.approx(ex.scale * (ex.q - ex.zero_point)) and abs(ex.r_hat - 0.63) <= ex.scale / 2


def test_compare_granularity(setup):
    _, _, _, q = setup
    w = dict(quant_layers(q))["fc1"].weight.detach()
    cfg = qr.make_config(4)
    c = qr.compare_granularity(w, cfg, 4)
    pt = weight_qparams_for(w, replace(cfg, per_channel=False), 4)
    assert c.sqnr_tensor_db == sqnr_db(w, fake_quantize(w, pt))
    assert c.per_channel.per_channel and not c.per_tensor.per_channel
    assert c.gain_db == pytest.approx(c.sqnr_channel_db - c.sqnr_tensor_db) and c.gain_db > 0
    exact = qr.GranularityComparison(8, pt, pt, math.inf, 40.0)
    assert exact.gain_db is None and qr.format_db(math.inf) == "exact" and qr.format_db(12.34) == "12.3 dB"


def test_curve_plan_and_mixed_configs():
    cfg = qr.make_config(4)
    plan = qr.curve_plan(cfg, keep_act8=True, include_qat=True)
    assert [k for k, _ in plan.kinds] == ["ptq_tensor", "ptq_channel", "qat"] and plan.act_bits == 8
    assert plan.config_for("qat") == QuantConfig(target="both")  # one fixed QAT recipe: trained once per model
    assert plan.config_for("ptq_tensor").weight_bits == 8 and plan.activation_note == "activations at 8 bits"
    plan = qr.curve_plan(qr.make_config(4, "activations"), keep_act8=True, include_qat=False)
    assert plan.kinds == (("ptq_channel", "PTQ"),) and plan.act_bits is None
    assert plan.activation_note == "activations at the same width"
    assert qr.curve_plan(qr.make_config(4, "weights"), True, False).activation_note == "weights only"
    assert qr.scan_config(cfg) == replace(cfg, target="weights", weight_bits=8, act_bits=8)
    mixed = qr.mixed_config(qr.make_config(4, "activations"), (("fc1", 2),))
    assert mixed.target == "both" and mixed.bits_for("fc1") == 2 and mixed.bits_for("fc2") == 4
