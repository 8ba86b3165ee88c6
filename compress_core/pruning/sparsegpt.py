"""SparseGPT: one-shot pruning with weight reconstruction (Frantar & Alistarh 2023, "SparseGPT: Massive Language
Models Can Be Accurately Pruned in One-Shot", ICML; Algorithm 1).

Pruning a layer y = W x to Ŵ should keep its outputs on the calibration rows X: minimise ‖WXᵀ − ŴXᵀ‖² with Ŵ
zero outside a mask. Removing weight w_c and correcting the rest of its row optimally is the Optimal Brain
Surgeon update (Hassibi & Stork 1993) with Hessian H = XᵀX: the error grows by w_c² / [H⁻¹]_cc and the row moves
by −(w_c / [H⁻¹]_cc) · H⁻¹[c, :]. SparseGPT makes this affordable for every row at once:

- it prunes the columns left to right and only updates the columns to the right of the current one, so every
  row shares the same sequence of inverse Hessians, and all of them are rows of one upper Cholesky factor U of
  H⁻¹ (H⁻¹ = UᵀU): column j's update is −(w_j / U_jj) · U[j, j:];
- H is dampened by λ = 0.01 · mean(diag H) (as GPTQ) so the factorisation exists when inputs are correlated;
- the mask is chosen *adaptively*, block by block: at the start of each block of B_s = 128 columns it keeps the
  weights of largest w²/U_cc² there, scored on the weights as already updated by the earlier blocks (so the
  mask follows the reconstruction), for the block's share of the target sparsity;
- updates are applied lazily: inside a block column by column, to the rest of the matrix once per block (one
  matrix product instead of B_s rank-one updates), which is what makes it fast;
- N:M (e.g. 2:4): the mask is chosen per group of M columns, when the sweep reaches the group, keeping the N of
  largest w²/U_cc² in each row.

Input channels that never fire on the calibration data (diag H = 0: dead ReLUs, always-blank pixels) carry no
information: as in the authors' code their weights are set to 0 (and score 0, so they are pruned first).

The scale of H does not matter (the dampening is relative and every step uses ratios of U), so the Gram matrix
XᵀX / rows of ``input_stats`` serves. ``output_error`` measures what this minimises.

Usage::

    inputs = capture_inputs(model, ds.x_train[:256])
    pruned, mask = sparsegpt_prune(model, inputs, 0.5)        # a reconstructed copy and its Mask
    pruned, mask = sparsegpt_prune(model, inputs, nm=(2, 4))
    w_hat, keep = sparsegpt_layer(weight_matrix(layer), input_stats(inputs["fc1"]).gram, 0.5)
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..layer_inputs import input_stats, inverse_hessian_factor
from .layerwise import check_target, layerwise
from .masks import Mask, _nprune, _remove_lowest

__all__ = ["inverse_hessian_factor", "sparsegpt_layer", "sparsegpt_prune"]


@torch.no_grad()
def sparsegpt_layer(w: torch.Tensor, gram: torch.Tensor, sparsity: float | None = None, *,
                    nm: tuple[int, int] | None = None, blocksize: int = 128,
                    damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune one layer by SparseGPT: (reconstructed weight Ŵ, 0/1 float32 keep-mask), both in ``w``'s shape.

    Args:
        w: the weight, (out, in) or a conv's (out, in, k…) (pruned in its (out, in·k…) row view).
        gram: the input Gram matrix XᵀX / rows of the row view (``input_stats(rows).gram``), (in·k…)².
        sparsity: fraction of the layer's weights removed: round(sparsity · count) in all, each block of
            columns removing its share (the count up to the block's end minus the count before it), the
            rows within a block competing for it.
        nm: (N, M): keep N of every M consecutive inputs of each row instead.
        blocksize: B_s, the columns per mask choice and per lazy update (a multiple of M for N:M).
        damp: λ as a fraction of the mean diagonal of H.

    Returns:
        Ŵ (zero where pruned, float32 on ``w``'s device) and the mask, float32 on the CPU.
    """
    sparsity, nm = check_target(sparsity, nm)
    if blocksize < 1 or (nm is not None and blocksize % nm[1]):
        raise ValueError(f"The block size must be a positive multiple of M (got {blocksize} for M = "
                         f"{nm[1] if nm else '-'}).")
    out, cols = w.shape[0], w[0].numel()
    if gram.shape != (cols, cols):
        raise ValueError(f"The weight has {cols} inputs per row but the Gram matrix is {tuple(gram.shape)}.")
    W = w.detach().reshape(out, cols).to("cpu", torch.float64).clone()
    U, dead = inverse_hessian_factor(gram, damp)
    W[:, dead] = 0.0
    mask = torch.ones(out, cols, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        d1 = torch.diagonal(U1)
        err = torch.zeros_like(W1)
        mask1 = torch.ones_like(W1, dtype=torch.bool)
        if sparsity is not None:  # the block's share of the layer's count, chosen on the weights as updated so far
            k = _nprune(sparsity, out * i2) - _nprune(sparsity, out * i1)
            score = (W1 ** 2 / d1 ** 2).reshape(-1)
            mask1 = ~_remove_lowest(score, torch.ones_like(score, dtype=torch.bool), k).reshape(W1.shape)
        pruned = (~mask1).double()
        inv_d = (1.0 / d1).tolist()  # Python floats: this loop runs once per column, its overhead is the cost
        for i in range(i2 - i1):
            if nm is not None and i % nm[1] == 0:  # a new group of M: choose it on the weights as updated now
                n, m = nm
                group = W1[:, i:i + m] ** 2 / d1[i:i + m] ** 2
                top = group.topk(min(n, group.shape[1]), dim=1).indices
                mask1[:, i:i + m] = torch.zeros_like(group, dtype=torch.bool).scatter_(1, top, True)
                pruned[:, i:i + m] = (~mask1[:, i:i + m]).double()
            # OBS: the pruned part of column i goes, the columns to its right (in this block) absorb it
            e = torch.mul(W1[:, i], pruned[:, i], out=err[:, i]).mul_(inv_d[i])
            W1[:, i:].addr_(e, U1[i, i:], alpha=-1.0)
        W[:, i1:i2] = W1 * mask1
        mask[:, i1:i2] = mask1
        W[:, i2:] -= err @ U[i1:i2, i2:]  # the block's updates to the columns after it, in one product
    dtype = w.dtype if w.dtype.is_floating_point else torch.float32
    return W.to(dtype).reshape(w.shape).to(w.device), mask.float().reshape(w.shape)


def sparsegpt_prune(model: nn.Module, inputs: Mapping[str, torch.Tensor] | torch.Tensor,
                    sparsity: float | None = None, *, nm: tuple[int, int] | None = None, layers=None,
                    blocksize: int = 128, damp: float = 0.01, sequential: bool = False) -> tuple[nn.Module, Mask]:
    """SparseGPT on every chosen Linear/Conv layer: (a pruned, reconstructed copy of ``model``, its ``Mask``).

    ``model`` is never modified. The returned model's weights are zero wherever the mask is 0 (and on input
    channels that never fired during calibration); its surviving weights differ from ``model``'s.

    Args:
        model: the trained network.
        inputs: captured rows {layer: (rows, in·k…)} from ``capture_inputs``, or a batch of model inputs.
        sparsity: fraction of each layer's weights removed (or ``nm``: keep N of every M inputs, e.g. (2, 4)).
        layers: names of the layers to prune (default: all); the others are copied as they are.
        blocksize, damp: as in ``sparsegpt_layer``.
        sequential: fit each layer to the inputs it sees once the layers before it are pruned and reconstructed
            (the paper's block-by-block procedure; needs model inputs). Off: every layer sees the dense model's.

    Example::

        pruned, mask = sparsegpt_prune(model, x_calib, 0.5, sequential=True)
        mask.sparsity()         # 0.5
    """
    check_target(sparsity, nm)

    def prune_layer(w, rows):
        return sparsegpt_layer(w, input_stats(rows).gram, sparsity, nm=nm, blocksize=blocksize, damp=damp)

    return layerwise(model, inputs, prune_layer, layers=layers, sequential=sequential)
