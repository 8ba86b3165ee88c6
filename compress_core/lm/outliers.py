"""Activation outliers: the few input channels of a transformer's Linear layers that are far larger than the rest.

Dettmers et al. 2022 (LLM.int8()) and Xiao et al. 2023 (SmoothQuant, figure 4) show that a language model's
activations carry a handful of channels tens of times larger than the median, the same channels on every token.
One per-tensor 8-bit scale must then stretch to cover them, and every ordinary channel is left with a few levels:
this is why W8A8 with per-tensor activations loses accuracy where 8-bit weights alone do not, and what SmoothQuant
migrates into the weights. This module measures it on the calibration rows every method already shares.

Usage::

    table = outlier_table(calib.rows)       # per layer: max, median, ratio, the largest channels
    mags = channel_magnitudes(calib.rows["block1.attn.q"])   # max |x_j| per input channel
"""
from __future__ import annotations

import torch

__all__ = ["OUTLIER_RATIO", "channel_magnitudes", "outlier_table"]

OUTLIER_RATIO = 6.0  # a channel counts as an outlier above this multiple of the layer's median channel magnitude


def channel_magnitudes(rows: torch.Tensor) -> torch.Tensor:
    """max |x_j| over the rows, per input channel j (what a per-tensor activation scale must cover)."""
    if rows.ndim != 2 or len(rows) == 0:
        raise ValueError("Channel magnitudes need a non-empty (rows, channels) matrix.")
    return rows.abs().amax(0)


def outlier_table(rows: dict[str, torch.Tensor], top: int = 5) -> list[dict]:
    """One row per layer, in forward order: ``layer``, ``channels``, ``max``, ``median`` (of the per-channel
    maxima), ``ratio`` = max / median, ``outliers`` (channels above ``OUTLIER_RATIO`` × median) and ``top`` (the
    largest channels' indices, largest first)."""
    table = []
    for name, r in rows.items():
        mags = channel_magnitudes(r)
        median = float(mags.median().clamp(min=1e-12))
        k = min(top, len(mags))
        table.append(dict(layer=name, channels=len(mags), max=float(mags.max()), median=median,
                          ratio=float(mags.max()) / median, outliers=int((mags > OUTLIER_RATIO * median).sum()),
                          top=mags.topk(k).indices.tolist()))
    return table
