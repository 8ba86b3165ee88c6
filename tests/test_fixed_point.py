"""The gemmlowp / TFLite fixed-point primitives: bit-exact against the C definitions (transcribed with Python
ints) and against the plain mathematical definition (exact fractions, round half away from zero)."""
import math
from fractions import Fraction

import pytest
import torch

from compress_core.integer.fixed_point import (
    INT32_MAX,
    INT32_MIN,
    multiplier_value,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from compress_core.testing import (
    count_mismatches,
    random_cases,
    ref_multiply_by_quantized_multiplier,
    ref_rounding_divide_by_pot,
    ref_saturating_rounding_doubling_high_mul,
)


def round_half_away(q: Fraction) -> int:
    """Nearest integer, halves away from zero (RoundingDivideByPOT's and std::round's rule)."""
    n = math.floor(abs(q) + Fraction(1, 2))
    return n if q >= 0 else -n


def t32(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32)


def test_high_mul_edge_cases_and_saturation():
    a = t32([INT32_MIN, INT32_MIN, INT32_MAX, INT32_MAX, 1 << 30, -(1 << 30), 0, 1, -1, 3])
    b = t32([INT32_MIN, INT32_MAX, INT32_MAX, INT32_MIN, 1 << 30, 1 << 30, INT32_MIN, 1 << 30, 1 << 30, 1 << 30])
    got = saturating_rounding_doubling_high_mul(a, b).tolist()
    # INT32_MIN·INT32_MIN is the only overflow: saturates; 2^30·2^30·2/2^32 = 2^29;
    # ties round up (toward +inf): 1·2^30·2/2^32 = 0.5 → 1; −0.5 → 0 (not −1); 1.5 → 2
    assert got == [INT32_MAX, -INT32_MAX, INT32_MAX - 1, -INT32_MAX, 1 << 29, -(1 << 29), 0, 1, 0, 2]
    assert got == [ref_saturating_rounding_doubling_high_mul(x, y) for x, y in zip(a.tolist(), b.tolist())]


def test_rounding_divide_ties_and_negatives():
    x = t32([5, -5, 6, -6, 7, -7, 1, -1, 0, INT32_MAX, INT32_MIN, 3, -3])
    e = t32([1, 1, 2, 2, 1, 1, 1, 1, 5, 31, 31, 0, 0])
    got = rounding_divide_by_pot(x, e).tolist()
    # 2.5 → 3, −2.5 → −3, 1.5 → 2, −1.5 → −2, 3.5 → 4, −3.5 → −4, 0.5 → 1, −0.5 → −1 (ties away from zero)
    assert got == [3, -3, 2, -2, 4, -4, 1, -1, 0, 1, -1, 3, -3]
    assert got == [ref_rounding_divide_by_pot(v, k) for v, k in zip(x.tolist(), e.tolist())]


def test_primitives_match_references_and_exact_maths_on_random_cases():
    cases = random_cases(20_000, seed=1)
    n, bad = count_mismatches(cases)
    assert n == 60_000 and bad == 0
    # the C transcriptions equal the exact mathematical definitions (independent of gemmlowp's bit tricks)
    for a, b in list(zip(cases["a"].tolist(), cases["b"].tolist()))[:3000]:
        want = INT32_MAX if a == b == INT32_MIN else math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2))
        assert ref_saturating_rounding_doubling_high_mul(a, b) == want
    for x, e in list(zip(cases["x"].tolist(), cases["exponent"].tolist()))[:3000]:
        assert ref_rounding_divide_by_pot(x, e) == round_half_away(Fraction(x, 1 << e))


def test_ties_are_present_in_the_random_cases():
    c = random_cases(4000, seed=2)
    prod = c["a"] * c["b"]
    assert ((prod % (1 << 31)) == (1 << 30)).sum() > 100  # high-mul ties
    e = c["exponent"]
    assert ((c["x"] & ((1 << e) - 1)) == ((1 << e) >> 1)).logical_and(e > 0).sum() > 100  # divide ties


def test_int64_input_keeps_dtype_and_per_channel_broadcast():
    acc = torch.tensor([[1000, -1000, 77], [123456, -7, 0]], dtype=torch.int64)
    M0 = torch.tensor([1 << 30, 1500000000, 2 ** 31 - 1])
    shift = torch.tensor([-1, -3, 0])
    out = multiply_by_quantized_multiplier(acc, M0, shift)
    assert out.dtype == torch.int64
    want = [[ref_multiply_by_quantized_multiplier(v, int(M0[j]), int(shift[j])) for j, v in enumerate(row)]
            for row in acc.tolist()]
    assert out.tolist() == want
    assert out[0, 0].item() == 250  # 1000 · 0.5 · 2^-1
    out32 = multiply_by_quantized_multiplier(acc.to(torch.int32), M0.to(torch.int32), shift.to(torch.int32))
    assert out32.dtype == torch.int32 and out32.tolist() == want


def test_quantize_multiplier_known_values_and_bounds():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.75) == (3 << 29, 0)
    assert quantize_multiplier(0.25) == (1 << 30, -1)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)  # rounds up to 2^31: renormalised
    assert quantize_multiplier(2.0 ** -40) == (0, 0)  # below 2^-32: flushed to zero as in TFLite
    g = torch.Generator().manual_seed(0)
    for M in (10 ** (-6 * torch.rand(500, generator=g, dtype=torch.float64))).tolist():
        M0, shift = quantize_multiplier(M)
        assert (1 << 30) <= M0 < (1 << 31)
        # the Q31 rounding error is at most half a unit of the last place
        assert abs(multiplier_value(M0, shift) - M) <= 2.0 ** (shift - 32) * (1 + 1e-12)
        assert M0 == round_half_away(Fraction(M) * (1 << 31) / Fraction(2) ** shift)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_quantize_multiplier_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="positive finite"):
        quantize_multiplier(bad)


def test_bad_inputs_raise():
    with pytest.raises(TypeError):
        rounding_divide_by_pot(torch.tensor([1.5]), 1)
    with pytest.raises(ValueError, match="between 0 and 31"):
        rounding_divide_by_pot(t32([4]), 32)
    with pytest.raises(ValueError, match="int32 range"):
        saturating_rounding_doubling_high_mul(torch.tensor([2 ** 40]), 3)
    with pytest.raises(ValueError, match="leaves the int32 range"):
        multiply_by_quantized_multiplier(t32([1 << 30]), 1 << 30, 2)
