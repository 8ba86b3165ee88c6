"""Quantization details checked against PyTorch's observers, TensorRT's entropy calibration and the LSQ paper.

Oracles: torch.ao.quantization observers given quant_min/quant_max (unsigned symmetric zero points at every
bit width), ``compress_core.testing.ref_entropy_threshold`` (a loop-form transcription of TensorRT's
algorithm, Migacz 2017), and Esser et al. 2020's formulas for LSQ's step initialisation and gradient scale.
"""
import math
import warnings

import numpy as np
import pytest
import torch
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from compress_core.quant import (
    QuantConfig,
    compute_qparams,
    kl_threshold,
    lsq_grad_factor,
    observe_range,
    quantization_aware_training,
    quantize_model,
)
from compress_core.quant.qat import _ActQuantizer, _WeightQuantizer, freeze, prepare_qat
from compress_core.testing import ref_entropy_divergences, ref_entropy_histogram, ref_entropy_threshold

warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")


# --- unsigned symmetric zero points -------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
def test_unsigned_symmetric_zero_point_matches_observer(bits):
    """Below 8 bits PyTorch uses the down-rounded midpoint (qmin + qmax) // 2 (7 at 4 bits, not 8); at 8 bits
    the default quint8 observer's 128."""
    g = torch.Generator().manual_seed(bits)
    for t in range(20):
        x = torch.randn(300, generator=g) * (t + 1) * 0.3 + (t % 3 - 1)
        kw = {} if bits == 8 else dict(quant_min=0, quant_max=(1 << bits) - 1)
        obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric, **kw)
        obs(x)
        scale, zero = obs.calculate_qparams()
        qp = compute_qparams(x.min(), x.max(), bits=bits, symmetric=True, signed=False)
        assert (qp.qmin, qp.qmax) == (obs.quant_min, obs.quant_max)
        assert int(qp.zero_point) == int(zero), bits
        assert torch.equal(qp.scale, scale.reshape(()))
    assert int(compute_qparams(-1.0, 1.0, 4, symmetric=True, signed=False).zero_point) == 7


@pytest.mark.parametrize("bits", [2, 4, 7, 8])
def test_unsigned_symmetric_per_channel_matches_observer(bits):
    w = torch.randn(6, 40, generator=torch.Generator().manual_seed(0)) * torch.arange(1, 7)[:, None]
    kw = {} if bits == 8 else dict(quant_min=0, quant_max=(1 << bits) - 1)
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_symmetric, **kw)
    obs(w)
    scale, zero = obs.calculate_qparams()
    qp = compute_qparams(w.amin(1), w.amax(1), bits=bits, symmetric=True, signed=False, axis=0)
    assert torch.equal(qp.zero_point.long(), zero.long())
    assert torch.equal(qp.scale, scale.float())


def test_unsigned_symmetric_zero_point_at_16_bits_matches_uint16_observer():
    if not hasattr(torch, "uint16"):
        pytest.skip("this torch has no uint16 observer")
    x = torch.randn(500, generator=torch.Generator().manual_seed(1))
    obs = MinMaxObserver(dtype=torch.uint16, qscheme=torch.per_tensor_symmetric)
    obs(x)
    scale, zero = obs.calculate_qparams()
    qp = compute_qparams(x.min(), x.max(), bits=16, symmetric=True, signed=False)
    assert int(qp.zero_point) == int(zero) == 1 << 15
    assert torch.equal(qp.scale, scale.reshape(()))


# --- entropy (KL) calibration against TensorRT's algorithm in loop form -------------------------------

def _distributions():
    g = np.random.default_rng(0)
    n = 50_000
    return {
        "gaussian": g.standard_normal(n),
        "laplace": g.laplace(size=n),
        "uniform": g.uniform(-1, 1, n),
        "relu": np.maximum(g.standard_normal(n), 0),  # one-sided, half exact zeros
        "outliers": np.concatenate([g.standard_normal(n - 20), g.uniform(20, 40, 20) * g.choice([-1, 1], 20)]),
    }


DISTRIBUTIONS = _distributions()


def _same_or_tied(got: float, values, levels: int) -> None:
    """``got`` is the reference threshold, or a candidate whose reference divergence ties the minimum (the two
    computations sum in different orders: ~1e-15 apart)."""
    want = ref_entropy_threshold(values, levels)
    if got == pytest.approx(want, rel=1e-12):
        return
    hist, width = ref_entropy_histogram(values)
    div = ref_entropy_divergences(hist, levels)
    assert div[round(got / width)] == pytest.approx(min(div.values()), rel=1e-12, abs=1e-15), (got, want)


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_kl_threshold_matches_tensorrt_loop(name):
    a = np.abs(DISTRIBUTIONS[name])
    _same_or_tied(kl_threshold(a, 128), a, 128)


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_kl_calibration_tries_every_bin_as_tensorrt(name):
    """observe_range(..., "kl") at 8 bits: |x| on 128 levels (symmetric or signed data), one-sided data on
    256; its threshold is the loop-form reference's, and kl_threshold() with its defaults gives the same."""
    x = torch.tensor(DISTRIBUTIONS[name], dtype=torch.float32)
    lo, hi = observe_range(x, "kl", bits=8)
    if name == "relu":
        _same_or_tied(float(hi), x.numpy(), 256)
        assert float(lo) == 0.0
        assert float(hi) == pytest.approx(kl_threshold(x.numpy(), 256), rel=1e-6)
    else:
        a = x.abs().numpy()
        t = max(float(hi), -float(lo))  # the range is [max(min, −t), min(max, t)]
        _same_or_tied(t, a, 128)
        assert float(lo) == max(float(x.min()), -t) and float(hi) == min(float(x.max()), t)
        assert t == pytest.approx(kl_threshold(a, 128), rel=1e-6)  # one default for both


def test_kl_clips_gaussian_and_laplace_tails():
    """With every candidate tried, Gaussian and Laplace data are clipped below their maximum (the 128-candidate
    search returned the unclipped maximum for the Gaussian)."""
    for name in ("gaussian", "laplace", "outliers"):
        a = np.abs(DISTRIBUTIONS[name])
        assert kl_threshold(a, 128) < 0.95 * a.max(), name


def test_kl_threshold_at_low_bit_widths_matches_reference():
    a = np.abs(DISTRIBUTIONS["laplace"])[:5000]
    for levels in (4, 8):  # 3 and 4 bits: 2,045 candidates with a handful of groups each
        _same_or_tied(kl_threshold(a, levels), a, levels)


# --- LSQ: the paper's step initialisation and gradient scale -------------------------------------------

def _lsq_model():
    from compress_core.data import load_dataset
    from compress_core.models import build_model

    ds = load_dataset("digits")
    return ds, build_model("cnn", ds, seed=0)


@pytest.mark.parametrize("bits,per_channel", [(4, True), (4, False), (2, True), (8, False)])
def test_lsq_weight_init_and_grad_factor_follow_the_paper(bits, per_channel):
    """s0 = 2⟨|w|⟩/√Q_P and g = 1/√(N·Q_P), N = the weights one step quantizes: the scale gradient equals
    torch's learnable fake quantization given that g."""
    ds, model = _lsq_model()
    cfg = QuantConfig(weight_bits=bits, per_channel=per_channel)
    qm = quantize_model(model, cfg, ds.x_train[:64])
    ql = qm.conv2
    wq = _WeightQuantizer(ql.weight, ql.weight_qparams, lsq=True)
    q_p = (1 << (bits - 1)) - 1  # signed symmetric weights: Z = 0
    w = ql.weight.detach()
    if per_channel:
        want = 2 * w.abs().reshape(w.shape[0], -1).mean(1) / math.sqrt(q_p)
    else:
        want = (2 * w.abs().mean() / math.sqrt(q_p)).reshape(1)
    assert torch.allclose(wq.scale.detach(), want, rtol=1e-6)
    n = w.numel() // (w.shape[0] if per_channel else 1)
    g = 1 / math.sqrt(n * q_p)
    assert lsq_grad_factor(n, q_p) == pytest.approx(g)
    wr = w.clone().requires_grad_(True)
    up = torch.randn_like(w, generator=torch.Generator().manual_seed(0))
    (wq(wr) * up).sum().backward()
    s = wq.scale.detach().clone().requires_grad_(True)
    z = torch.zeros_like(s)
    qmin, qmax = ql.weight_qparams.qmin, ql.weight_qparams.qmax
    if per_channel:
        ref = torch._fake_quantize_learnable_per_channel_affine(w, s, z, 0, qmin, qmax, g)
    else:
        ref = torch._fake_quantize_learnable_per_tensor_affine(w, s, z, qmin, qmax, g)
    (ref * up).sum().backward()
    assert torch.allclose(wq.scale.grad, s.grad, rtol=1e-4, atol=1e-7)


def test_lsq_activation_grad_factor_counts_features_not_the_batch():
    """g = 1/√(N_F·Q_P) with N_F the features of one example: the same examples repeated in a batch 4× as
    large give 4× the summed gradient (not 2×, as when N counted the whole batch)."""
    qp = compute_qparams(0.0, 4.0, bits=4, signed=False)  # post-ReLU range: Z = 0, Q_P = 15
    aq = _ActQuantizer(qp, lsq=True)
    y = torch.rand(8, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 5
    grads = []
    for reps in (1, 4):
        aq.scale.grad = None
        aq(y.repeat(reps, 1, 1, 1)).sum().backward()
        grads.append(aq.scale.grad.clone())
    assert torch.allclose(grads[1], 4 * grads[0], rtol=1e-5)
    s = aq.scale.detach().clone().requires_grad_(True)
    g = 1 / math.sqrt(3 * 5 * 5 * 15)
    torch._fake_quantize_learnable_per_tensor_affine(y, s, torch.zeros(1), 0, 15, g).sum().backward()
    assert torch.allclose(grads[0], s.grad, rtol=1e-4)


def test_lsq_activation_init_is_mean_abs_of_calibration_data():
    """quantization_aware_training(lsq=True) starts every activation step at 2⟨|a|⟩/√Q_P over the calibration
    data (measured here with forward hooks on the float model); lsq_init="minmax" keeps the calibrated scale."""
    from compress_core.data import load_dataset
    from compress_core.models import build_model
    from compress_core.train import TrainConfig

    ds = load_dataset("moons")
    model = build_model("tiny", ds, seed=0)
    calib = ds.x_train[:128]
    cfg = QuantConfig(weight_bits=4, act_bits=4)
    seen = {}
    names = [n for n, m in model.named_children() if isinstance(m, torch.nn.Linear)]
    children = dict(model.named_children())
    hooks = [children[n].register_forward_hook(lambda m, i, o, n=n: seen.setdefault(n, torch.relu(o)
                                               if n != names[-1] else o)) for n in names]
    with torch.no_grad():
        model(calib)
    for h in hooks:
        h.remove()
    qm = freeze(prepare_qat(model, cfg, calib, lsq=True))  # the steps QAT starts from
    for n in names:
        qp = dict(qm.named_children())[n].output_qparams
        want = 2 * float(seen[n].abs().mean()) / math.sqrt(qp.qmax - int(qp.zero_point))
        assert float(qp.scale) == pytest.approx(want, rel=1e-5), n
    qp = dict(qm.named_children())[names[0]].input_qparams
    want = 2 * float(calib.abs().mean()) / math.sqrt(qp.qmax - int(qp.zero_point))
    assert float(qp.scale) == pytest.approx(want, rel=1e-5)
    mm = freeze(prepare_qat(model, cfg, calib, lsq=True, lsq_init="minmax"))
    ref = quantize_model(model, cfg, calib)
    for n in names:
        assert torch.equal(dict(mm.named_children())[n].output_qparams.scale.reshape(()),
                           dict(ref.named_children())[n].output_qparams.scale.reshape(())), n
    with pytest.raises(ValueError, match="LSQ initialisation"):
        quantization_aware_training(model, cfg, ds, TrainConfig(epochs=1), lsq=True, lsq_init="bogus")


def test_min_max_never_reports_clipping_on_its_own_calibration_data():
    """Issue 10: the float32 scale put the maximum at q = qmax + 0.50000763, flagged as clipped (20 % of an
    mnist1d conv1 channel). On thousands of random tensors, per tensor and per channel, every scheme: none."""
    from compress_core.quant import clip_mask, compute_qparams

    g = torch.Generator().manual_seed(0)
    old_flagged = 0
    for i in range(3000):
        size = int(torch.randint(1, 400, (1,), generator=g))
        x = [torch.randn(size, generator=g), torch.rand(size, generator=g) * 3, -torch.rand(size, generator=g),
             torch.randn(size, generator=g) ** 3 * 100][i % 4]
        bits, sym, signed = int(torch.randint(2, 9, (1,), generator=g)), bool(i % 2), bool((i // 2) % 2)
        qp = compute_qparams(x.min(), x.max(), bits, symmetric=sym, signed=signed)
        assert not clip_mask(x, qp).any(), (i, bits, sym, signed)
        q = x / qp.scale + qp.zero_point  # the former test, in float32 without a tolerance
        old_flagged += bool(((q < qp.qmin - 0.5) | (q > qp.qmax + 0.5)).any())
        w = torch.randn(8, size, generator=g) * torch.rand(8, 1, generator=g)
        qc = compute_qparams(w.amin(1), w.amax(1), bits, symmetric=sym, signed=signed, axis=0)
        assert not clip_mask(w, qc).any()
    assert old_flagged > 0  # the case the issue saw does occur among these tensors
    # values really outside the grid are still reported
    x = torch.linspace(-1, 1, 101)
    qp = compute_qparams(-0.5, 0.5, 8)
    assert clip_mask(x, qp).float().mean().item() == pytest.approx(0.5, abs=0.02)
