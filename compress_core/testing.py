"""Reference implementations that tests and benches compare the library against.

Nothing in the library imports this module: it holds slow, obviously-correct transcriptions of the
published definitions, kept apart so the fast code cannot quietly depend on them.

- gemmlowp ``fixedpoint.h`` (``SaturatingRoundingDoublingHighMul``, ``RoundingDivideByPOT``) and TFLite
  ``common.h`` (``MultiplyByQuantizedMultiplier``), transcribed with Python ints and C-style division;
- ``random_cases`` / ``count_mismatches``: edge, tie and random int32 inputs, and the comparison of the
  tensor primitives in ``integer.fixed_point`` with the transcriptions;
- ``reference_requantize``: an integer layer's rescale through the general primitive.

Usage::

    total, bad = count_mismatches(random_cases(100_000))   # bad == 0
"""
from __future__ import annotations

import torch

from .integer.fixed_point import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from .integer.ops import IntLayer


def _c_div(a: int, b: int) -> int:
    """C / C++ integer division: truncates toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def ref_saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp fixedpoint.h, transcribed with Python ints."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    return _c_div(ab + nudge, 1 << 31)


def ref_rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp fixedpoint.h, transcribed with Python ints (two's-complement & and >> on ints)."""
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def ref_multiply_by_quantized_multiplier(x: int, M0: int, shift: int) -> int:
    """TFLite common.h, transcribed with Python ints."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return ref_rounding_divide_by_pot(ref_saturating_rounding_doubling_high_mul(x * (1 << left), M0), right)


def random_cases(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` int32 test inputs for each primitive: edge values, exact ties and uniform random ones.

    Returns ``{"a", "b"}`` (high-mul operands), ``{"x", "exponent"}`` (divide by 2^e) and
    ``{"acc", "M0", "shift"}`` (the full rescale with M0 in [2^30, 2^31) and shifts −31..0, plus small
    left shifts on values that stay in range), all int64 tensors of length ``n``.
    """
    g = torch.Generator().manual_seed(seed)
    edges = torch.tensor([INT32_MIN, INT32_MIN + 1, -(2 ** 30), -65536, -3, -2, -1, 0, 1, 2, 3, 65536,
                          2 ** 30, INT32_MAX - 1, INT32_MAX], dtype=torch.int64)

    def pick(k: int) -> torch.Tensor:
        # a third edge values, a third small magnitudes (where ties are common), a third full range
        kind = torch.randint(0, 3, (k,), generator=g)
        full = torch.randint(INT32_MIN, INT32_MAX + 1, (k,), generator=g, dtype=torch.int64)
        small = torch.randint(-4096, 4097, (k,), generator=g, dtype=torch.int64)
        edge = edges[torch.randint(0, len(edges), (k,), generator=g)]
        return torch.where(kind == 0, edge, torch.where(kind == 1, small, full))

    a, b = pick(n), pick(n)
    # exact ties of the high multiply: a·b = (2j+1)·2^30, i.e. a = ±2^p, b = ±odd·2^(30−p)
    t = n // 8
    p = torch.randint(0, 31, (t,), generator=g)
    odd = 2 * torch.randint(0, 2 ** 10, (t,), generator=g) + 1
    sign = torch.where(torch.rand(t, generator=g) < 0.5, -1, 1)
    a[:t] = sign * (torch.ones(t, dtype=torch.int64) << p)
    b[:t] = torch.where(torch.rand(t, generator=g) < 0.5, -1, 1) * ((odd << (30 - p)).clamp(max=INT32_MAX))

    x = pick(n)
    exponent = torch.randint(0, 32, (n,), generator=g)
    # exact ties of the divide: x = (2j+1)·2^(e−1)
    e = exponent[:t].clamp(min=1)
    exponent[:t] = e
    odd = (2 * torch.randint(0, 2 ** 8, (t,), generator=g) + 1) & ((torch.ones_like(e) << (32 - e)) - 1)
    x[:t] = torch.where(torch.rand(t, generator=g) < 0.5, -1, 1) * (odd << (e - 1))

    acc = pick(n)
    M0 = torch.randint(2 ** 30, 2 ** 31, (n,), generator=g, dtype=torch.int64)
    M0[: n // 16] = torch.tensor([2 ** 30, 2 ** 31 - 1])[torch.randint(0, 2, (n // 16,), generator=g)]
    shift = -torch.randint(0, 32, (n,), generator=g)
    lft = torch.rand(n, generator=g) < 0.05  # a few left shifts, on accumulators that stay in range
    shift = torch.where(lft, torch.randint(1, 8, (n,), generator=g), shift)
    acc = torch.where(lft, acc >> 8, acc)
    return {"a": a, "b": b, "x": x, "exponent": exponent, "acc": acc, "M0": M0, "shift": shift}


def count_mismatches(cases: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Run the three tensor primitives on ``cases`` (int32) and the Python references; (cases, mismatches)."""
    c32 = {k: v.to(torch.int32) for k, v in cases.items()}
    hm = saturating_rounding_doubling_high_mul(c32["a"], c32["b"]).tolist()
    dv = rounding_divide_by_pot(c32["x"], c32["exponent"]).tolist()
    mq = multiply_by_quantized_multiplier(c32["acc"], c32["M0"], c32["shift"]).tolist()
    a, b, x, e = (cases[k].tolist() for k in ("a", "b", "x", "exponent"))
    acc, M0, sh = (cases[k].tolist() for k in ("acc", "M0", "shift"))
    bad = sum(hm[i] != ref_saturating_rounding_doubling_high_mul(a[i], b[i]) for i in range(len(a)))
    bad += sum(dv[i] != ref_rounding_divide_by_pot(x[i], e[i]) for i in range(len(x)))
    bad += sum(mq[i] != ref_multiply_by_quantized_multiplier(acc[i], M0[i], sh[i]) for i in range(len(acc)))
    return len(a) + len(x) + len(acc), bad


def reference_requantize(layer: IntLayer, acc: torch.Tensor) -> torch.Tensor:
    """The layer's rescale through the general primitive (tests compare ``IntLayer.requantize`` with it)."""
    scaled = acc.to(torch.int64) << layer.headroom
    r = multiply_by_quantized_multiplier(scaled, layer.M0, layer.shift - layer.headroom)
    return torch.clamp(r + layer.y.zero, layer.lo, layer.y.hi)
