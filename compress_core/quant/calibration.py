"""Range setting (calibration): which real interval [min, max] the integer grid should cover.

Five methods, after Krishnamoorthi 2018 (§3) and Nagel et al. 2021 ("A White Paper on Neural Network
Quantization", §3.4), each returning a (min, max) pair that ``compute_qparams`` turns into S and Z:

- ``minmax``: the observed extremes (PyTorch's MinMaxObserver). No clipping; one outlier stretches the grid.
- ``moving_average``: per batch min/max smoothed as m ← m + c·(batch − m) (MovingAverageMinMaxObserver);
  on a single tensor (weights) it is min-max.
- ``percentile``: the p-th and (100 − p)-th percentiles (of |x| when symmetric): clips the rare tails.
- ``mse``: the shrunk range r·[min, max], r ∈ (0, 1] searched coarse-to-fine, that minimises the mean
  squared error of fake quantization (per channel when per-channel).
- ``kl``: the threshold minimising KL(P‖Q) between the histogram of the values and its quantized
  version (Migacz 2017, "8-bit Inference with TensorRT"; the entropy calibrator). Per channel, one
  clipping ratio is found on all channels pooled (each scaled by its own max |value|).

Usage::

    lo, hi = observe_range(acts, "percentile", bits=8, percentile=99.9)
    qp = calibrate(w, "mse", bits=4, symmetric=True, axis=0)      # per output channel
"""
from __future__ import annotations

import numpy as np
import torch

from .primitives import QParams, compute_qparams, fake_quantize

METHOD_LABELS = {"minmax": "min-max", "moving_average": "moving-average min-max", "percentile": "percentile",
                 "mse": "MSE-optimal", "kl": "entropy (KL)"}
METHODS = tuple(METHOD_LABELS)  # the order the page lists them in
MSE_GRID = 24  # coarse steps; a fine pass of as many follows


def _as_2d(x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """(C, rest) view with channels first; (1, N) per tensor."""
    x = x.detach().float()
    if axis is None:
        return x.reshape(1, -1)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def _squeeze(lo: torch.Tensor, hi: torch.Tensor, axis: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (lo[0], hi[0]) if axis is None else (lo, hi)


def _minmax(x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x2.amin(1), x2.amax(1)


def _moving_average(batches: list[torch.Tensor], c: float) -> tuple[torch.Tensor, torch.Tensor]:
    lo = hi = None
    for b in batches:
        blo, bhi = b.detach().float().min(), b.detach().float().max()
        if lo is None:
            lo, hi = blo, bhi
        else:
            lo, hi = lo + c * (blo - lo), hi + c * (bhi - hi)
    return lo.reshape(1), hi.reshape(1)


def _percentile(x2: torch.Tensor, p: float, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    def q(t: torch.Tensor, frac: float) -> torch.Tensor:
        if t.shape[1] > 4_000_000:  # torch.quantile has a size limit: subsample evenly
            t = t[:, :: t.shape[1] // 4_000_000 + 1]
        return torch.quantile(t, frac, dim=1)

    if symmetric:
        a = q(x2.abs(), p / 100)
        return -a, a
    return q(x2, 1 - p / 100), q(x2, p / 100)


def _mse(x2: torch.Tensor, bits: int, symmetric: bool, signed: bool, narrow: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink factor r ∈ (0, 1] per row minimising the fake-quantization MSE: a coarse grid of
    ``MSE_GRID`` values, then the same number of finer steps around the best (resolution 1/MSE_GRID²)."""
    lo, hi = _minmax(x2)
    best_err = torch.full_like(lo, float("inf"))
    best = torch.ones_like(lo)

    def try_ratios(ratios: torch.Tensor) -> None:  # ratios: (K, C)
        nonlocal best_err, best
        for r in ratios:
            qp = compute_qparams(lo * r, hi * r, bits, symmetric=symmetric, signed=signed, narrow_range=narrow,
                                 axis=0)
            err = (fake_quantize(x2, qp) - x2).pow(2).mean(1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, r, best)

    n = MSE_GRID
    try_ratios(torch.linspace(1.0 / n, 1.0, n)[:, None].expand(n, len(lo)))
    fine = best[None, :] + torch.linspace(-1.0 / n, 1.0 / n, n + 1)[:, None]
    try_ratios(fine.clamp(1.0 / (n * n), 1.0))
    return lo * best, hi * best


def _kl_thresholds(v: torch.Tensor, levels: int, bins: int, max_candidates: int) -> torch.Tensor:
    """Row-wise entropy-calibration thresholds of a non-negative (C, N) tensor.

    Vectorised over rows and candidate thresholds: a (C, K, bins) array holds, for each candidate i,
    P (the first i bins, the clipped tail added to bin i−1) and Q (P's bins merged into ``levels``
    groups and spread back over the non-empty bins)."""
    v = v.double()
    amax = v.amax(1)
    if levels >= bins:
        return amax
    safe = torch.where(amax > 0, amax, torch.ones_like(amax))
    idx = (v / safe[:, None] * bins).long().clamp(0, bins - 1)
    # exact zeros (ReLU's dead half, pruned weights) are left out: Z represents them exactly whatever the
    # range, and their spike in the first bin would otherwise dominate the divergence
    hist = torch.zeros(v.shape[0], bins, dtype=torch.float64).scatter_add_(1, idx, (v != 0).double())
    tail = torch.cat([hist.flip(1).cumsum(1).flip(1), torch.zeros(v.shape[0], 1, dtype=torch.float64)], 1)
    step = max(1, (bins - levels) // max_candidates)
    cand = torch.arange(levels, bins + 1, step)  # (K,) number of bins kept
    j = torch.arange(bins)
    keep = (j[None, :] < cand[:, None]).double()  # (K, B)
    group = torch.minimum((j[None, :] * levels) // cand[:, None], torch.tensor(levels - 1))  # (K, B)
    sliced = hist[:, None, :] * keep[None]  # (C, K, B)
    p = sliced.clone()
    last = (cand - 1)[None, :, None].expand(v.shape[0], -1, 1)
    p.scatter_add_(2, last, tail[:, cand][:, :, None])
    nonzero = (sliced > 0).double()
    g = group[None].expand(v.shape[0], -1, -1)
    gsum = torch.zeros(v.shape[0], len(cand), levels, dtype=torch.float64).scatter_add_(2, g, sliced)
    gcnt = torch.zeros(v.shape[0], len(cand), levels, dtype=torch.float64).scatter_add_(2, g, nonzero)
    q = nonzero * gsum.gather(2, g) / gcnt.gather(2, g).clamp_min(1)
    ps, qs = p.sum(2, keepdim=True), q.sum(2, keepdim=True)
    p, q = p / ps.clamp_min(1e-300), q / qs.clamp_min(1e-300)
    kl = torch.where(p > 0, p * torch.log(p / q.clamp_min(1e-12)), torch.zeros_like(p)).sum(2)  # (C, K)
    kl = torch.where((ps[..., 0] > 0) & (qs[..., 0] > 0), kl, torch.full_like(kl, float("inf")))
    best_i = cand[kl.argmin(1)]  # first minimum: the smallest threshold among ties
    return torch.where(amax > 0, best_i.double() / bins * amax, amax)


def kl_threshold(values: np.ndarray, levels: int, bins: int = 2048, max_candidates: int = 400) -> float:
    """Entropy-calibration threshold of non-negative ``values`` for a grid of ``levels`` steps.

    For each candidate threshold (a histogram bin edge), P is the histogram up to it with the clipped
    tail added to the last bin, Q is P's bins merged into ``levels`` groups and spread back over P's
    non-empty bins; the threshold with the smallest KL(P‖Q) wins (TensorRT's algorithm, Migacz 2017).
    Exact zeros are not counted (they stay exact on any grid).
    """
    v = torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(1, -1)
    if v.numel() == 0:
        return 0.0
    return float(_kl_thresholds(v, levels, bins, max_candidates)[0])


def _kl(x2: torch.Tensor, bits: int, symmetric: bool, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = _minmax(x2)
    if x2.shape[0] > 1:
        # Per channel: a channel holds too few values (9 to a few hundred here) for a 2,048-bin histogram.
        # Pool the channels, each divided by its own max |value|, find one clipping ratio, apply it to all.
        amax = torch.maximum(-lo, hi).clamp_min(torch.finfo(torch.float32).eps)
        pooled = (x2 / amax[:, None]).reshape(1, -1)
        plo, phi = _kl(pooled, bits, symmetric, signed)
        ratio = float(torch.maximum(-plo, phi).clamp(max=1.0)[0])
        return torch.maximum(lo, -ratio * amax), torch.minimum(hi, ratio * amax)
    bins, cands = 2048, 128
    if not symmetric and bool((lo >= 0).all()):  # one-sided data (after ReLU): the whole grid on [0, max]
        t = _kl_thresholds(x2, 1 << bits, bins, cands).float()
        return torch.minimum(lo, t), t
    t = _kl_thresholds(x2.abs(), 1 << (bits - 1) if bits > 1 else 1, bins, cands).float()
    return torch.maximum(lo, -t), torch.minimum(hi, t)


def observe_range(x: torch.Tensor | list[torch.Tensor], method: str = "minmax", *, bits: int = 8,
                  symmetric: bool = False, signed: bool = True, narrow_range: bool = False, axis: int | None = None,
                  percentile: float = 99.99, averaging_constant: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """The (min, max) range chosen by ``method`` for ``x`` (a tensor, or a list of calibration batches).

    Args:
        x: the values; a list of batches keeps batch boundaries for ``moving_average``.
        method: one of ``METHODS``. bits/symmetric/signed/narrow_range: the grid the range is for
            (MSE and KL depend on it). axis: per-channel ranges along this axis (None: one range).
        percentile: for ``percentile``, in (50, 100]. averaging_constant: c for ``moving_average``.

    Returns 0-d tensors per tensor, (C,) tensors per channel. Raises ValueError on an unknown method,
    empty input or NaN/inf values.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown calibration method {method!r}. Valid methods: {', '.join(METHODS)}.")
    batches = list(x) if isinstance(x, (list, tuple)) else [x]
    if not batches or sum(b.numel() for b in batches) == 0:
        raise ValueError("Cannot calibrate on an empty tensor.")
    if any(not torch.isfinite(b).all() for b in batches):
        raise ValueError("The values contain NaN or infinity: clean them before calibrating.")
    if axis is not None and len(batches) > 1:
        raise ValueError("Per-channel calibration takes a single tensor, not a list of batches.")
    if method == "moving_average" and axis is None:
        return _squeeze(*_moving_average(batches, averaging_constant), axis)
    x2 = _as_2d(torch.cat([b.reshape(-1) for b in batches]) if len(batches) > 1 else batches[0], axis)
    if method in ("minmax", "moving_average"):
        lo, hi = _minmax(x2)
    elif method == "percentile":
        lo, hi = _percentile(x2, percentile, symmetric)
    elif method == "mse":
        lo, hi = _mse(x2, bits, symmetric, signed, narrow_range)
    else:
        lo, hi = _kl(x2, bits, symmetric, signed)
    return _squeeze(lo, hi, axis)


def calibrate(x: torch.Tensor | list[torch.Tensor], method: str = "minmax", *, bits: int = 8, symmetric: bool = False,
              signed: bool = True, narrow_range: bool = False, axis: int | None = None, percentile: float = 99.99,
              averaging_constant: float = 0.01) -> QParams:
    """``compute_qparams`` of the range ``observe_range`` picks: one call from values to (S, Z).

    Example::

        qp = calibrate(layer.weight, "minmax", bits=8, symmetric=True, axis=0)
    """
    lo, hi = observe_range(x, method, bits=bits, symmetric=symmetric, signed=signed, narrow_range=narrow_range,
                           axis=axis, percentile=percentile, averaging_constant=averaging_constant)
    return compute_qparams(lo, hi, bits, symmetric=symmetric, signed=signed, narrow_range=narrow_range, axis=axis)
