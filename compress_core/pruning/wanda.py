"""Wanda: pruning by weights and activations (Sun, Liu, Bair & Kolter 2024, "A Simple and Effective Pruning
Approach for Large Language Models", ICLR).

A weight's importance is its magnitude times the norm of the input it multiplies, S_ij = |W_ij| · ‖X_j‖₂, where
X_j is input channel j over all calibration rows (tokens, samples, conv patches). An input that is large on the
calibration data makes even a small weight matter, so magnitude alone misjudges layers with outlier features;
the score is the first-order estimate of |W_ij x_j|, the weight's contribution to the output.

Scores are compared *per output row* by default (each neuron keeps the same number of inputs: the paper's choice,
which it finds better than a per-layer comparison for LLMs, though not for image classifiers); ``per="layer"``
compares across the whole layer.
The N:M variant keeps the N highest scores in each group of M consecutive inputs. Nothing is retrained and no
weight is changed: Wanda only chooses the mask. With all input norms equal it *is* magnitude pruning (per row, per
layer or N:M), which the tests check against ``prune`` and ``nm_prune``.

Scores use the paper's ‖X_j‖₂ (its reference code takes the square root of the accumulated squared norm).
torchao's ``WandaSparsifier`` ranks by |W_ij|·‖X_j‖₂² instead (its ``PerChannelNormObserver`` keeps the squared
norm, and the sparsifier multiplies by it as is), a different order whenever input norms differ;
tests/test_pruning_llm.py compares the two selections given the same statistic.

Usage::

    inputs = capture_inputs(model, ds.x_train[:256])          # shared with SparseGPT, GPTQ, AWQ …
    mask = wanda_prune(model, inputs, 0.5)                    # 50 % of every row of every layer
    mask = wanda_prune(model, inputs, nm=(2, 4))              # 2:4 semi-structured
    pruned = apply_mask(model, mask)
    keep = wanda_mask(weight, input_stats(rows).norm, 0.5)    # one layer, its own shape
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from .layerwise import calibrated_mask, select_mask
from .masks import Mask

__all__ = ["WandaScore", "wanda_mask", "wanda_prune", "wanda_scores"]


def wanda_scores(w: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """S_ij = |W_ij| · ‖X_j‖₂ for a (out, in·k…) weight matrix (a conv weight is viewed as its rows)."""
    w2d = w.detach().reshape(w.shape[0], -1).float()
    norm = norm.detach().reshape(-1).float().to(w2d.device)
    if norm.numel() != w2d.shape[1]:
        raise ValueError(f"The weight has {w2d.shape[1]} inputs per row but {norm.numel()} input norms were given.")
    return w2d.abs() * norm


class WandaScore:
    """Wanda's criterion as an object interchangeable with ``MagnitudeScore``: |W_ij| · ‖X_j‖₂ from the rows."""

    name = "wanda"

    def __call__(self, w: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        # float64 accumulation, as input_stats computes the norm: rows may be many thousands long
        return wanda_scores(w, rows.double().norm(dim=0))


def wanda_mask(w: torch.Tensor, norm: torch.Tensor, sparsity: float | None = None, *,
               nm: tuple[int, int] | None = None, per: str = "row") -> torch.Tensor:
    """Wanda's 0/1 float32 keep-mask for one layer, in the weight's own shape.

    Args:
        w: the weight, (out, in) or a conv's (out, in, k…).
        norm: ‖X_j‖₂ per input column of the row view (``input_stats(rows).norm``), in·k… values.
        sparsity: fraction removed, round(sparsity · count) per output row (or per layer).
        nm: (N, M), e.g. (2, 4): keep N of every M consecutive inputs instead.
        per: "row" (the paper's default) or "layer".
    """
    return select_mask(wanda_scores(w, norm), sparsity, nm=nm, per=per).reshape(w.shape)


def wanda_prune(model: nn.Module, inputs: Mapping[str, torch.Tensor] | torch.Tensor, sparsity: float | None = None,
                *, nm: tuple[int, int] | None = None, per: str = "row", layers=None, sequential: bool = False) -> Mask:
    """Wanda's ``Mask`` for ``model`` (never modified): every chosen Linear/Conv layer pruned by |W|·‖X‖₂.

    Args:
        model: the trained network.
        inputs: captured rows {layer: (rows, in·k…)} from ``capture_inputs``, or a batch of model inputs.
        sparsity: fraction removed from each output row (``per="row"``) or each layer (``per="layer"``).
        nm: (N, M) semi-structured pattern instead of ``sparsity``, e.g. (2, 4).
        per: "row" or "layer" (ignored for N:M).
        layers: names of the layers to prune (default: all); the others stay whole in the mask.
        sequential: recompute each layer's input norms on the model whose earlier layers are already pruned (as
            the paper's code does block by block); needs model inputs.

    Returns:
        a ``Mask`` over every Linear/Conv weight, usable with ``apply_mask``, ``Mask.sparsity`` and the rest.

    Example::

        mask = wanda_prune(model, capture_inputs(model, x), nm=(2, 4))
        assert is_nm_sparse(mask, 2, 4)
    """
    return calibrated_mask(model, inputs, WandaScore(), sparsity, nm=nm, per=per, layers=layers,
                           sequential=sequential)
