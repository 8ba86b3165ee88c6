"""Reference implementations that tests and benches compare the library against.

Nothing in the library imports this module: it holds slow, obviously-correct transcriptions of the
published definitions, kept apart so the fast code cannot quietly depend on them.

- gemmlowp ``fixedpoint.h`` (``SaturatingRoundingDoublingHighMul``, ``RoundingDivideByPOT``) and TFLite
  ``common.h`` (``MultiplyByQuantizedMultiplier``), transcribed with Python ints and C-style division;
- ``random_cases`` / ``count_mismatches``: edge, tie and random int32 inputs, and the comparison of the
  tensor primitives in ``integer.fixed_point`` with the transcriptions;
- ``reference_requantize``: an integer layer's rescale through the general primitive;
- ``ref_quantize_multiplier`` and ``tflite_reference_codes``: an independent TFLite-style integer model
  (float64-exact int32 accumulation per layer, then ``MultiplyByQuantizedMultiplier`` on Python ints), the
  oracle of ``integer.to_integer``'s default rescale;
- ``ref_entropy_histogram`` / ``ref_entropy_divergences`` / ``ref_entropy_threshold``: TensorRT's entropy
  calibration (Migacz 2017) in its loop form, the oracle of ``quant.calibration``'s vectorised search.

Usage::

    total, bad = count_mismatches(random_cases(100_000))   # bad == 0
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .integer.fixed_point import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from .integer.ops import IntLayer
from .quant.primitives import quantize


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


# --- An independent TFLite-style integer model -------------------------------------------------------------

def _std_round(x: float) -> int:
    """C++ ``std::round``: halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def ref_quantize_multiplier(M: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier`` (quantization_util.cc), transcribed: M = q·2^shift with q in [0.5, 1),
    q_fixed = std::round(q·2^31); q_fixed == 2^31 -> halve, shift + 1; shift < −31 -> (0, 0)."""
    if M == 0.0:
        return 0, 0
    q, shift = math.frexp(M)
    q_fixed = _std_round(q * float(1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def _ref_layer(m, x_codes: torch.Tensor) -> torch.Tensor:
    """One quantized Linear/Conv layer (a ``QuantLayer``), TFLite style, on quantizer codes (int64, NCHW)."""
    w_qp, x_qp, y_qp = m.weight_qparams, m.input_qparams, m.output_qparams
    out = m.weight.shape[0]
    S_x, Z_x = float(x_qp.scale), int(x_qp.zero_point)
    S_y, Z_y = float(y_qp.scale), int(y_qp.zero_point)
    q_w = quantize(m.weight.detach().cpu(), w_qp).to(torch.int64)
    z_w = w_qp.zero_point.to(torch.int64).reshape(-1)
    z_w = z_w.expand(out) if z_w.numel() == 1 else z_w
    s_w = [float(v) for v in w_qp.scale.to(torch.float64).reshape(-1)]
    s_w = s_w * out if len(s_w) == 1 else s_w
    wc = q_w - z_w.reshape(-1, *[1] * (q_w.dim() - 1))
    bias = m.bias.detach().cpu().double().tolist() if m.bias is not None else [0.0] * out
    per_channel = w_qp.axis is not None
    for c in range(out):  # compress_core's documented rule for all-zero (pruned) channels: S_w = S_y / S_x
        if not bool(wc[c].any()) and (per_channel or not bool(wc.any())):
            s_w[c] = S_y / S_x
    mult = [ref_quantize_multiplier(s_w[c] * S_x / S_y) for c in range(out)]
    q_b = torch.tensor([_std_round(bias[c] / (s_w[c] * S_x)) for c in range(out)], dtype=torch.float64)
    xr = (x_codes - Z_x).double()  # zero padding of reals = padding (q − Z) with 0
    if m.kind == "linear":
        acc = F.linear(xr, wc.double(), q_b)  # integers below 2^53: float64 sums are exact
    else:
        conv = F.conv2d if m.kind == "conv2d" else F.conv1d
        acc = conv(xr, wc.double(), q_b, m.stride, m.padding)
    acc = acc.to(torch.int64)
    assert int(acc.abs().max()) <= INT32_MAX, "int32 accumulator overflow"
    lo, hi = y_qp.qmin, y_qp.qmax
    if m.relu:
        lo = max(lo, Z_y)  # a fused ReLU clamps at the code of real 0
    flat = acc.movedim(1, -1).reshape(-1, out).tolist()
    res = [[min(hi, max(lo, ref_multiply_by_quantized_multiplier(a, *mult[c]) + Z_y)) for c, a in enumerate(row)]
           for row in flat]
    shape = acc.movedim(1, -1).shape
    return torch.tensor(res, dtype=torch.int64).reshape(shape).movedim(-1, 1)


@torch.no_grad()
def tflite_reference_codes(qmodel: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Output codes (the quantizer's, e.g. 0..255 for uint8) of a fake-quantized ``nn.Sequential`` run as
    TFLite's reference kernels would: input codes q = quantize(x), per layer an int32 accumulator
    Σ (q_x − Z_x)(q_w − Z_w) + q_b with q_b = std::round(b / (S_w·S_x)), then
    ``MultiplyByQuantizedMultiplier(acc, M0, shift)`` with (M0, shift) = QuantizeMultiplier(S_w·S_x/S_y) per
    channel, + Z_y, clamped (at Z_y when a ReLU is fused); max-pool and flatten on the codes.

    Written from the definitions, not from ``compress_core.integer``: no headroom, no fused route, no int8
    storage offsets, and a Python-int rescale of every element. Slow: use a few hundred examples.
    """
    children = list(qmodel.named_children())
    q, real = x.cpu(), True  # layers before the first quantized one see the float input
    for name, m in children:
        if hasattr(m, "weight_qparams"):
            if real:
                q, real = quantize(q, m.input_qparams).to(torch.int64), False
            q = _ref_layer(m, q)
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            pool = F.max_pool2d if isinstance(m, nn.MaxPool2d) else F.max_pool1d
            q = pool(q.double(), m.kernel_size, m.stride).to(q.dtype)
        elif isinstance(m, nn.Flatten):
            q = q.reshape(q.shape[0], -1)
        elif isinstance(m, (nn.ReLU, nn.Dropout, nn.Identity)):
            continue  # the ReLU is fused into the layer before it
        else:
            raise ValueError(f"Layer {name}: {type(m).__name__} has no reference kernel here.")
    return q


# --- TensorRT's entropy calibration, loop form -------------------------------------------------------------

def ref_entropy_histogram(values, bins: int = 2048, count_zeros: bool = False) -> tuple[list[float], float]:
    """Histogram of non-negative ``values`` over [0, max] in ``bins`` equal bins (a value v goes to bin
    min(floor(v / max · bins), bins − 1)); exact zeros are left out unless ``count_zeros``. Returns
    (counts, bin width)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    amax = float(v.max()) if v.size else 0.0
    if amax <= 0:
        return [0.0] * bins, 0.0
    if not count_zeros:
        v = v[v != 0]
    idx = np.minimum((v / amax * bins).astype(np.int64), bins - 1)
    return np.bincount(idx, minlength=bins).astype(np.float64).tolist(), amax / bins


def _kl_divergence(p: list[float], q: list[float]) -> float:
    """KL(p‖q) of two unnormalised distributions: Σ p log(p/q) after normalising each; inf where q = 0 < p."""
    sp, sq = sum(p), sum(q)
    if sp == 0 or sq == 0:
        return math.inf
    total = 0.0
    for pi, qi in zip(p, q):
        if pi == 0:
            continue
        if qi == 0:
            return math.inf
        total += (pi / sp) * math.log((pi / sp) / (qi / sq))
    return total


def ref_entropy_divergences(hist: list[float], levels: int = 128) -> dict[int, float]:
    """{i: KL(P_i‖Q_i)} for every candidate i = levels .. len(hist) (the number of bins kept), as in the
    slides of Migacz 2017, "8-bit Inference with TensorRT":

        for i in range(levels, bins + 1):
            P = hist[0 : i];  P[i − 1] += sum(hist[i:])          # clipped outliers go to the last bin
            Q = hist[0 : i] merged into ``levels`` groups (bin j to group floor(j · levels / i)), each group's
                sum spread evenly over its non-empty bins (empty bins stay 0)
            divergence[i] = KL(normalise(P) ‖ normalise(Q))
    """
    n = len(hist)
    out = {}
    for i in range(levels, n + 1):
        p = list(hist[:i])
        p[i - 1] += sum(hist[i:])
        group_sum = [0.0] * levels
        group_nonzero = [0] * levels
        for j in range(i):
            g = j * levels // i
            group_sum[g] += hist[j]
            group_nonzero[g] += hist[j] != 0
        q = [group_sum[j * levels // i] / group_nonzero[j * levels // i] if hist[j] != 0 else 0.0 for j in range(i)]
        out[i] = _kl_divergence(p, q)
    return out


def ref_entropy_threshold(values, levels: int = 128, bins: int = 2048, count_zeros: bool = False,
                          last_minimum: bool = False) -> float:
    """TensorRT's entropy-calibration threshold of non-negative ``values``: the upper edge i · width of the
    candidate with the smallest divergence (the first such i, or the last with ``last_minimum``).

    (The slides write the threshold as (m + 0.5) · width; public implementations -- MXNet's, NVIDIA's
    pytorch-quantization -- take the bin edge, as here.) Slow: about a second per call."""
    hist, width = ref_entropy_histogram(values, bins, count_zeros)
    if width == 0:
        return 0.0
    if levels >= bins:
        return bins * width
    div = ref_entropy_divergences(hist, levels)
    best = min(div.values())
    picks = [i for i, d in div.items() if d == best]
    return (picks[-1] if last_minimum else picks[0]) * width
