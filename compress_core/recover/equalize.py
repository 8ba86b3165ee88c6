"""Cross-layer equalization and bias correction (Nagel, van Baalen, Blankevoort & Welling 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction", ICCV).

**Cross-layer equalization.** For two layers W1 → ReLU → W2, scaling output channel i of W1 (and its bias) by 1/s_i
and input channel i of W2 by s_i leaves the float function unchanged, because ReLU is positively homogeneous:
ReLU(x/s) = ReLU(x)/s for s > 0 (max-pooling and flattening commute with it too). The paper picks

    s_i = (1 / r2_i) · sqrt(r1_i · r2_i)

with r1_i the range of W1's output channel i and r2_i the range of W2's input channel i (here max |w|), so that
both become sqrt(r1_i · r2_i): the channels' ranges are equalized and a per-tensor grid wastes less of its levels on
one outlying channel. Every consecutive pair is equalized in turn, sweeping the network until the scales settle
(the paper's iteration for longer chains). After ``Flatten`` a conv channel feeds a contiguous block of the next
Linear layer's columns (channel c → columns c·S … (c+1)·S − 1), the block mapping ``pruning.structured`` uses.

**Bias correction.** Quantizing W to W_q shifts the expected output of the layer by E[(W_q − W) x]; subtracting it
from the bias removes the bias of the quantization error (the paper's §4.2). The expectation is taken empirically
over calibration inputs x as the float network sees them (the paper's empirical variant; its analytic one reads
batch-norm statistics, which these models do not have). For a convolution it is the mean over examples and
positions of conv(x, W_q − W), padding included.

Usage::

    eq = equalize(model)                                   # the same function, equalized channel ranges
    q = quantize_model(eq, QuantConfig(weight_bits=4, per_channel=False), calib)
    q = correct_bias(q, eq, calib)                         # E[(W_q − W) x] taken out of each bias
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..models import WEIGHTED
from ..pruning.structured import _columns, _group
from ..quant.model import PASS_THROUGH, QuantLayer, quant_layers

__all__ = ["channel_ranges", "correct_bias", "equalization_pairs", "equalize", "equalization_scales"]


def equalization_pairs(model: nn.Sequential) -> list[tuple[str, str, int]]:
    """(first, second, group) for every two consecutive weighted layers of ``model`` with a ReLU between them and
    nothing but ReLUs, max-pools, flattens, identities and dropouts: the pairs equalization may rescale. ``group``:
    how many of the second layer's input columns each output channel of the first feeds (S after ``Flatten``)."""
    pairs, prev, between = [], None, []
    for name, m in model.named_children():
        if isinstance(m, WEIGHTED):
            if prev is not None and any(isinstance(b, nn.ReLU) for b in between) \
                    and all(isinstance(b, PASS_THROUGH) for b in between) and not isinstance(m, QuantLayer):
                first = model.get_submodule(prev)
                pairs.append((prev, name, _group(m, first.weight.shape[0], name)))
            prev, between = name, []
        else:
            between.append(m)
    return pairs


def channel_ranges(first: nn.Module, second: nn.Module, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(r1, r2): max |w| of each output channel of ``first`` and of each input channel of ``second`` (over the
    block of columns it feeds)."""
    w1, w2 = first.weight.detach(), second.weight.detach()
    r1 = w1.abs().reshape(w1.shape[0], -1).amax(1)
    r2 = _columns(w2.abs(), group).amax(dim=(0, 2))
    return r1, r2


def equalization_scales(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """s_i = (1/r2_i)·sqrt(r1_i·r2_i); 1 for a channel with an all-zero side (a pruned or dead channel)."""
    ok = (r1 > 0) & (r2 > 0)
    s = torch.sqrt(r1 * r2) / torch.where(ok, r2, torch.ones_like(r2))
    return torch.where(ok, s, torch.ones_like(s))


@torch.no_grad()
def _rescale(first: nn.Module, second: nn.Module, group: int, s: torch.Tensor) -> None:
    shape = [-1] + [1] * (first.weight.dim() - 1)
    first.weight.div_(s.reshape(shape))
    if first.bias is not None:
        first.bias.div_(s)
    w2 = second.weight
    cols = s.repeat_interleave(group) if isinstance(second, nn.Linear) else s
    w2.mul_(cols.reshape([1, -1] + [1] * (w2.dim() - 2)))


def equalize(model: nn.Sequential, *, sweeps: int = 20, tolerance: float = 1e-4) -> nn.Sequential:
    """An equalized copy of the float ``model`` (the original is untouched; eval mode): every pair of
    ``equalization_pairs`` rescaled by ``equalization_scales``, sweeping the network until no scale moves by more
    than ``tolerance`` (relative) or ``sweeps`` sweeps are done. Its outputs equal the model's up to float rounding.

    Raises ValueError for a model that is not an ``nn.Sequential`` or is already quantized."""
    if not isinstance(model, nn.Sequential):
        raise ValueError("Equalization works on nn.Sequential models (every classifier in the registry is one).")
    if any(isinstance(m, QuantLayer) for m in model.children()):
        raise ValueError("This model is already quantized: equalize the float model, then quantize it.")
    out = copy.deepcopy(model).eval()
    pairs = equalization_pairs(out)
    for _ in range(sweeps):
        moved = 0.0
        for a, b, group in pairs:
            first, second = out.get_submodule(a), out.get_submodule(b)
            s = equalization_scales(*channel_ranges(first, second, group))
            _rescale(first, second, group, s)
            moved = max(moved, float((s - 1).abs().max()))
        if moved <= tolerance:
            break
    return out


@torch.no_grad()
def _layer_inputs(model: nn.Sequential, x: torch.Tensor, names: set[str]) -> dict[str, torch.Tensor]:
    """The input each named child of ``model`` receives on ``x`` (the float network's own forward pass)."""
    seen, h = {}, x
    for name, m in model.named_children():
        if name in names:
            seen[name] = h
        h = m(h)
    return seen


@torch.no_grad()
def correct_bias(qmodel: nn.Sequential, float_model: nn.Sequential, data: torch.Tensor) -> nn.Sequential:
    """A copy of the quantized ``qmodel`` whose every ``QuantLayer`` with quantized weights has the bias
    b − E[(W_q − W) x], the expectation over ``data`` (calibration inputs) with x the layer's input in
    ``float_model`` (the network ``qmodel`` was quantized from). ``qmodel`` is not changed.

    Raises ValueError for empty data or a float model whose layers do not match."""
    if data is None or len(data) == 0:
        raise ValueError("Bias correction needs calibration data (at least one example).")
    out = copy.deepcopy(qmodel).eval()
    layers = [(n, ql) for n, ql in quant_layers(out) if ql.weight_qparams is not None]
    device = next((p.device for p in float_model.parameters()), torch.device("cpu"))
    inputs = _layer_inputs(float_model.eval(), data.to(device=device, dtype=torch.float32), {n for n, _ in layers})
    for name, ql in layers:
        if name not in inputs or inputs[name].shape[1:] != _expected_input(ql, inputs[name]):
            raise ValueError(f"The float model has no layer {name!r} matching the quantized one.")
        err = ql.linear_op(inputs[name], ql.quantized_weight() - ql.weight, None)  # (N, out, positions…)
        shift = err.transpose(0, 1).reshape(err.shape[1], -1).mean(1)
        if ql.bias is None:
            ql.bias = nn.Parameter(-shift)
        else:
            ql.bias.sub_(shift)
    return out


def _expected_input(ql: QuantLayer, x: torch.Tensor) -> torch.Size:
    """The input shape (without the batch) the layer reads: its fan-in where it is fixed, else ``x``'s own."""
    fan_in = ql.weight.shape[1] * (ql.groups if ql.kind != "linear" else 1)
    return x.shape[1:] if x.shape[1] == fan_in else torch.Size([fan_in])
