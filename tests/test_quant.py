"""The affine scheme against PyTorch as the oracle, bit for bit, plus its invariants.

Oracles: torch.ao.quantization's MinMaxObserver / PerChannelMinMaxObserver / MovingAverageMinMaxObserver
(scale, zero point), torch.fake_quantize_per_tensor_affine / _per_channel_affine (values and
straight-through gradients), torch._fake_quantize_learnable_per_tensor_affine / _per_channel_affine (LSQ).
"""
import itertools
import warnings

import pytest
import torch
from torch.ao.quantization.observer import MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver

from compress_core.quant import (
    EPS,
    QParams,
    calibrate,
    clip_mask,
    compute_qparams,
    dequantize,
    fake_quantize,
    lsq_fake_quantize,
    observe_range,
    qrange,
    quantize,
)

warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")


def _samples(n_trials=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    for t in range(n_trials):
        x = torch.randn(500, generator=g) * float(torch.rand(1, generator=g) * 10 + 1e-3) \
            + float(torch.randn(1, generator=g) * 3)
        if t % 4 == 0:
            x = x.abs()  # one-sided data: the range must still include 0
        if t % 4 == 1:
            x = -x.abs()
        yield x


# --- scale and zero point vs the observers ----------------------------------------------------------

OBSERVER_CASES = [(d, q, r) for d, q, r in itertools.product(
    (torch.qint8, torch.quint8), (torch.per_tensor_affine, torch.per_tensor_symmetric), (False, True))
    if not (d == torch.quint8 and q == torch.per_tensor_symmetric and r)]  # torch refuses that combination


@pytest.mark.parametrize("dtype,qscheme,reduce_range", OBSERVER_CASES)
def test_per_tensor_qparams_match_minmax_observer(dtype, qscheme, reduce_range):
    for x in _samples():
        obs = MinMaxObserver(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range)
        obs(x)
        scale, zero = obs.calculate_qparams()
        qp = compute_qparams(x.min(), x.max(), bits=7 if reduce_range else 8,  # reduce_range = one bit fewer
                             symmetric=qscheme == torch.per_tensor_symmetric, signed=dtype == torch.qint8)
        assert (qp.qmin, qp.qmax) == (obs.quant_min, obs.quant_max) or reduce_range
        assert qp.scale.dtype == torch.float32 and qp.scale.shape == ()
        assert torch.equal(qp.scale, scale.reshape(())), (x.min(), x.max())
        assert int(qp.zero_point) == int(zero)


@pytest.mark.parametrize("dtype,qscheme,reduce_range", [
    (d, q, r) for d, q, r in itertools.product((torch.qint8, torch.quint8),
                                               (torch.per_channel_affine, torch.per_channel_symmetric), (False, True))
    if not (d == torch.quint8 and q == torch.per_channel_symmetric and r)])
def test_per_channel_qparams_match_per_channel_observer(dtype, qscheme, reduce_range):
    g = torch.Generator().manual_seed(1)
    for axis in (0, 1):
        w = torch.randn(16, 9, 3, generator=g) * torch.rand(16, 1, 1, generator=g).mul(5) if axis == 0 else \
            torch.randn(4, 12, 5, generator=g) * torch.rand(1, 12, 1, generator=g).mul(5)
        w[..., 0] += 2.0  # skew some channels away from 0
        obs = PerChannelMinMaxObserver(ch_axis=axis, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range)
        obs(w)
        scale, zero = obs.calculate_qparams()
        lo, hi = observe_range(w, "minmax", axis=axis)
        qp = compute_qparams(lo, hi, bits=7 if reduce_range else 8, symmetric=qscheme == torch.per_channel_symmetric,
                             signed=dtype == torch.qint8, axis=axis)
        assert qp.axis == axis and qp.scale.shape == (w.shape[axis],)
        assert torch.equal(qp.scale, scale)
        assert torch.equal(qp.zero_point.long(), zero.long())


def test_narrow_range_and_16_bit_match_observer_with_custom_range():
    for x in _samples(20):
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127)
        obs(x)
        s, z = obs.calculate_qparams()
        qp = compute_qparams(x.min(), x.max(), 8, symmetric=True, narrow_range=True)
        assert (qp.qmin, qp.qmax) == (-127, 127) and torch.equal(qp.scale, s.reshape(())) and int(z) == 0
        obs = MinMaxObserver(dtype=torch.qint32, quant_min=-(2 ** 15), quant_max=2 ** 15 - 1)
        obs(x)
        s, z = obs.calculate_qparams()
        qp = compute_qparams(x.min(), x.max(), 16)
        assert torch.equal(qp.scale, s.reshape(())) and int(qp.zero_point) == int(z)


def test_moving_average_matches_observer():
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(64, 10, generator=g) * (1 + i) for i in range(6)]
    obs = MovingAverageMinMaxObserver(averaging_constant=0.1, dtype=torch.quint8)
    for b in batches:
        obs(b)
    lo, hi = observe_range(batches, "moving_average", averaging_constant=0.1)
    assert torch.equal(lo, obs.min_val) and torch.equal(hi, obs.max_val)
    s, z = obs.calculate_qparams()
    qp = calibrate(batches, "moving_average", signed=False, averaging_constant=0.1)
    assert torch.equal(qp.scale, s.reshape(())) and int(qp.zero_point) == int(z)


def test_zero_point_rounds_half_to_even():
    # min/S = -63.5 exactly: round half to even gives -64, so Z = -128 + 64 = -64 (not -63)
    qp = compute_qparams(-63.5, 191.5, 8)  # range 255 -> S = 1
    assert float(qp.scale) == 1.0 and int(qp.zero_point) == -64
    qp = compute_qparams(-62.5, 192.5, 8)
    assert int(qp.zero_point) == -66  # round(-62.5) = -62


# --- quantize / fake quantize vs torch ---------------------------------------------------------------

def _tie_values(scale: float, n: int = 300) -> torch.Tensor:
    """Values exactly halfway between two grid points (scale a power of two keeps x/S exact)."""
    return (torch.arange(-n, n, dtype=torch.float32) + 0.5) * scale


def _same_values_and_gradient(ref_op, our_op, x, g):
    """Both ops give bit-identical outputs and input gradients for a random upstream gradient.

    Returns (our input gradient, the upstream gradient)."""
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref, out = ref_op(xa), our_op(xb)
    assert torch.equal(out, ref)
    up = torch.randn(x.shape, generator=g)
    ref.backward(up)
    out.backward(up)
    assert torch.equal(xb.grad, xa.grad)
    return xb.grad, up


def _passes_8bit(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Where the straight-through estimator lets the gradient through: round(x/S) + Z inside [-128, 127].

    Computed in float64 from the definition (round half to even), independently of the op under test."""
    code = torch.round(x.double() / scale) + zero_point
    return (code >= -128) & (code <= 127)


@pytest.mark.parametrize("zero_point", [0, 3, -7])
def test_fake_quantize_per_tensor_matches_torch_values_and_gradient(zero_point):
    g = torch.Generator().manual_seed(3)
    ties = _tie_values(0.25)  # x/S = k + 0.5 for k in [-300, 300): far past both ends of [-128, 127]
    noise = torch.randn(4000, generator=g) * 3  # x/S up to about ±400: clips about 12 % of the values
    for scale, x in ((0.25, ties), (0.037, noise)):
        qp = QParams(torch.tensor(scale), torch.tensor(zero_point, dtype=torch.int32), bits=8)
        grad, up = _same_values_and_gradient(
            lambda t: torch.fake_quantize_per_tensor_affine(t, scale, zero_point, -128, 127),
            lambda t: fake_quantize(t, qp), x, g)
        # straight-through estimator: the upstream gradient unchanged inside the grid, exactly 0 where clipped
        passes = _passes_8bit(x, scale, zero_point)
        assert torch.equal(grad, torch.where(passes, up, torch.zeros_like(up)))
        # both regions are exercised, so the check above can fail either way
        assert 0 < int(passes.sum()) < x.numel()
    # the tie set, counted by hand: k + 0.5 rounds half to even, to k (k even) or k + 1 (k odd)
    codes = [(k if k % 2 == 0 else k + 1) + zero_point for k in range(-300, 300)]
    assert int(_passes_8bit(ties, 0.25, zero_point).sum()) == sum(-128 <= c <= 127 for c in codes)


def test_fake_quantize_per_channel_matches_torch_values_and_gradient():
    g = torch.Generator().manual_seed(4)
    for axis in (0, 1):
        x = torch.randn(6, 5, 40, generator=g) * 4
        x.select(-1, 0).copy_(torch.full_like(x.select(-1, 0), 0.375))  # a tie for scale 0.25
        lo, hi = observe_range(x, "minmax", axis=axis)
        qp = compute_qparams(lo, hi, 4, axis=axis)
        qp = QParams(torch.where(torch.arange(len(qp.scale)) % 2 == 0, torch.tensor(0.25), qp.scale), qp.zero_point,
                     4, axis=axis)
        _same_values_and_gradient(
            lambda t: torch.fake_quantize_per_channel_affine(t, qp.scale, qp.zero_point, axis, qp.qmin, qp.qmax),
            lambda t: fake_quantize(t, qp), x, g)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_fake_quantize_without_gradient_is_the_same_arithmetic_and_leaves_its_input(axis):
    """Evaluation and calibration take the no-gradient path (in place on one new tensor, no clipping mask): bit for
    bit the values of the straight-through path and of torch's fake-quantize op, and the input is not touched."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 5, 40, generator=g) * 4
    x[0, 0, :4] = torch.tensor([0.375, -0.375, 1e6, -1e6])  # ties and values far past both ends
    lo, hi = observe_range(x, "minmax", axis=axis)
    qp = compute_qparams(lo * 0.5, hi * 0.5, 4, axis=axis)  # half the range: a good share is clipped
    if axis is None:
        ref = torch.fake_quantize_per_tensor_affine(x, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax)
    else:
        ref = torch.fake_quantize_per_channel_affine(x, qp.scale, qp.zero_point, axis, qp.qmin, qp.qmax)
    before = x.clone()
    with torch.no_grad():
        fast = fake_quantize(x, qp)
    ste = fake_quantize(x.clone().requires_grad_(), qp).detach()
    assert torch.equal(fast, ste) and torch.equal(fast, ref)
    assert torch.equal(x, before)


def test_quantize_codes_match_torch_fake_quant_and_quantize_per_tensor():
    g = torch.Generator().manual_seed(5)
    x = torch.cat([torch.randn(5000, generator=g) * 2, _tie_values(0.0625, 40)])
    for zero_point in (0, 4, -5):
        qp = QParams(torch.tensor(0.0625), torch.tensor(zero_point, dtype=torch.int32), 8)
        q = quantize(x, qp)
        assert q.dtype == torch.int32 and int(q.min()) >= -128 and int(q.max()) <= 127
        fq = torch.fake_quantize_per_tensor_affine(x, 0.0625, zero_point, -128, 127)
        assert torch.equal(dequantize(q, qp), fq)
        # torch.quantize_per_tensor (FBGEMM) rounds x/S + Z in one go: it agrees except at exact ties with odd Z
        ref = torch.quantize_per_tensor(x, 0.0625, zero_point, torch.qint8).int_repr().int()
        tie = (x / 0.0625 - (x / 0.0625).floor()) == 0.5
        assert torch.equal(q[~tie], ref[~tie])
        if zero_point % 2 == 0:
            assert torch.equal(q, ref)


def _check_lsq_against(ref_op, x, scale, zero_point, qmin, qmax, grad_factor, g, axis=None):
    """Forward values and the gradients of x, S and Z of ``lsq_fake_quantize`` equal torch's learnable op."""
    sa, sb = scale.clone().requires_grad_(), scale.clone().requires_grad_()
    za, zb = zero_point.clone().requires_grad_(), zero_point.clone().requires_grad_()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = ref_op(xa, sa, za)
    out = lsq_fake_quantize(xb, sb, zb, qmin, qmax, grad_factor, **({} if axis is None else {"axis": axis}))
    assert torch.equal(out, ref)
    up = torch.randn(x.shape, generator=g)
    ref.backward(up)
    out.backward(up)
    # torch's backward rounds x/S + Z jointly: at exact ties with an odd Z it may differ (none here: Z even)
    assert torch.equal(xb.grad, xa.grad)
    torch.testing.assert_close(sb.grad, sa.grad, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(zb.grad, za.grad, rtol=1e-5, atol=1e-5)


def test_lsq_gradients_match_torch_learnable_fake_quant():
    g = torch.Generator().manual_seed(6)
    x = torch.cat([torch.randn(2000, generator=g) * 2, _tie_values(0.125, 40)])
    for zero_point in (0.0, 2.0, 4.0):
        _check_lsq_against(lambda xx, s, z: torch._fake_quantize_learnable_per_tensor_affine(xx, s, z, -8, 7, 0.37),
                           x, torch.tensor([0.125]), torch.tensor([zero_point]), -8, 7, 0.37, g)
    w = torch.randn(8, 30, generator=g)
    s = torch.rand(8, generator=g).add(0.05)
    _check_lsq_against(lambda ww, ss, z: torch._fake_quantize_learnable_per_channel_affine(ww, ss, z, 0, -8, 7, 1.0),
                       w, s, torch.zeros(8), -8, 7, 1.0, g, axis=0)


# --- invariants --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,symmetric,signed,narrow",
                         list(itertools.product((2, 3, 4, 8, 16), (False, True), (False, True), (False, True))))
def test_rounding_error_at_most_half_a_step_and_zero_exact(bits, symmetric, signed, narrow):
    g = torch.Generator().manual_seed(bits)
    for x in (torch.randn(3000, generator=g) * 2 + 0.5, torch.rand(3000, generator=g) * 7):
        qp = compute_qparams(x.min(), x.max(), bits, symmetric=symmetric, signed=signed, narrow_range=narrow)
        zero_code = quantize(torch.zeros(1), qp)
        assert int(zero_code) == int(qp.zero_point)
        assert float(fake_quantize(torch.zeros(1), qp)) == 0.0  # real zero is exactly representable
        inside = (x >= qp.range_min) & (x <= qp.range_max)
        err = (fake_quantize(x, qp) - x).abs()
        # S/2, plus float32 rounding of x·(1/S) (one ulp of a code as large as 2^bits: visible at 16 bits)
        assert float(err[inside].max()) <= float(qp.scale) * (0.5 + 1e-5 + qp.levels * 2.0 ** -23)
        assert not clip_mask(x[inside], qp).any()
        if not symmetric:  # asymmetric: the whole observed range is inside the grid (up to rounding of Z)
            assert float(inside.float().mean()) > 0.99


def test_qrange_and_bad_bit_widths():
    assert qrange(8) == (-128, 127) and qrange(8, signed=False) == (0, 255)
    assert qrange(8, narrow_range=True) == (-127, 127) and qrange(16) == (-32768, 32767)
    assert qrange(1) == (-1, 0) and qrange(1, signed=False) == (0, 1)
    for bad in (0, 17, -3, 2.5, True):
        with pytest.raises(ValueError, match="Bit width"):
            qrange(bad)
    with pytest.raises(ValueError, match="Narrow range"):
        compute_qparams(-1.0, 1.0, 1, narrow_range=True)


def test_degenerate_ranges_never_give_zero_scale_or_nan():
    for lo, hi in ((0.0, 0.0), (2.0, 2.0), (-3.0, -3.0), (1e-30, 1e-30)):
        for sym in (False, True):
            qp = compute_qparams(lo, hi, 8, symmetric=sym)
            assert float(qp.scale) >= EPS
            x = torch.full((5,), lo)
            out = fake_quantize(x, qp)
            assert torch.isfinite(out).all()
    w = torch.zeros(4, 3)
    w[1] = 5.0  # one constant channel, one all-zero
    qp = calibrate(w, "minmax", bits=4, symmetric=True, axis=0)
    assert (qp.scale >= EPS).all() and torch.isfinite(fake_quantize(w, qp)).all()
    one = torch.tensor([[0.7]])  # a single-element channel
    for m in ("minmax", "percentile", "mse", "kl"):
        qp = calibrate(one, m, bits=4, axis=0)
        assert torch.isfinite(fake_quantize(one, qp)).all() and (qp.scale > 0).all()


def test_bad_ranges_raise_value_error():
    with pytest.raises(ValueError, match="NaN or infinity"):
        compute_qparams(float("nan"), 1.0)
    with pytest.raises(ValueError, match="NaN or infinity"):
        compute_qparams(torch.tensor([0.0, -1.0]), torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="larger than its maximum"):
        compute_qparams(2.0, 1.0)
    with pytest.raises(ValueError, match="NaN or infinity"):
        calibrate(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="Cannot quantize NaN"):
        quantize(torch.tensor([float("nan")]), compute_qparams(-1.0, 1.0))
    with pytest.raises(ValueError, match="do not fit"):
        fake_quantize(torch.zeros(3, 4), compute_qparams(torch.zeros(5), torch.ones(5)))
    # infinities in the data to quantize are clipped, not propagated
    qp = compute_qparams(-1.0, 1.0)
    assert quantize(torch.tensor([float("inf"), -float("inf")]), qp).tolist() == [127, -128]
