"""Whole-model quantization: structure of the fake-quantized copy, calibration, QAT, BN folding."""
import pytest
import torch
from torch import nn

from compress_core import evaluate, get_baseline, load_dataset
from compress_core.quant import (
    METHODS,
    QuantConfig,
    QuantLayer,
    calibrate,
    fake_quantize,
    fold_batchnorm,
    kl_threshold,
    observe_range,
    quant_layers,
    quantization_aware_training,
    quantize_model,
)
from compress_core.train import TrainConfig


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def mlp(digits):
    return get_baseline("digits", "mlp")


@pytest.fixture(scope="module")
def cnn(digits):
    return get_baseline("digits", "cnn")


def test_quantized_copy_structure_and_attributes(mlp, digits):
    model = mlp.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_model(model, QuantConfig(), digits.x_train[:128])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # original untouched
    layers = quant_layers(q)
    assert [n for n, _ in layers] == ["fc1", "fc2", "fc3"]
    assert [ql.relu for _, ql in layers] == [True, True, False]
    for name, ql in layers:
        assert torch.equal(ql.weight, getattr(model, name).weight) and torch.equal(ql.bias, getattr(model, name).bias)
        assert ql.weight_qparams.axis == 0 and ql.weight_qparams.scale.shape == (ql.weight.shape[0],)
        assert ql.weight_qparams.symmetric and int(ql.weight_qparams.zero_point.abs().max()) == 0
    assert layers[0][1].quantize_input and not layers[1][1].quantize_input
    assert layers[1][1].input_qparams is layers[0][1].output_qparams  # one quantization per activation
    assert layers[2][1].input_qparams is layers[1][1].output_qparams
    # after a ReLU the calibrated range starts at 0: Z = qmin (unsigned asymmetric) and negatives clamp to 0
    out_qp = layers[0][1].output_qparams
    assert not out_qp.signed and int(out_qp.zero_point) == 0 and float(out_qp.range_min) == 0.0
    assert int(layers[2][1].output_qparams.zero_point) > 0  # logits are two-sided


def test_fused_relu_matches_relu_then_quantize(mlp, digits):
    q = quantize_model(mlp.model, QuantConfig(), digits.x_train[:128])
    ql = q.fc1
    x = torch.flatten(digits.x_test[:50], 1)
    pre = ql.linear_op(fake_quantize(x, ql.input_qparams), fake_quantize(ql.weight, ql.weight_qparams), ql.bias)
    assert torch.equal(ql(x), fake_quantize(torch.relu(pre), ql.output_qparams))


def test_targets_and_accuracy(mlp, cnn, digits):
    for b in (mlp, cnn):
        float_acc = evaluate(b.model, digits.x_test, digits.y_test).accuracy
        w = quantize_model(b.model, QuantConfig(target="weights"))
        assert all(ql.input_qparams is None and ql.output_qparams is None for _, ql in quant_layers(w))
        a = quantize_model(b.model, QuantConfig(target="activations"), digits.x_train[:256])
        assert all(ql.weight_qparams is None for _, ql in quant_layers(a))
        both = quantize_model(b.model, QuantConfig(), digits.x_train[:256])
        assert abs(evaluate(both, digits.x_test, digits.y_test).accuracy - float_acc) <= 0.01
        two = quantize_model(b.model, QuantConfig(weight_bits=2, act_bits=2), digits.x_train[:256])
        assert evaluate(two, digits.x_test, digits.y_test).accuracy < float_acc
    conv = quant_layers(quantize_model(cnn.model, QuantConfig(), digits.x_train[:64]))[0][1]
    assert conv.kind == "conv2d" and conv.weight_qparams.scale.shape == (6,) and conv.padding == (1, 1)


def test_mixed_precision_and_per_tensor(mlp, digits):
    cfg = QuantConfig(target="weights", weight_bits=8, per_channel=False, layer_bits=(("fc1", 3),))
    q = quantize_model(mlp.model, cfg)
    assert q.fc1.weight_qparams.bits == 3 and q.fc2.weight_qparams.bits == 8
    assert q.fc1.weight_qparams.axis is None and q.fc1.weight_qparams.scale.shape == ()
    assert len(torch.unique(fake_quantize(q.fc1.weight, q.fc1.weight_qparams))) <= 8
    with pytest.raises(ValueError, match="unknown layers"):
        quantize_model(mlp.model, QuantConfig(layer_bits=(("conv9", 4),)), digits.x_train[:8])


def test_bad_settings_and_data_raise_plain_value_errors(mlp, digits):
    with pytest.raises(ValueError, match="weight bits"):
        QuantConfig(weight_bits=0)
    with pytest.raises(ValueError, match="what to quantize"):
        QuantConfig(target="gradients")
    with pytest.raises(ValueError, match="calibration method"):
        QuantConfig(act_method="median")
    with pytest.raises(ValueError, match="needs calibration data"):
        quantize_model(mlp.model, QuantConfig(), None)
    bad = digits.x_train[:16].clone()
    bad[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="calibration data contain NaN"):
        quantize_model(mlp.model, QuantConfig(), bad)
    model = mlp.model
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="weights contain NaN"):
        quantize_model(model, QuantConfig(target="weights"))
    with torch.no_grad():
        model.fc2.weight.zero_()  # an all-zero layer quantizes to exact zeros, no NaN
    q = quantize_model(model, QuantConfig(), digits.x_train[:32])
    assert torch.isfinite(q(digits.x_test[:8])).all()
    assert torch.equal(fake_quantize(q.fc2.weight, q.fc2.weight_qparams), torch.zeros_like(q.fc2.weight))
    cfg = QuantConfig.from_dict(QuantConfig(layer_bits=(("fc1", 4),)).to_dict())
    assert cfg == QuantConfig(layer_bits=(("fc1", 4),)) and hash(cfg)


def test_calibration_methods_clip_outliers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, generator=g)
    x[:5] = 40.0  # outliers
    ranges = {m: observe_range(x, m, bits=4, percentile=99.9) for m in METHODS}
    assert float(ranges["minmax"][1]) == 40.0
    for m in ("percentile", "mse", "kl"):
        assert 1.0 < float(ranges[m][1]) < 20.0, m
    err = {m: float((fake_quantize(x, calibrate(x, m, bits=4)) - x).pow(2).mean()) for m in METHODS}
    assert err["mse"] <= min(err.values()) + 1e-9 and err["mse"] < err["minmax"] / 2
    # percentile is exactly torch.quantile
    lo, hi = observe_range(x, "percentile", percentile=99.0)
    assert float(hi) == float(torch.quantile(x, 0.99)) and float(lo) == float(torch.quantile(x, 0.01))
    # KL keeps everything when the data are uniform (nothing to gain from clipping)
    u = torch.rand(50000, generator=g).numpy()
    assert kl_threshold(u, 128) > 0.95


def test_qat_recovers_low_bit_accuracy(mlp, digits):
    cfg = QuantConfig(weight_bits=2, act_bits=8)
    ptq = evaluate(quantize_model(mlp.model, cfg, digits.x_train[:256]), digits.x_test, digits.y_test).accuracy
    seen = []
    q, hist = quantization_aware_training(mlp.model, cfg, digits, TrainConfig(epochs=3, lr=5e-4), lsq=True,
                                          callback=seen.append)
    assert len(seen) == 3 and seen[-1]["epochs"] == 3
    assert all(isinstance(m, QuantLayer) for _, m in quant_layers(q)) and len(quant_layers(q)) == 3
    assert q.fc2.input_qparams is q.fc1.output_qparams
    acc = evaluate(q, digits.x_test, digits.y_test).accuracy
    if hist.best_iteration:  # the frozen model is the checkpoint that was evaluated (best on validation)
        rec = next(r for r in hist.records if r["iteration"] == hist.best_iteration)
        assert acc == pytest.approx(rec["test_acc"])
        assert rec["val_acc"] == max(r["val_acc"] for r in hist.records)
    assert acc >= ptq - 0.01
    codes = torch.unique(fake_quantize(q.fc1.weight, q.fc1.weight_qparams))
    assert len(codes) <= 4 * q.fc1.weight.shape[0]


def test_fold_batchnorm_equals_conv_then_bn():
    torch.manual_seed(0)
    for layer, bn, x in ((nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), torch.randn(4, 3, 8, 8)),
                         (nn.Linear(7, 6, bias=False), nn.BatchNorm1d(6), torch.randn(10, 7))):
        bn.train()
        bn(layer(torch.randn(64, *x.shape[1:])) * 3 + 1)  # give it non-trivial running statistics
        bn.eval()
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
            torch.testing.assert_close(fold_batchnorm(layer, bn)(x), bn(layer(x)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        fold_batchnorm(nn.Linear(3, 4), nn.BatchNorm1d(5))


def test_float_control_trains_a_float_copy_exactly_as_qat_trains():
    """Issue 10: QAT's extra epochs are controlled for by the float model given the same fine-tuning."""
    import copy

    from compress_core.quant import float_control
    from compress_core.train import train

    ds = load_dataset("moons")
    model = get_baseline("moons", "tiny").model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=2, lr=1e-3)
    net, hist = float_control(model, ds, cfg, seed=3, keep_best=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # only read
    ref = copy.deepcopy(model)
    train(ref, ds, cfg, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))
    assert hist.best_iteration == hist.iterations
    kept, h2 = float_control(model, ds, cfg, seed=3)  # keep_best: the best validation state, the start included
    best_val = max([evaluate(model, ds.x_val, ds.y_val).accuracy] + [r["val_acc"] for r in h2.records])
    assert evaluate(kept, ds.x_val, ds.y_val).accuracy == pytest.approx(best_val)
