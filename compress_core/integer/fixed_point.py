"""Fixed-point arithmetic for integer-only requantization, bit for bit as gemmlowp and TFLite define it.

Integer inference (Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", section 2.2) rescales each int32 accumulator by the real number
M = S_w·S_x / S_out. M is written once, at conversion time, as ``M = M0 · 2^shift`` with M0 an int32
Q31 fixed-point number in [2^30, 2^31) (so M0 / 2^31 lies in [0.5, 1)); at run time the rescale is an
integer multiply that keeps the high 32 bits, then a rounding right shift. The definitions below follow

- gemmlowp ``fixedpoint/fixedpoint.h``: ``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT``;
- TFLite ``kernels/internal/common.h`` / ``quantization_util.cc``: ``MultiplyByQuantizedMultiplier``
  (the default, double-rounding variant) and ``QuantizeMultiplier``.

Each function works element-wise on int32 / int64 torch tensors (values must lie in the int32 range;
int32 in gives int32 out, int64 in gives int64 out) and broadcasts, so per-channel multipliers are just
tensors of M0 and shift. The slow pure-Python transcriptions that tests and
``bench/bench_integer.py`` compare against live in ``compress_core.testing``.

Usage::

    M0, shift = quantize_multiplier(0.0123)          # (1690499128, -6): 0.0123 ≈ 1690499128 / 2^31 · 2^-6
    acc = torch.tensor([12345, -12345], dtype=torch.int32)
    multiply_by_quantized_multiplier(acc, M0, shift)  # tensor([152, -152], dtype=torch.int32)
"""
from __future__ import annotations

import math

import torch

INT32_MIN = -(2 ** 31)
INT32_MAX = 2 ** 31 - 1

IntLike = "torch.Tensor | int"


# --- Conversion time: the real multiplier as (M0, shift) ---------------------------------------------------

def quantize_multiplier(M: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: the real ``M > 0`` as ``M ≈ M0 · 2^(shift − 31)``.

    Computed in double precision: ``M = q · 2^shift`` with q in [0.5, 1) (``frexp``), then
    ``M0 = round(q · 2^31)`` rounding half away from zero; if that rounds up to 2^31, halve it and add one
    to ``shift``. So 2^30 ≤ M0 < 2^31, and for M < 1 the right shift is ``n = −shift`` (Jacob et al.'s
    M = 2^−n·M0). As in TFLite, a multiplier below about 2^−32 (shift < −31) is flushed to ``(0, 0)``:
    every int32 accumulator times it rounds to 0 anyway.

    Args:
        M: a positive, finite real multiplier (``M ≥ 1`` is allowed here and gives ``shift > 0``).

    Returns:
        ``(M0, shift)`` as Python ints.

    Raises:
        ValueError: ``M`` is not a positive finite number.
    """
    M = float(M)
    if not math.isfinite(M) or M <= 0.0:
        raise ValueError(f"The multiplier must be a positive finite number; got M = {M!r}.")
    q, shift = math.frexp(M)  # M = q · 2^shift, 0.5 ≤ q < 1
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):  # q rounded up to 1.0: renormalise
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def _round_half_away(x: float) -> int:
    """C's ``std::round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def multiplier_value(M0: int, shift: int) -> float:
    """The real number that ``(M0, shift)`` stands for: ``M0 · 2^(shift − 31)`` (exact in a double)."""
    return math.ldexp(float(M0), int(shift) - 31)


# --- Run time: the integer rescale ---------------------------------------------------------------------------

def _as_tensor(v, like: torch.Tensor) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.to(device=like.device)
    return torch.tensor(v, dtype=torch.int64, device=like.device)


def _check_int(x: torch.Tensor, name: str) -> None:
    if x.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be an int32 or int64 tensor; got {x.dtype}.")
    if x.dtype == torch.int64 and x.numel() and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise ValueError(f"{name} holds values outside the int32 range.")


def saturating_rounding_doubling_high_mul(a: torch.Tensor, b) -> torch.Tensor:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: the high 32 bits of ``2·a·b``, rounded.

    ``(a·b + nudge) / 2^31`` with C truncating division, ``nudge = 2^30`` for a non-negative product and
    ``1 − 2^30`` for a negative one. The result is ``floor(a·b / 2^31 + 1/2)``: halves round up, toward
    +∞ (so a negative tie rounds toward zero — gemmlowp's known asymmetry); the one overflowing case,
    ``a = b = INT32_MIN``, saturates to ``INT32_MAX``.

    Args:
        a: int32 / int64 tensor (int32-range values).
        b: int32 / int64 tensor or Python int, broadcast against ``a``.

    Returns:
        a tensor of ``a``'s dtype.
    """
    _check_int(a, "a")
    b = _as_tensor(b, a)
    _check_int(b, "b")
    ab = a.to(torch.int64) * b.to(torch.int64)  # |a·b| ≤ 2^62: exact in int64
    nudge = torch.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C-style division by 2^31 truncates toward zero; an arithmetic shift floors, so add 2^31 − 1 first
    # for negative numerators.
    high = torch.where(s < 0, s + ((1 << 31) - 1), s) >> 31
    high = torch.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)
    return high.to(a.dtype)


def rounding_divide_by_pot(x: torch.Tensor, exponent) -> torch.Tensor:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away from zero.

    ``(x >> e) + (remainder > threshold)`` where ``remainder = x & (2^e − 1)`` and
    ``threshold = (2^e − 1) >> 1``, plus one for negative x. Exponents from 0 to 31.

    Args:
        x: int32 / int64 tensor (int32-range values).
        exponent: int or integer tensor in [0, 31], broadcast against ``x`` (one per channel, say).
    """
    _check_int(x, "x")
    e = _as_tensor(exponent, x).to(torch.int64)
    if e.numel() and (e.min() < 0 or e.max() > 31):
        raise ValueError("rounding_divide_by_pot needs exponents between 0 and 31.")
    x64 = x.to(torch.int64)
    mask = (torch.ones_like(e) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0).to(torch.int64)
    out = (x64 >> e) + (remainder > threshold).to(torch.int64)
    return out.to(x.dtype)


def multiply_by_quantized_multiplier(x: torch.Tensor, M0, shift) -> torch.Tensor:
    """TFLite's ``MultiplyByQuantizedMultiplier``: ``x · M0 · 2^(shift − 31)`` in integers.

    A left shift by ``max(shift, 0)``, ``saturating_rounding_doubling_high_mul`` by ``M0``, then
    ``rounding_divide_by_pot`` by ``max(−shift, 0)``. In C a left shift that leaves the int32 range is
    undefined behaviour; here it raises.

    Args:
        x: the int32 accumulators (int32 or int64 tensor).
        M0: int or tensor of Q31 multipliers (from ``quantize_multiplier``), broadcast against ``x``.
        shift: int or tensor of exponents (≤ 0 for M < 1), broadcast against ``x``.
    """
    _check_int(x, "x")
    shift_t = _as_tensor(shift, x).to(torch.int64)
    left = shift_t.clamp(min=0)
    right = (-shift_t).clamp(min=0)
    if left.numel() and bool((left > 0).any()):
        shifted = x.to(torch.int64) << left
        if shifted.numel() and (shifted.min() < INT32_MIN or shifted.max() > INT32_MAX):
            raise ValueError("x · 2^shift leaves the int32 range (undefined in the C reference).")
        x = shifted.to(x.dtype)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, M0), right)
