"""One-shot pruning from calibration inputs, one layer at a time: what Wanda and SparseGPT share.

Both methods prune a trained network without retraining, layer by layer, each layer from the rows X it sees on a
few calibration examples (``compress_core.layer_inputs``; a conv is its im2col matrix product, so convs work the
same way). This module holds the parts they have in common:

- the *target*: an unstructured sparsity (a fraction of the weights) or an N:M pattern (keep N in every M
  consecutive inputs, 2:4 for sparse tensor cores), checked once by ``check_target``;
- ``select_mask``: keep the highest scores of a (out, in) score matrix per output row (Wanda's default, Sun et al.
  2024 §3), per layer, or per N:M group, with the count rule and tie-break of ``prune`` (round(s·n), lower position
  first), so that with plain |w| scores it gives exactly the magnitude masks the rest of the library makes;
- importance criteria as small interchangeable objects in Torch-Pruning's style: ``MagnitudeScore`` (|W_ij|, the
  baseline) here, ``WandaScore`` (|W_ij|·‖X_j‖₂) in ``wanda``; each maps (weight matrix, input rows) to scores;
- ``layerwise``: the model-level loop (capture or look up each layer's rows, prune it, write the result into a copy
  and into a ``Mask``), optionally *sequential*: each layer's rows recaptured from the copy whose earlier layers are
  already pruned, as both papers do for transformer blocks.

Usage::

    inputs = capture_inputs(model, x_calib)                          # once, shared by every method
    mask = calibrated_mask(model, inputs, MagnitudeScore(), 0.5)      # per-row magnitude: the baseline
    keep = select_mask(scores, nm=(2, 4))                             # any (out, in) score matrix
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Mapping, Protocol

import torch
from torch import nn

from ..layer_inputs import capture_inputs, layers_of, set_weight_matrix, weight_matrix
from .masks import Mask, _nprune, _remove_lowest, nm_keep

__all__ = ["COMPARISONS", "Criterion", "MagnitudeScore", "calibrated_mask", "check_target", "layerwise",
           "select_mask"]

COMPARISONS = ("row", "layer")


class Criterion(Protocol):
    """An importance criterion: scores of shape (out, in) for a layer's (out, in) weight matrix, higher = keep."""

    name: str

    def __call__(self, w: torch.Tensor, rows: torch.Tensor) -> torch.Tensor: ...


class MagnitudeScore:
    """|W_ij|: magnitude pruning, the data-free baseline (``rows`` is ignored)."""

    name = "magnitude"

    def __call__(self, w: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        return w.detach().float().abs()


def check_target(sparsity: float | None, nm: tuple[int, int] | None) -> tuple[float | None, tuple[int, int] | None]:
    """Exactly one of an unstructured ``sparsity`` in [0, 1] or an ``nm`` = (N, M) pattern with 0 < N ≤ M."""
    if (sparsity is None) == (nm is None):
        raise ValueError("Give either a sparsity (a fraction of the weights) or an N:M pattern such as nm=(2, 4).")
    if nm is not None:
        n, m = nm
        if not (isinstance(n, int) and isinstance(m, int) and 0 < n <= m):
            raise ValueError(f"N:M needs whole numbers with 0 < N ≤ M (got {n}:{m}).")
        return None, (n, m)
    if not isinstance(sparsity, (int, float)) or math.isnan(sparsity) or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"Sparsity must be a fraction between 0 and 1 (got {sparsity!r}).")
    return float(sparsity), None


def select_mask(scores: torch.Tensor, sparsity: float | None = None, *, nm: tuple[int, int] | None = None,
                per: str = "row") -> torch.Tensor:
    """0/1 float32 matrix of ``scores``' shape (out, in) keeping the highest scores.

    Args:
        scores: importance of each weight, higher = keep.
        sparsity: fraction removed, round(sparsity · count) of each output row (``per="row"``) or of the whole
            layer (``per="layer"``); ties go to the lower position first, as in ``prune``.
        nm: (N, M): keep the N highest in each group of M consecutive inputs of every row (``per`` is ignored).
        per: "row" (every output neuron keeps the same number of inputs: Wanda's default) or "layer".
    """
    sparsity, nm = check_target(sparsity, nm)
    if scores.ndim != 2:
        raise ValueError(f"Scores must be an (out, in) matrix (got shape {tuple(scores.shape)}).")
    if nm is not None:
        return nm_keep(scores, *nm)
    if per not in COMPARISONS:
        raise ValueError(f"Unknown comparison group {per!r}: use one of {', '.join(COMPARISONS)}.")
    out, cols = scores.shape
    if per == "layer":
        remove = _remove_lowest(scores.reshape(-1), torch.ones(scores.numel(), dtype=torch.bool),
                                _nprune(sparsity, scores.numel()))
        return (~remove).float().reshape(out, cols)
    k = _nprune(sparsity, cols)
    keep = torch.ones(out, cols)
    if k:
        # a stable sort breaks ties by position, like prune's selection
        lowest = torch.sort(scores, dim=1, stable=True).indices[:, :k]
        keep.scatter_(1, lowest, 0.0)
    return keep


LayerFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def layerwise(model: nn.Module, inputs: Mapping[str, torch.Tensor] | torch.Tensor, prune_layer: LayerFn, *,
              layers=None, sequential: bool = False, copy_model: bool = True) -> tuple[nn.Module, Mask]:
    """Prune ``model``'s Linear/Conv layers one at a time in forward order; ``model`` itself is never changed.

    Args:
        model: the trained network.
        inputs: the captured rows {layer name: (rows, in·k…)} (``capture_inputs``), or a batch of model inputs to
            capture them from.
        prune_layer: (weight matrix (out, in) float32, rows) -> (new weight matrix, 0/1 keep matrix).
        layers: names of the layers to prune (default: every Linear/Conv layer); the mask keeps the others whole.
        sequential: recapture each layer's rows from the copy whose earlier layers are already pruned (needs model
            inputs, not captured rows), so that a layer is fitted to the inputs it will see after pruning.
        copy_model: False returns ``model`` itself with the mask (for a mask-only method that is not sequential:
            nothing is written, so no copy is needed).

    Returns:
        (the pruned copy, the ``Mask`` covering every Linear/Conv weight of the model).
    """
    captured = isinstance(inputs, Mapping)
    if sequential and captured:
        raise ValueError("Sequential pruning recaptures each layer's inputs from the pruned model: pass model inputs "
                         "(a batch of examples), not captured rows.")
    work = copy.deepcopy(model) if copy_model or sequential else model
    chosen = layers_of(work, layers)
    mask = Mask.ones(model)
    if not captured and not sequential:
        inputs, captured = capture_inputs(model, inputs, [n for n, _ in chosen]), True
    for name, module in chosen:
        if captured:
            if name not in inputs:
                raise ValueError(f"No captured inputs for layer {name!r} (captured: {', '.join(inputs) or 'none'}).")
            rows = inputs[name]
        else:
            rows = capture_inputs(work, inputs, [name])[name]
        w = weight_matrix(module).detach().to("cpu", torch.float32)
        if rows.ndim != 2 or rows.shape[1] != w.shape[1]:
            raise ValueError(f"Layer {name!r} takes {w.shape[1]} inputs per row; its captured rows have shape "
                             f"{tuple(rows.shape)}.")
        new_w, keep = prune_layer(w, rows)
        mask[f"{name}.weight"] = keep.to("cpu", torch.float32).reshape(module.weight.shape)
        if work is not model:
            set_weight_matrix(module, new_w * keep.to(new_w.dtype))
    return work, mask


def calibrated_mask(model: nn.Module, inputs: Mapping[str, torch.Tensor] | torch.Tensor, criterion: Criterion,
                    sparsity: float | None = None, *, nm: tuple[int, int] | None = None, per: str = "row",
                    layers=None, sequential: bool = False) -> Mask:
    """The ``Mask`` keeping the highest ``criterion`` scores of each layer (no weight is changed).

    ``wanda_prune`` is this with ``WandaScore()``; ``MagnitudeScore()`` gives per-row or per-layer magnitude
    pruning, the baseline to compare with. Arguments as in ``select_mask`` and ``layerwise``.
    """
    check_target(sparsity, nm)

    def prune_layer(w, rows):
        return w, select_mask(criterion(w, rows), sparsity, nm=nm, per=per)

    return layerwise(model, inputs, prune_layer, layers=layers, sequential=sequential, copy_model=False)[1]
