"""Cross-layer equalization and bias correction (Nagel et al. 2019): the float function unchanged on trained models,
ranges equalized, the scale and the Flatten block mapping against hand transcriptions, and the corrected bias against
a direct transcription of b − E[(W_q − W) x], for Linear and Conv layers."""
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.quant import QuantConfig, quant_layers, quantize_model
from compress_core.recover.equalize import (
    channel_ranges,
    correct_bias,
    equalization_pairs,
    equalization_scales,
    equalize,
)


@pytest.fixture(scope="module", params=[("digits", "cnn"), ("mnist1d", "cnn"), ("digits", "mlp")],
                ids=lambda p: "·".join(p))
def trained(request):
    ds, model = request.param
    return load_dataset(ds), get_baseline(ds, model).model.eval()


def test_equalization_leaves_the_float_function_unchanged(trained):
    ds, model = trained
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    eq = equalize(model)
    with torch.no_grad():
        a, b = model(ds.x_test), eq(ds.x_test)
    assert (a - b).abs().max() <= 1e-5 * a.abs().max()
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert not torch.equal(eq.get_submodule(equalization_pairs(model)[0][0]).weight,
                           model.get_submodule(equalization_pairs(model)[0][0]).weight)  # it did rescale
    for n, p in model.named_parameters():  # the original is untouched
        assert torch.equal(p, before[n]), n


def test_after_equalization_each_pairs_ranges_match(trained):
    _, model = trained
    eq = equalize(model, sweeps=200, tolerance=1e-7)
    for a, b, group in equalization_pairs(eq):
        r1, r2 = channel_ranges(eq.get_submodule(a), eq.get_submodule(b), group)
        live = (r1 > 0) & (r2 > 0)
        assert torch.allclose(r1[live], r2[live], rtol=1e-3), (a, b)


def test_the_scale_is_the_papers_formula():
    r1, r2 = torch.tensor([0.5, 2.0, 3.0, 0.0]), torch.tensor([4.0, 0.25, 3.0, 1.0])
    want = [(1 / b) * math.sqrt(a * b) if a > 0 and b > 0 else 1.0 for a, b in zip(r1.tolist(), r2.tolist())]
    assert equalization_scales(r1, r2).tolist() == pytest.approx(want, rel=1e-6)
    # each channel's two ranges become sqrt(r1·r2)
    s = equalization_scales(r1, r2)[:3]
    assert (r1[:3] / s).tolist() == pytest.approx((r2[:3] * s).tolist(), rel=1e-6)


def tiny_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv1d(2, 3, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool1d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(3 * 4, 5)), ("relu2", nn.ReLU()), ("fc2", nn.Linear(5, 4))]))


def test_after_flatten_a_channel_owns_a_block_of_columns():
    net = tiny_cnn()
    (a, b, group), second = equalization_pairs(net)[0], equalization_pairs(net)[1]
    assert (a, b, group) == ("conv1", "fc1", 4) and second == ("fc1", "fc2", 1)
    w2 = net.fc1.weight.detach()
    _, r2 = channel_ranges(net.conv1, net.fc1, 4)
    for c in range(3):  # channel c feeds columns 4c … 4c + 3 (length 8 pooled to 4)
        assert r2[c].item() == max(abs(w2[o, j].item()) for o in range(5) for j in range(4 * c, 4 * c + 4))
    eq = equalize(net)
    x = torch.randn(64, 2, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), eq(x), rtol=1e-5, atol=1e-6)


def test_a_layer_pair_without_a_relu_is_left_alone():
    net = nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 4)), ("fc2", nn.Linear(4, 3)), ("relu", nn.ReLU()),
                                     ("fc3", nn.Linear(3, 2))]))
    assert equalization_pairs(net) == [("fc2", "fc3", 1)]


def test_equalize_refuses_a_quantized_model(trained):
    ds, model = trained
    with pytest.raises(ValueError, match="already quantized"):
        equalize(quantize_model(model, QuantConfig(target="weights")))


# ---- bias correction -----------------------------------------------------------------------------------------
def transcribed_conv1d_shift(eps: np.ndarray, x: np.ndarray, padding: int) -> np.ndarray:
    """E over examples and positions of Σ_{c,k} ε[o,c,k]·x_pad[n,c,p+k]: the conv's expected output error, looped."""
    n, cin, length = x.shape
    out, _, k = eps.shape
    xp = np.zeros((n, cin, length + 2 * padding))
    xp[:, :, padding:padding + length] = x
    positions = length + 2 * padding - k + 1
    total = np.zeros(out)
    for i in range(n):
        for p in range(positions):
            for o in range(out):
                total[o] += sum(eps[o, c, j] * xp[i, c, p + j] for c in range(cin) for j in range(k))
    return total / (n * positions)


def test_bias_correction_is_b_minus_the_expected_output_error():
    net = tiny_cnn(3).eval()
    x = torch.randn(40, 2, 8)
    q = quantize_model(net, QuantConfig(target="weights", weight_bits=3, per_channel=False))
    qc = correct_bias(q, net, x)
    layers, fixed = dict(quant_layers(q)), dict(quant_layers(qc))
    # conv1 reads the network input
    eps = (layers["conv1"].quantized_weight() - layers["conv1"].weight).detach().double().numpy()
    want = layers["conv1"].bias.detach().double().numpy() - transcribed_conv1d_shift(eps, x.double().numpy(), 1)
    assert fixed["conv1"].bias.detach().double().numpy() == pytest.approx(want, rel=1e-5, abs=1e-6)
    # fc1 and fc2 read the float network's activations: b − (W_q − W)·E[x]
    with torch.no_grad():
        h1 = net.flatten(net.pool1(net.relu1(net.conv1(x))))
        h2 = net.relu2(net.fc1(h1))
    for name, h in (("fc1", h1), ("fc2", h2)):
        ql = layers[name]
        want = ql.bias.detach().double() - (ql.quantized_weight() - ql.weight).detach().double() @ h.double().mean(0)
        assert torch.allclose(fixed[name].bias.detach().double(), want, rtol=1e-5, atol=1e-6), name
    # the quantized model it was given is untouched, and the weights are the same
    assert torch.equal(dict(quant_layers(q))["fc1"].bias, layers["fc1"].bias)
    for name in layers:
        assert torch.equal(layers[name].weight, fixed[name].weight)


def test_after_correction_each_layers_mean_output_error_is_zero(trained):
    ds, model = trained
    calib = ds.x_train[:256]
    q = correct_bias(quantize_model(model, QuantConfig(target="weights", weight_bits=4, per_channel=False)), model,
                     calib)
    with torch.no_grad():
        h = calib
        for name, m in model.named_children():
            ql = dict(quant_layers(q)).get(name)
            if ql is not None:
                y, yq = m(h), ql(h)
                err = (yq - y).transpose(0, 1).reshape(y.shape[1], -1).mean(1)
                assert err.abs().max() <= 1e-4 * max(y.abs().max().item(), 1.0), name
            h = m(h)


def test_bias_correction_refuses_empty_data(trained):
    ds, model = trained
    with pytest.raises(ValueError, match="calibration data"):
        correct_bias(quantize_model(model, QuantConfig(target="weights")), model, ds.x_train[:0])
