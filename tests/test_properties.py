"""Property tests (hypothesis): the quantizer, the fixed-point multiplier, clipping, pruning masks and the
mixed-precision rule hold for any input, not only for the examples the other tests pick."""
import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from compress_core.integer import quantize_multiplier
from compress_core.pruning import prune
from compress_core.pruning.ranking import Ranking
from compress_core.quant import clip_mask, compute_qparams, dequantize, quantize, suggest_bits

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=32)
values = st.lists(finite, min_size=1, max_size=64)


@SETTINGS
@given(values, st.integers(2, 8), st.booleans(), st.booleans())
def test_min_max_grid_rounds_within_half_a_step_and_keeps_zero_exact(xs, bits, symmetric, signed):
    x = torch.tensor(xs, dtype=torch.float32)
    qp = compute_qparams(x.min(), x.max(), bits, symmetric=symmetric, signed=signed)
    s = float(qp.scale)
    assert math.isfinite(s) and s > 0 and float(qp.range_min) <= 0 <= float(qp.range_max)
    q = quantize(x, qp)
    assert int(q.min()) >= qp.qmin and int(q.max()) <= qp.qmax
    err = (dequantize(q, qp) - x).abs().double()
    assert float(err.max()) <= s / 2 * (1 + 1e-4) + 1e-6 * float(x.abs().max())
    assert float(dequantize(quantize(torch.zeros(1), qp), qp)) == 0.0  # real zero is a code: padding stays exact
    assert not clip_mask(x, qp).any()  # min-max never clips its own calibration data


@SETTINGS
@given(st.floats(min_value=2.0 ** -31, max_value=2.0 ** 30, allow_nan=False))
def test_fixed_point_multiplier_represents_m_to_31_bits(m):
    m0, shift = quantize_multiplier(m)
    assert 2 ** 30 <= m0 < 2 ** 31
    assert abs(m0 * 2.0 ** (shift - 31) - m) <= m * 2.0 ** -30


@SETTINGS
@given(st.integers(2, 40), st.integers(2, 40), st.integers(2, 12), st.floats(0.0, 0.999), st.integers(0, 3))
def test_per_layer_pruning_removes_the_rounded_share_of_each_layer(n_in, hidden, n_out, sparsity, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))
    mask = prune(model, sparsity, seed=seed)
    for name in ("0", "2"):
        w = mask[f"{name}.weight"]
        removed = int((w == 0).sum())
        assert abs(removed - sparsity * w.numel()) <= 1  # one weight of rounding at most
    assert all(torch.equal(mask[k], Ranking(model, seed=seed).mask(sparsity)[k]) for k in mask)
    kept = [model[i].weight.detach().abs()[mask[f"{i}.weight"] > 0] for i in (0, 2)]
    gone = [model[i].weight.detach().abs()[mask[f"{i}.weight"] == 0] for i in (0, 2)]
    for k, g in zip(kept, gone):  # magnitude: nothing removed is larger than something kept in its layer
        if k.numel() and g.numel():
            assert float(g.max()) <= float(k.min())


layer_rows = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=5)


@SETTINGS
@given(layer_rows, st.floats(0.1, 10.0), st.floats(0.1, 10.0))
def test_more_tolerance_never_asks_for_more_bits(losses, tol_a, tol_b):
    n = 1000
    scan = [dict(layer=f"l{i}", bits=b, lost=lost, n=n, change_pts=-100 * lost / n)
            for i, row in enumerate(losses) for b, lost in zip((2, 4, 8), row)]
    small, large = sorted((round(tol_a, 1), round(tol_b, 1)))
    tight, loose = dict(suggest_bits(scan, small)), dict(suggest_bits(scan, large))
    assert all(loose[name] <= tight[name] for name in tight)
    budget = large / len(losses)
    for name, bits in loose.items():  # the pick is the fewest bits within the budget, or the most bits
        row = {r["bits"]: r["lost"] for r in scan if r["layer"] == name}
        ok = [b for b in sorted(row) if 100 * row[b] <= budget * n + 1e-9]
        assert bits == (ok[0] if ok else 8)


@SETTINGS
@given(st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=2, max_size=40), st.integers(2, 8))
def test_per_channel_grids_never_clip_their_channels(flat, bits):
    w = torch.tensor(np.resize(np.asarray(flat, dtype=np.float32), (4, max(1, len(flat) // 2))))
    qp = compute_qparams(w.amin(1), w.amax(1), bits, symmetric=True, axis=0)
    assert not clip_mask(w, qp).any()
    assert (dequantize(quantize(w, qp), qp) - w).abs().le(qp.scale[:, None] / 2 * (1 + 1e-4) + 1e-3).all()
