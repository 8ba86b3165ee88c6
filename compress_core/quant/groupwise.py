"""Weight-only round-to-nearest (RTN) with group-wise scales: the grid every LLM weight quantizer shares.

GPTQ (Frantar et al. 2023, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers",
§4 "Additional details") and AWQ (Lin et al. 2024, "AWQ: Activation-aware Weight Quantization", §3) quantize a
layer's weight matrix W (out, in) with one scale (and zero point) per *group* of g consecutive input columns
of each output row (g = 128 in both papers; 32 and 64 are common too). RTN — each weight rounded to the
nearest level of its group's min-max grid — is the baseline both papers beat. Here it is on three
granularities:

- ``"tensor"``: one grid for the whole matrix; ``"channel"``: one per output row; an int g: one per row and
  group of g columns (the last group of a row is shorter when g does not divide ``in``).
- asymmetric (default, as GPTQ's and AWQ's 4-bit checkpoints): S = (max − min)/(2^b − 1) with the range
  stretched to include 0 and an integer zero point; symmetric: S = max|w|/((2^b − 1)/2), zero point 0.
  Both are ``primitives.compute_qparams`` with signed codes (the unsigned 0…2^b − 1 codes of the reference
  implementations are the same grid shifted by 2^(b−1)), so every method here rounds onto the same levels.

A convolution is quantized through its (out, in·k…) matrix (``layer_inputs.weight_matrix``): groups run over
that flattened view, as GPTQ's reference code does for ``Conv2d``.

``layer_objective(W, Ŵ, H)`` = tr((W − Ŵ) H (W − Ŵ)ᵀ) with H = XᵀX/N is the layer-wise error all of them are
scored by: ‖XWᵀ − XŴᵀ‖²_F / N, the squared output error per calibration row.

``storage_bits`` counts codes plus the per-group scales (fp16 by default, as the checkpoints store them) and zero
points (``bits`` wide, as GPTQ's packed ``qzeros``): 4-bit g128 asymmetric costs 4 + (16 + 4)/128 ≈ 4.16 bits
per weight.

Usage::

    w_hat = rtn(layer.weight, bits=4, group_size=128)           # fake-quantized copy, same shape
    qp = group_qparams(w[:, 0:128], bits=4)                       # per-row grid of one group
    err = layer_objective(layer.weight, w_hat, input_stats(rows).gram)
    storage_bits(512, 128, bits=4, group_size=128)                # codes + scales + zero points
"""
from __future__ import annotations

import math

import torch

from ..layer_inputs import output_error
from .primitives import QParams, compute_qparams, fake_quantize

__all__ = ["GRANULARITIES", "MAX_WEIGHT_BITS", "MIN_WEIGHT_BITS", "check_weight_bits", "group_qparams", "group_width",
           "layer_objective", "rtn", "storage_bits", "tensor_qparams"]

GRANULARITIES = ("tensor", "channel")  # or a positive int: a group of that many input columns per row
MIN_WEIGHT_BITS, MAX_WEIGHT_BITS = 2, 8


def check_weight_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_WEIGHT_BITS <= bits <= MAX_WEIGHT_BITS:
        raise ValueError(f"Weight bits must be a whole number from {MIN_WEIGHT_BITS} to {MAX_WEIGHT_BITS}; "
                         f"got {bits!r}.")


def group_width(columns: int, group_size: int | str) -> int | None:
    """Columns per group for a matrix of ``columns`` columns: None per tensor, ``columns`` per channel, else g."""
    if group_size == "tensor":
        return None
    if group_size == "channel":
        return columns
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"Group size must be 'tensor', 'channel' or a positive number of columns; got {group_size!r}.")
    return min(group_size, columns)


def group_qparams(w: torch.Tensor, bits: int, symmetric: bool = False) -> QParams:
    """One grid per row of ``w`` (rows, columns): the min-max grid of each output row over these columns."""
    w = w.detach().float()
    return compute_qparams(w.amin(1), w.amax(1), bits, symmetric=symmetric, signed=True, axis=0)


def tensor_qparams(w: torch.Tensor, bits: int, symmetric: bool) -> QParams:
    w = w.detach().float()
    return compute_qparams(w.min(), w.max(), bits, symmetric=symmetric, signed=True)


@torch.no_grad()
def rtn(w: torch.Tensor, bits: int = 4, group_size: int | str = 128, symmetric: bool = False) -> torch.Tensor:
    """Round-to-nearest fake quantization of a weight matrix (out, in) — or any weight, read as (out, rest).

    Args:
        w: the weight; a conv weight (out, in, k…) is grouped over its flattened (out, in·k…) view.
        bits: 2–8. group_size: ``"tensor"``, ``"channel"`` or g columns per group.
        symmetric: zero point 0 (else the asymmetric min-max grid).

    Returns a float32 tensor of ``w``'s shape, each value on its group's grid.
    """
    check_weight_bits(bits)
    shape = w.shape
    w2 = w.detach().float().reshape(shape[0], -1)
    cols = w2.shape[1]
    g = group_width(cols, group_size)
    if g is None:
        return fake_quantize(w2, tensor_qparams(w2, bits, symmetric)).reshape(shape)
    full = cols // g * g
    parts = []
    if full:  # the whole groups of every row, as rows of g values: row r's groups are consecutive rows
        blocks = w2[:, :full].reshape(-1, g)
        parts.append(fake_quantize(blocks, group_qparams(blocks, bits, symmetric)).reshape(shape[0], full))
    if full < cols:  # the shorter last group of each row
        tail = w2[:, full:]
        parts.append(fake_quantize(tail, group_qparams(tail, bits, symmetric)))
    return torch.cat(parts, dim=1).reshape(shape)


def storage_bits(out_features: int, in_features: int, bits: int, group_size: int | str = 128,
                 symmetric: bool = False, scale_bits: int = 16) -> int:
    """Bits to store one quantized (out, in) weight matrix: codes, plus a scale (``scale_bits``) and, when
    asymmetric, a ``bits``-wide zero point for every group. (A bias, and AWQ's per-channel input scale when it is
    not folded into a LayerNorm, are extra: ``weight_only.weight_storage`` counts a whole model.)"""
    check_weight_bits(bits)
    g = group_width(in_features, group_size)
    groups = 1 if g is None else out_features * math.ceil(in_features / g)
    return out_features * in_features * bits + groups * (scale_bits + (0 if symmetric else bits))


def layer_objective(w: torch.Tensor, w_hat: torch.Tensor, gram: torch.Tensor) -> float:
    """tr((W − Ŵ) H (W − Ŵ)ᵀ) with H = XᵀX/N (``input_stats(rows).gram``): ‖XWᵀ − XŴᵀ‖²_F / N, in float64.

    The squared output error per calibration row that GPTQ minimises (its H = 2XXᵀ is this H times 2N); one
    definition with SparseGPT's, ``layer_inputs.output_error``."""
    return output_error(w, w_hat, gram)
