"""Group-wise RTN against a transcription of GPTQ's reference quantizer; storage bits; the layer objective."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_core.quant.groupwise import group_qparams, layer_objective, rtn, storage_bits

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def ref_quantizer(x: torch.Tensor, bits: int, sym: bool):
    """GPTQ's reference ``Quantizer.find_params`` (perchannel, weight=True) and ``quantize``, in float64, for rows
    that take both signs (the reference's symmetric grid differs for an all-positive row)."""
    maxq = 2 ** bits - 1
    xmin = torch.minimum(x.min(1).values, torch.zeros(len(x), dtype=x.dtype))
    xmax = torch.maximum(x.max(1).values, torch.zeros(len(x), dtype=x.dtype))
    if sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        xmin = torch.where(xmin < 0, -xmax, xmin)
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-xmin / scale)
    u = x / scale[:, None]  # before rounding: the tie check below reads it
    q = torch.clamp(torch.round(u) + zero[:, None], 0, maxq)
    return scale[:, None] * (q - zero[:, None]), u


def ref_rtn(w: torch.Tensor, bits: int, g, sym: bool):
    w = w.double()
    if g == "tensor":
        out, u = ref_quantizer(w.reshape(1, -1), bits, sym)
        return out.reshape(w.shape), u.reshape(w.shape)
    g = w.shape[1] if g == "channel" else g
    outs = [ref_quantizer(w[:, i:i + g], bits, sym) for i in range(0, w.shape[1], g)]
    return torch.cat([o for o, _ in outs], 1), torch.cat([u for _, u in outs], 1)


def assert_equal_but_ties(lib, ref, u, step_tol=1e-4):
    """Equal to float precision, except where the reference value sat on a rounding tie (x/S within 1e-4 of a
    half-integer: x·(1/S) in float32 and x/S in float64 may round either way)."""
    close = (lib.double() - ref).abs() <= 1e-5 * (1 + ref.abs())
    tie = ((u - u.floor()) - 0.5).abs() < step_tol
    assert bool((close | tie).all()), f"{int((~close & ~tie).sum())} values differ away from a tie"


@SETTINGS
@given(seed=st.integers(0, 10 ** 6), rows=st.integers(1, 9), cols=st.integers(2, 70), bits=st.integers(2, 8),
       g=st.sampled_from(["tensor", "channel", 4, 16, 32, 64]), sym=st.booleans())
def test_rtn_matches_reference_quantizer(seed, rows, cols, bits, g, sym):
    torch.manual_seed(seed)
    w = torch.randn(rows, cols)
    gw = cols if g in ("channel", "tensor") else g
    for i in range(0, cols, gw):  # every group takes both signs (the transcription's precondition)
        if i + 1 < cols:
            w[:, i], w[:, i + 1] = -w[:, i].abs() - 0.01, w[:, i + 1].abs() + 0.01
    if cols % gw == 1:  # a last group of one column cannot take both signs
        w = w[:, :-1]
    ref, u = ref_rtn(w, bits, g, sym)
    assert_equal_but_ties(rtn(w, bits, g, sym), ref, u)


def test_rtn_granularities_and_shapes():
    torch.manual_seed(0)
    w = torch.randn(6, 40)
    torch.testing.assert_close(rtn(w, 4, 40), rtn(w, 4, "channel"), rtol=0, atol=0)
    torch.testing.assert_close(rtn(w, 4, 128), rtn(w, 4, "channel"), rtol=0, atol=0)  # g ≥ in: one group per row
    # a ragged last group is quantized on its own
    torch.testing.assert_close(rtn(w, 3, 16)[:, 32:], rtn(w[:, 32:], 3, "channel"), rtol=0, atol=0)
    conv = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(rtn(conv, 4, 9), rtn(conv.reshape(4, 27), 4, 9).reshape(conv.shape), rtol=0, atol=0)
    for g in ("tensor", "channel", 8):  # each group: at most 2^b levels, error at most S/2
        q = rtn(w, 3, g)
        for i in range(0, 40, 8 if g == 8 else 40):
            blk = q[:, i:i + 8] if g == 8 else q
            assert all(len(r.unique()) <= 8 for r in (blk.reshape(1, -1) if g == "tensor" else blk))
    qp = group_qparams(w[:, :8], 3)
    assert ((rtn(w, 3, 8)[:, :8] - w[:, :8]).abs() <= qp.scale[:, None] / 2 + 1e-6).all()
    with pytest.raises(ValueError):
        rtn(w, 1, 8)
    with pytest.raises(ValueError):
        rtn(w, 4, 0)


def test_storage_bits():
    # 4-bit, g = 128, asymmetric: 512·128 codes + 512·1 groups of (fp16 scale + 4-bit zero)
    assert storage_bits(512, 128, 4, 128) == 512 * 128 * 4 + 512 * (16 + 4)
    assert storage_bits(512, 128, 4, 32, symmetric=True) == 512 * 128 * 4 + 512 * 4 * 16
    assert storage_bits(10, 100, 3, 64) == 10 * 100 * 3 + 10 * 2 * (16 + 3)  # ragged: ceil(100/64) = 2 groups
    assert storage_bits(10, 100, 8, "tensor") == 10 * 100 * 8 + 16 + 8
    assert storage_bits(10, 100, 8, "channel", scale_bits=32) == 10 * 100 * 8 + 10 * 40
    assert math.isclose(storage_bits(4096, 4096, 4, 128) / 4096 ** 2, 4 + 20 / 128)


def test_layer_objective_is_output_error_per_row():
    torch.manual_seed(0)
    x, w = torch.randn(300, 24), torch.randn(7, 24)
    w_hat = rtn(w, 3, 8)
    gram = x.double().T @ x.double() / len(x)
    direct = ((x.double() @ (w - w_hat).double().T) ** 2).sum() / len(x)
    assert math.isclose(layer_objective(w, w_hat, gram), float(direct), rel_tol=1e-10)
    assert layer_objective(w, w, gram) == 0
