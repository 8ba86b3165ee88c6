"""GPTQ against a column-by-column transcription of the paper with explicit inverse-Hessian updates.

The transcription (``ref_gptq``) follows Frantar et al. 2023 §3 (the OBQ step, eq. 2–3) literally, in float64:
quantize column j, move its error onto the not-yet-quantized columns by −(w_j − q_j)/[H⁻¹]_jj · H⁻¹[j, :], then
remove j from the inverse with H⁻¹ ← H⁻¹ − H⁻¹[:, j] H⁻¹[j, :] / [H⁻¹]_jj. No Cholesky factor, no lazy batches: the
library's float32, Cholesky-based, lazily batched result must agree with it. Where a value sits on a rounding
tie (x/S within 2·10⁻³ of a half-integer — every symmetric group's largest |w| does, by construction) float32
and float64 may round it either way; there the transcription takes the library's choice when it is one of the
two nearest levels, and goes on from it, so the two are compared along the same path.
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_core.quant.gptq import gptq
from compress_core.quant.groupwise import group_qparams, layer_objective, rtn
from compress_core.quant.primitives import fake_quantize

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)


def ref_grid(x: torch.Tensor, bits: int, sym: bool):
    """Per-row (scale, zero) of the grid of ``compute_qparams`` (signed codes), transcribed in float64."""
    lo = torch.minimum(x.min(1).values, torch.zeros(len(x), dtype=x.dtype))
    hi = torch.maximum(x.max(1).values, torch.zeros(len(x), dtype=x.dtype))
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if sym:
        scale = torch.maximum(-lo, hi) / ((qmax - qmin) / 2)
        return scale, torch.zeros_like(scale), qmin, qmax
    scale = (hi - lo) / (qmax - qmin)
    return scale, qmin - torch.round(lo / scale), qmin, qmax


def ref_gptq(w, gram, bits, g, sym, percdamp=0.01, act_order=False, follow=None, tie=2e-3):
    """The quantized W, and how many rounding ties took ``follow``'s (the library's) choice."""
    W, H = w.double().clone(), 2 * gram.double().clone()
    cols = W.shape[1]
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    order = torch.argsort(torch.diagonal(H), descending=True, stable=True).tolist() if act_order else list(range(cols))
    Hinv = torch.linalg.inv(H + percdamp * torch.diagonal(H).mean() * torch.eye(cols, dtype=torch.float64))
    Q, ties = torch.zeros_like(W), 0
    if g == "tensor":
        s, z, qmin, qmax = ref_grid(W.reshape(1, -1), bits, sym)
        s, z = s.expand(len(W)), z.expand(len(W))
    elif g == "channel":
        s, z, qmin, qmax = ref_grid(W, bits, sym)
    for pos, j in enumerate(order):
        if g not in ("tensor", "channel") and pos % g == 0:  # the group's grid from its columns as they are now
            s, z, qmin, qmax = ref_grid(W[:, order[pos:pos + g]], bits, sym)
        u = W[:, j] / s
        q = (torch.clamp(torch.round(u) + z, qmin, qmax) - z) * s
        if follow is not None:
            near = [(torch.clamp(f(u) + z, qmin, qmax) - z) * s for f in (torch.floor, torch.ceil)]
            f = follow[:, j].double()
            take = ((u - u.floor() - 0.5).abs() < tie) & torch.stack([(f - n).abs() < 1e-4 * s for n in near]).any(0)
            q, ties = torch.where(take, f, q), ties + int((take & (f != q)).sum())
        Q[:, j] = q
        rest = order[pos + 1:]
        W[:, rest] -= torch.outer((W[:, j] - q) / Hinv[j, j], Hinv[j, rest])
        Hinv = Hinv - torch.outer(Hinv[:, j], Hinv[j, :]) / Hinv[j, j]
    return Q, ties


def correlated_inputs(seed, n, cols, dead=()):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cols, generator=g) @ torch.randn(cols, cols, generator=g) / cols ** 0.5
    x = x + 0.3 * torch.randn(n, cols, generator=g)
    x[:, list(dead)] = 0
    return x


@SETTINGS
@given(seed=st.integers(0, 10 ** 6), rows=st.integers(1, 12), cols=st.integers(4, 72), bits=st.integers(2, 8),
       g=st.sampled_from(["tensor", "channel", 4, 8, 16, 32]), sym=st.booleans(), act_order=st.booleans(),
       block=st.sampled_from([1, 5, 16, 128]), dead=st.booleans())
def test_gptq_matches_columnwise_transcription(seed, rows, cols, bits, g, sym, act_order, block, dead):
    x = correlated_inputs(seed, 3 * cols, cols, dead=(1, cols - 2) if dead else ())
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed + 1))
    gram = x.double().T @ x.double() / len(x)
    lib = gptq(w, gram, bits, g, symmetric=sym, act_order=act_order, block_size=block)
    ref, _ = ref_gptq(w, gram, bits, g, sym, act_order=act_order, follow=lib)
    torch.testing.assert_close(lib.double(), ref, rtol=1e-5, atol=1e-5)
    if dead:
        assert (lib[:, [1, cols - 2]] == 0).all()


def test_diagonal_hessian_is_rtn():
    """Uncorrelated inputs: U is diagonal, no error propagates, and every group's grid is found on the untouched
    columns — GPTQ is exactly RTN, group by group (act order included: the permutation is undone exactly)."""
    torch.manual_seed(0)
    w = torch.randn(16, 96)
    gram = torch.diag(torch.rand(96, dtype=torch.float64) + 0.1)
    for g in ("tensor", "channel", 32, 64, 128):
        torch.testing.assert_close(gptq(w, gram, 3, g, block_size=40), rtn(w, 3, g), rtol=0, atol=0)
    torch.testing.assert_close(gptq(w, gram, 4, "channel", act_order=True), rtn(w, 4, "channel"), rtol=0, atol=0)
    torch.testing.assert_close(gptq(w, gram, 4, 32, symmetric=True), rtn(w, 4, 32, symmetric=True), rtol=0, atol=0)
    # with correlated inputs errors do propagate, but the first column is rounded before any update, on RTN's grid
    x = correlated_inputs(2, 300, 96)
    full = x.double().T @ x.double() / len(x)
    for g in ("channel", 32):
        q = gptq(w, full, 3, g)
        torch.testing.assert_close(q[:, 0], rtn(w, 3, g)[:, 0], rtol=0, atol=0)
        assert not torch.equal(q[:, 1:], rtn(w, 3, g)[:, 1:])


def test_act_order_permutation_is_undone():
    """Permuting the input columns (and H) permutes the result the same way: the processing order depends on
    diag H only, and the result is put back in the caller's column order."""
    x = correlated_inputs(3, 400, 48)
    w = torch.randn(10, 48)
    gram = x.double().T @ x.double() / len(x)
    p = torch.randperm(48, generator=torch.Generator().manual_seed(4))
    for g in ("channel", 8):
        a = gptq(w, gram, 3, g, act_order=True)
        b = gptq(w[:, p], gram[p][:, p], 3, g, act_order=True)
        torch.testing.assert_close(b, a[:, p], rtol=0, atol=0)
        assert not torch.equal(a, gptq(w, gram, 3, g))  # the order did change something


def test_static_groups_keep_contiguous_grids():
    x = correlated_inputs(5, 300, 64)
    w = torch.randn(8, 64)
    gram = x.double().T @ x.double() / len(x)
    q = gptq(w, gram, 3, 16, act_order=True, static_groups=True)
    for i in range(0, 64, 16):  # every value of a contiguous group lies on that group's grid of the original W
        qp = group_qparams(w[:, i:i + 16], 3)
        torch.testing.assert_close(fake_quantize(q[:, i:i + 16], qp), q[:, i:i + 16], rtol=0, atol=1e-6)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10 ** 6), bits=st.integers(2, 4), g=st.sampled_from(["channel", 16, 32]),
       act_order=st.booleans())
def test_gptq_objective_below_rtn_on_correlated_inputs(seed, bits, g, act_order):
    x = correlated_inputs(seed, 512, 96)
    w = torch.randn(32, 96, generator=torch.Generator().manual_seed(seed + 7))
    gram = x.double().T @ x.double() / len(x)
    ours = layer_objective(w, gptq(w, gram, bits, g, act_order=act_order), gram)
    assert ours < layer_objective(w, rtn(w, bits, g), gram)


def test_conv_weight_and_errors():
    x = correlated_inputs(0, 200, 27)
    w = torch.randn(4, 3, 3, 3)
    gram = x.double().T @ x.double() / len(x)
    q = gptq(w, gram, 4, 9)
    assert q.shape == w.shape
    torch.testing.assert_close(q.reshape(4, 27), gptq(w.reshape(4, 27), gram, 4, 9), rtol=0, atol=0)
    with pytest.raises(ValueError):
        gptq(w, gram[:5, :5], 4)
    with pytest.raises(ValueError):
        gptq(w, gram, 9)


@pytest.mark.parametrize("block,g", [(5, 8), (12, 32), (16, 4)])
def test_groups_straddling_lazy_blocks(block, g):
    """A group that starts inside a block and ends past it gets its grid from columns that already carry the
    block's pending errors (the lazy update has not reached them yet): the same grid as without lazy batches."""
    x = correlated_inputs(11, 300, 64)
    w = torch.randn(12, 64, generator=torch.Generator().manual_seed(12))
    gram = x.double().T @ x.double() / len(x)
    lib = gptq(w, gram, 3, g, block_size=block)
    ref, _ = ref_gptq(w, gram, 3, g, False, follow=lib)
    torch.testing.assert_close(lib.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lib, gptq(w, gram, 3, g, block_size=64), rtol=1e-5, atol=1e-5)
