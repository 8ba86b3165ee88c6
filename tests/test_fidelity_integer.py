"""The integer program against an independent TFLite-style model, bit for bit; pruned all-zero channels that
keep a bias; multipliers M ≥ 1 (TFLite's left shift).

Oracle: ``compress_core.testing.tflite_reference_codes`` -- per layer an int32 accumulator, then
``MultiplyByQuantizedMultiplier`` on Python ints (``ref_multiply_by_quantized_multiplier``), written from
the TFLite definitions rather than from ``compress_core.integer``.
"""
import copy

import pytest
import torch
from torch import nn

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.integer import ConversionError, fake_quant_codes, integer_accuracy, to_integer
from compress_core.pruning import apply_mask, prune
from compress_core.quant import QParams, QuantConfig, quantize_model
from compress_core.testing import ref_multiply_by_quantized_multiplier, tflite_reference_codes
from compress_core.train import TrainConfig, evaluate

CASES = [("digits", "mlp", TrainConfig(epochs=6, lr=1e-3)), ("digits", "cnn", TrainConfig(epochs=6, lr=2e-3)),
         ("mnist1d", "cnn", TrainConfig(epochs=4, lr=2e-3))]
N = 200  # examples through the slow Python-int reference


@pytest.fixture(scope="module")
def trained():
    return {(d, m): (load_dataset(d), get_baseline(d, m, seed=0, train_config=cfg)) for d, m, cfg in CASES}


def _codes(program, x):
    return program.codes(program(x)).to(torch.int64)


@pytest.mark.parametrize("key", [(d, m) for d, m, _ in CASES])
@pytest.mark.parametrize("cfg", [QuantConfig(), QuantConfig(per_channel=False), QuantConfig(weight_symmetric=False),
                                 QuantConfig(weight_bits=4, act_bits=4)], ids=["8bit", "per-tensor", "asym", "4bit"])
def test_default_rescale_is_tflite_bit_for_bit(trained, key, cfg):
    """Every logit code of the default program equals the TFLite-style reference; the headroom refinement is
    an option that moves some codes by one step."""
    ds, b = trained[key]
    qm = quantize_model(b.model, cfg, ds.x_train[:512])
    x = ds.x_test[:N]
    want = tflite_reference_codes(qm, x)
    prog = to_integer(qm)
    assert all(op.headroom == 0 for op in prog.layers)
    assert torch.equal(_codes(prog, x), want)
    refined = _codes(to_integer(qm, headroom=True), x)
    assert (refined - want).abs().max() <= 1


def _pruned_with_biases(b, sparsity=0.5):
    """Neuron pruning, then the dead neurons' biases set back to ±3: all-zero weight rows with a bias."""
    mask = prune(b.model, sparsity, granularity="neuron")
    model = apply_mask(b.model, mask)
    dead = {}
    with torch.no_grad():
        for name, m in list(model.named_children())[:-1]:
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                rows = ~(m.weight.reshape(m.weight.shape[0], -1) != 0).any(1)
                sign = torch.where(torch.arange(len(rows)) % 2 == 0, 3.0, -3.0)
                m.bias[rows] = sign[rows]
                dead[name] = rows
    return model, dead


@pytest.mark.parametrize("key", [("digits", "mlp"), ("digits", "cnn")])
def test_all_zero_channel_with_bias_converts(trained, key):
    ds, b = trained[key]
    model, dead = _pruned_with_biases(b)
    assert any(bool(r.any()) for r in dead.values())
    qm = quantize_model(model, QuantConfig(), ds.x_train[:512])
    for name, rows in dead.items():  # the observer gave those channels S_w = eps: the cause of the overflow
        assert torch.all(getattr(qm, name).weight_qparams.scale[rows] < 1e-6)
    prog = to_integer(qm)  # used to raise "accumulator overflow risk ... Use fewer bits"
    for name, rows in dead.items():
        op = prog.layer(name)
        assert ((op.M[rows] - 1).abs() < 1e-12).all(), name
        # the channel outputs its bias, rounded once: round(b / S_y) + Z_y (at Z_y after a ReLU for b = −3)
        S_y, Z_y = float(op.y.qp.scale), int(op.y.qp.zero_point)
        want = torch.round(getattr(qm, name).bias.detach()[rows].double() / S_y).to(torch.int64) + Z_y
        assert torch.equal(op.bias[rows].to(torch.int64), want - Z_y)
    x = ds.x_test[:N]
    assert torch.equal(_codes(prog, x), tflite_reference_codes(qm, x))
    diff = (prog(ds.x_test).to(torch.int32) - fake_quant_codes(qm, prog, ds.x_test).to(torch.int32)).abs()
    assert diff.max() <= 1
    assert abs(integer_accuracy(prog, ds.x_test, ds.y_test) - evaluate(qm, ds.x_test, ds.y_test).accuracy) < 0.01


def _scaled_output(qm, name, factor):
    """A copy of ``qm`` whose layer ``name`` has its output scale (and the next layer's input scale) × factor."""
    out = copy.deepcopy(qm)
    qp = getattr(out, name).output_qparams
    new = QParams(qp.scale * factor, qp.zero_point, qp.bits, qp.signed, qp.symmetric, qp.narrow_range, qp.axis)
    layers = [m for _, m in out.named_children() if hasattr(m, "weight_qparams")]
    i = [m.name for m in layers].index(name)
    layers[i].output_qparams = new
    if i + 1 < len(layers):
        layers[i + 1].input_qparams = new
    return out


def test_multiplier_at_least_one_shifts_left_as_tflite(trained):
    """M = S_w·S_x/S_y ≥ 1 (an output scale far smaller than the accumulator's) is written as M0·2^shift with
    shift > 0 and rescaled with TFLite's left shift, bit for bit."""
    ds, b = trained[("digits", "mlp")]
    qm = _scaled_output(quantize_model(b.model, QuantConfig(), ds.x_train[:512]), "fc3", 1 / 3000)
    prog = to_integer(qm)
    op = prog.layer("fc3")
    assert bool((op.M >= 1).all()) and bool((op.shift > 0).all())
    x = ds.x_test[:N]
    assert torch.equal(_codes(prog, x), tflite_reference_codes(qm, x))
    # accumulators small enough not to saturate: TFLite's integer result, and round(M·acc) within a step
    acc = torch.arange(-40, 41, dtype=torch.int32)[:, None].expand(-1, op.bias.numel()).contiguous()
    got = op.requantize(acc.clone()).to(torch.int64) - op.y.zero
    want = torch.tensor([[ref_multiply_by_quantized_multiplier(int(a), int(m0), int(s))
                          for a, m0, s in zip(row, op.M0, op.shift)] for row in acc.tolist()])
    want = want.clamp(op.lo - op.y.zero, op.y.hi - op.y.zero)
    assert torch.equal(got, want)
    exact = torch.round(acc.double() * op.M[None]).clamp(op.lo - op.y.zero, op.y.hi - op.y.zero)
    assert (got.double() - exact).abs().max() <= 1
    # the walk-through stages: acc·2^shift is the scaled accumulator
    steps = {}
    op.requantize(acc.clone(), steps)
    assert torch.equal(steps["scaled"].to(torch.int64), acc.to(torch.int64) << op.shift)


def test_multiplier_whose_left_shift_overflows_is_refused(trained):
    ds, b = trained[("digits", "mlp")]
    qm = _scaled_output(quantize_model(b.model, QuantConfig(), ds.x_train[:512]), "fc2", 1e-9)
    with pytest.raises(ConversionError, match="Layer fc2: the multiplier M .* needs a left shift"):
        to_integer(qm)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_every_default_mnist1d_baseline_converts_at_int8(model):
    """The overflow check bounds Σ_k |q_w,k|·max|q_x| per channel, not K·max|q_w|·max|q_x|: the trained
    MNIST-1D MLP (a wide fc2 with a few large weights) was refused at 8 bits by the looser bound."""
    ds = load_dataset("mnist1d")
    qm = quantize_model(get_baseline("mnist1d", model, seed=0).model, QuantConfig(), ds.x_train[:512])
    prog = to_integer(qm, ds.input_shape)
    for op in prog.layers:
        wc = op.weight_t.t().to(torch.int64) - op.w_zero.to(torch.int64)[:, None]
        span = max(op.x.hi - op.x.zero, op.x.zero - op.x.lo)
        assert op.acc_bound == int((wc.abs().sum(1) * span + op.bias.to(torch.int64).abs()).max())
        assert op.acc_bound <= 2 ** 31 - 1
    fq = fake_quant_codes(qm, prog, ds.x_test)
    assert int((prog(ds.x_test).to(torch.int32) - fq.to(torch.int32)).abs().max()) <= 1
    # whichever rescale each layer uses (one-pass, or stage by stage where its int64 terms could overflow): TFLite's
    x = ds.x_test[:N]
    assert torch.equal(_codes(prog, x), tflite_reference_codes(qm, x))
