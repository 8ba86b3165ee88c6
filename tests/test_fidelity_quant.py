"""Quantization details checked against PyTorch's observers, TensorRT's entropy calibration and the LSQ paper.

Oracles: torch.ao.quantization observers given quant_min/quant_max (unsigned symmetric zero points at every
bit width), ``compress_core.testing.ref_entropy_threshold`` (a loop-form transcription of TensorRT's
algorithm, Migacz 2017), and Esser et al. 2020's formulas for LSQ's step initialisation and gradient scale.
"""
import warnings

import pytest
import torch
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from compress_core.quant import compute_qparams

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
