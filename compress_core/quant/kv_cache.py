"""KV-cache quantization: store attention's keys and values in 8, 4 or 2 bits.

During generation a transformer keeps every past token's key and value, (batch, heads, tokens, head_dim) per
layer; at long contexts that cache, not the weights, fills the memory. KIVI (Liu et al. 2024, "KIVI: A
Tuning-Free Asymmetric 2bit Quantization for KV Cache", §3) observed that keys have a few fixed *channels*
with large magnitudes, while values have no such channel structure and their error should stay confined to a
token (attention mixes values per token). So it quantizes

- keys per channel: one (scale, minimum) per head_dim channel, shared over the tokens (``axis="channel"``);
- values per token: one (scale, minimum) per token, shared over head_dim (``axis="token"``);

both asymmetric, x̂ = min + S·round((x − min)/S) with S = (max − min)/(2^b − 1) — KIVI's quantizer, which stores
the minimum as a float rather than rounding it to an integer zero point, so no grid needs to include 0 and every
value lies within S/2 of its x̂. (KIVI also keeps the newest tokens in full precision until a group of them fills;
a model that recomputes its whole window each step applies the quantizer to the whole window, as here.)

The attention module takes the quantizer as ``kv_hook``: ``k, v = kv_hook(k, v)`` before the attention product.

Usage::

    attn.kv_hook = kv_quantizer(bits=2)                      # KIVI: keys per channel, values per token
    attn.kv_hook = kv_quantizer(4, key_axis="token")         # the per-token baseline for keys
    k_hat = quantize_kv(k, bits=4, axis="channel")
    kv_cache_bits(k.shape, bits=2)                           # codes + per-group fp16 scales and minima
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["KV_AXES", "KVQuantizer", "kv_cache_bits", "kv_quantizer", "quantize_kv"]

KV_AXES = ("token", "channel")
_REDUCE = {"token": -1, "channel": -2}  # the dimension a group spans: head_dim per token, tokens per channel


def _check(bits: int, axis: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"KV-cache bits must be a whole number from 1 to 8; got {bits!r}.")
    if axis not in KV_AXES:
        raise ValueError(f"KV-cache quantization axis must be one of {', '.join(KV_AXES)}; got {axis!r}.")


def quantize_kv(x: torch.Tensor, bits: int = 4, axis: str = "token", causal: bool = False) -> torch.Tensor:
    """Asymmetric min-max fake quantization of a (…, tokens, head_dim) tensor, one grid per token (``"token"``:
    over head_dim) or per channel (``"channel"``: over the tokens). Constant groups are returned exactly.

    ``causal`` (per channel only): each token's grid spans the channel's range over the tokens up to it, as a cache
    quantizing each key when it arrives sees it; without it the range covers every token, later ones included, so
    in a language model an earlier position's quantized key would depend on the characters it is to predict."""
    _check(bits, axis)
    dim = _REDUCE[axis]
    if causal and axis == "channel":
        lo, hi = x.cummin(dim).values, x.cummax(dim).values
    else:
        lo = x.amin(dim, keepdim=True)
        hi = x.amax(dim, keepdim=True)
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=torch.finfo(x.dtype).tiny)
    q = torch.clamp(torch.round((x - lo) / scale), 0, 2 ** bits - 1)
    return lo + q * scale


class KVQuantizer:
    """``(k, v) -> (k̂, v̂)``: keys and values fake-quantized at ``bits`` along their own axes (a plain object,
    so a model holding it still deep-copies and pickles)."""

    def __init__(self, bits: int = 4, key_axis: str = "channel", value_axis: str = "token"):
        _check(bits, key_axis)
        _check(bits, value_axis)
        self.bits, self.key_axis, self.value_axis = bits, key_axis, value_axis

    def __call__(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # causal: a decoder's earlier positions must never see later tokens, not even through a shared range
        return (quantize_kv(k, self.bits, self.key_axis, causal=True),
                quantize_kv(v, self.bits, self.value_axis, causal=True))

    def __repr__(self) -> str:
        return f"KVQuantizer(bits={self.bits}, key_axis={self.key_axis!r}, value_axis={self.value_axis!r})"


def kv_quantizer(bits: int = 4, key_axis: str = "channel", value_axis: str = "token") -> Callable:
    """A ``kv_hook`` for the attention module; the defaults are KIVI's (keys per channel, values per token)."""
    return KVQuantizer(bits, key_axis, value_axis)


def kv_cache_bits(shape, bits: int, key_axis: str = "channel", value_axis: str = "token",
                  scale_bits: int = 16) -> int:
    """Bits to store one layer's keys and values of ``shape`` (batch, heads, tokens, head_dim): the codes, plus
    a scale and a minimum (``scale_bits`` each) per group."""
    _check(bits, key_axis)
    _check(bits, value_axis)
    b, h, t, d = shape
    groups = {"token": b * h * t, "channel": b * h * d}
    return 2 * math.prod(shape) * bits + (groups[key_axis] + groups[value_axis]) * 2 * scale_bits
