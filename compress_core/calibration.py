"""Range setting (calibration): which real interval [min, max] the integer grid should cover.

Five methods, after Krishnamoorthi 2018 (§3) and Nagel et al. 2021 ("A White Paper on Neural Network
Quantization", §3.4), each returning a (min, max) pair that ``compute_qparams`` turns into S and Z:

- ``minmax``: the observed extremes (PyTorch's MinMaxObserver). No clipping; one outlier stretches the grid.
- ``moving_average``: per batch min/max smoothed as m ← m + c·(batch − m) (MovingAverageMinMaxObserver);
  on a single tensor (weights) it is min-max.
- ``percentile``: the p-th and (100 − p)-th percentiles (of |x| when symmetric): clips the rare tails.
- ``mse``: the shrunk range r·[min, max], r on a grid of 100 values, that minimises the mean squared
  error of fake quantization (per channel when per-channel).
- ``kl``: the threshold minimising KL(P‖Q) between the histogram of the values and its quantized
  version (Migacz 2017, "8-bit Inference with TensorRT"; the entropy calibrator).

Usage::

    lo, hi = observe_range(acts, "percentile", bits=8, percentile=99.9)
    qp = calibrate(w, "mse", bits=4, symmetric=True, axis=0)      # per output channel
"""
from __future__ import annotations

import numpy as np
import torch

from .quant import CALIBRATION_METHODS as METHODS, QParams, compute_qparams, fake_quantize

METHOD_LABELS = {"minmax": "min-max", "moving_average": "moving-average min-max", "percentile": "percentile",
                 "mse": "MSE-optimal", "kl": "entropy (KL)"}
MSE_GRID = 100


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
    lo, hi = _minmax(x2)
    best_err = torch.full_like(lo, float("inf"))
    best = torch.ones_like(lo)
    for r in torch.linspace(1.0 / MSE_GRID, 1.0, MSE_GRID).tolist():
        qp = compute_qparams(lo * r, hi * r, bits, symmetric=symmetric, signed=signed, narrow_range=narrow, axis=0)
        err = (fake_quantize(x2, qp) - x2).pow(2).mean(1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, torch.full_like(best, r), best)
    return lo * best, hi * best


def kl_threshold(values: np.ndarray, levels: int, bins: int = 2048, max_candidates: int = 400) -> float:
    """Entropy-calibration threshold of non-negative ``values`` for a grid of ``levels`` steps.

    For each candidate threshold (a histogram bin edge), P is the histogram up to it with the clipped
    tail added to the last bin, Q is P's bins merged into ``levels`` groups and spread back; the
    threshold with the smallest KL(P‖Q) wins (TensorRT's algorithm, Migacz 2017).
    """
    amax = float(values.max()) if values.size else 0.0
    if amax <= 0 or levels >= bins:
        return amax
    hist, edges = np.histogram(values, bins=bins, range=(0.0, amax))
    hist = hist.astype(np.float64)
    total_tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # total_tail[i] = hist[i:].sum()
    step = max(1, (bins - levels) // max_candidates)
    best_kl, best_i = np.inf, bins
    for i in range(levels, bins + 1, step):
        sliced = hist[:i]
        p = sliced.copy()
        p[-1] += total_tail[i]
        group = (np.arange(i) * levels) // i
        nonzero = sliced > 0
        gsum = np.bincount(group, weights=sliced, minlength=levels)
        gcnt = np.bincount(group, weights=nonzero.astype(np.float64), minlength=levels)
        q = np.where(nonzero, gsum[group] / np.maximum(gcnt[group], 1), 0.0)
        ps, qs = p.sum(), q.sum()
        if ps <= 0 or qs <= 0:
            continue
        p, q = p / ps, q / qs
        m = p > 0
        kl = float(np.sum(p[m] * np.log(p[m] / np.maximum(q[m], 1e-12))))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(edges[best_i])


def _kl(x2: torch.Tensor, bits: int, symmetric: bool, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = _minmax(x2)
    per_channel = x2.shape[0] > 1
    bins, cands = (256, 32) if per_channel else (2048, 400)
    out_lo, out_hi = lo.clone(), hi.clone()
    for c in range(x2.shape[0]):
        v = x2[c].cpu().numpy()
        if not symmetric and lo[c] >= 0:  # one-sided data (after ReLU): the whole grid on [0, max]
            out_hi[c] = kl_threshold(v, 1 << bits, bins, cands)
            continue
        half = 1 << (bits - 1) if bits > 1 else 1
        t = kl_threshold(np.abs(v), half, bins, cands)
        out_lo[c], out_hi[c] = max(float(lo[c]), -t), min(float(hi[c]), t)
    return out_lo, out_hi


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
