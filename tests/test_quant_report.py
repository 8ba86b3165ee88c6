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
from compress_core.train import Metrics, evaluate


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


def test_summary_standard_errors_and_the_change_from_float():
    fm, qm = Metrics(0.95, 0.2), Metrics(0.93, 0.3)
    sm = qr.summarize(fm, {"kb": 10.0}, qm, {"kb": 3.0, "ratio": 3.3}, n_test=360)
    assert sm.n_test == 360 and sm.accuracy_se_pts == pytest.approx(100 * math.sqrt(0.93 * 0.07 / 360))
    # −2 points, s.e. √((0.0475 + 0.0651)/360) = 1.77 points: within noise
    vs = sm.vs_float
    assert vs.diff == pytest.approx(-2.0) and vs.se == pytest.approx(1.7686, abs=1e-4) and vs.within_noise
    assert qr.summarize(fm, {"kb": 10.0}, qm, {"kb": 3.0, "ratio": 3.3}).vs_float is None
    assert qr.se_words(0.95, 360, "digits") == "± 1.1 pts (1 s.e., 360 test images)"
    assert qr.se_words(0.9833, 360, "digits") == "± 0.7 pts (1 s.e., 360 test images)"
    assert qr.se_words(0.9, 250, "moons") == qr.se_words(0.9, 250) == "± 1.9 pts (1 s.e., 250 test examples)"


def test_qat_gain_over_ptq_says_when_it_is_within_noise():
    plan = qr.curve_plan(qr.make_config(4), keep_act8=True, include_qat=True)
    series = {"PTQ per tensor": [{"bits": 2, "accuracy": 0.1, "kb": 1.0}],
              "PTQ per channel": [{"bits": b, "accuracy": a, "kb": 1.0} for b, a in ((2, 0.5), (4, 0.886), (8, 0.95))],
              "QAT per channel": [{"bits": b, "accuracy": a, "kb": 1.0} for b, a in ((8, 0.95), (2, 0.85), (4, 0.9),
                                                                                       (3, 0.8))]}
    gains = qr.qat_gains(plan, series, 360)
    assert [g.bits for g in gains] == [2, 4, 8] and {g.ptq_name for g in gains} == {"PTQ per channel"}
    two, four, eight = (g.comparison for g in gains)
    # 2 bits: 85 % against 50 %, s.e. √((0.1275 + 0.25)/360) = 3.24 points: real
    assert two.diff == pytest.approx(35.0) and two.se == pytest.approx(3.2382, abs=1e-4) and two.outcome == "better"
    # 4 bits: 90 % against 88.6 %: +1.4 ± 2.30 points, within noise
    assert four.diff == pytest.approx(1.4) and four.se == pytest.approx(2.3034, abs=1e-4) and four.within_noise
    assert eight.diff == pytest.approx(0.0) and eight.within_noise
    text = qr.qat_gain_text(gains, "digits")
    assert text.startswith("QAT against PTQ per channel at the same bit width (difference ± 1 s.e., 360 test images):")
    assert "2 bits +35.0 ± 3.2 points (QAT better); 4 bits +1.4 ± 2.3 points (within noise)" in text
    assert ("At 4 and 8 bits QAT's gain over PTQ is within the noise of this test set: one test image is 0.28 points "
            "on digits' 360 test images.") in text
    assert "At 2 bits QAT is measurably better" in text
    worse = qr.qat_gains(plan, {"PTQ per channel": [{"bits": 2, "accuracy": 0.9, "kb": 1.0}],
                                "QAT per channel": [{"bits": 2, "accuracy": 0.5, "kb": 1.0}]}, 360)
    assert "At 2 bits QAT is measurably worse than PTQ." in qr.qat_gain_text(worse)
    # nothing to compare without the QAT curve; the activations-only plan compares "QAT" with "PTQ"
    assert qr.qat_gains(qr.curve_plan(qr.make_config(4), True, False), series, 360) == []
    assert qr.qat_gain_text([]) == ""
    act = qr.curve_plan(qr.make_config(4, "activations"), True, True)
    g = qr.qat_gains(act, {"PTQ": [{"bits": 4, "accuracy": 0.9, "kb": 1.0}],
                           "QAT": [{"bits": 4, "accuracy": 0.9, "kb": 1.0}]}, 100)
    assert g[0].ptq_name == "PTQ" and g[0].comparison.within_noise


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
