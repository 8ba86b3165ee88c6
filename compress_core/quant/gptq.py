"""GPTQ: quantize a layer's weights column by column, each column's rounding error compensated by the rest.

Frantar et al. 2023, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers",
Algorithm 1. For a layer y = W x with calibration inputs X, GPTQ minimises ‖WX − ŴX‖² one input column at a time
(the Optimal Brain Quantizer update of Frantar & Alistarh 2022, in a fixed column order):

1. H = 2XXᵀ (here 2·``input_stats(rows).gram``: the factor 2 and the 1/N cancel in every step below), with
   ``percdamp``·mean(diag H) added to its diagonal. A "dead" input (diag H = 0: always zero in calibration) gets
   H_jj = 1 and W[:, j] = 0, as in the reference code: its weight cannot matter on this data.
2. U = the upper Cholesky factor of H⁻¹ (float64, then float32; ``layer_inputs.inverse_hessian_factor``,
   shared with SparseGPT): row j of U holds, scaled, the inverse Hessian of the not-yet-quantized columns j…
   after columns < j are fixed (§4, "Step 3: Cholesky reformulation").
3. For each column j: q_j = quant(w_j); err = (w_j − q_j) / U_jj; W[:, j:] −= err · U[j, j:].
4. Lazy batch updates (§4, "Step 2"): columns are processed in blocks of ``block_size``; within a block the
   update touches the block only, and the rest of W gets the block's accumulated errors in one matrix product.

Options, as in the reference implementation:

- ``act_order``: columns in order of decreasing diag H (the inputs with the most energy first, when the most
  later columns remain to absorb their error); the permutation is undone on the result.
- group-wise grids (``group_size`` = g): a group's per-row min-max grid is computed when the algorithm reaches
  the group's first column, from the columns as updated so far. (The reference code reads that group from W,
  which inside a block lacks the updates of the block's earlier columns when g < block size; this module reads
  the up-to-date columns, so the lazy result equals the unbatched algorithm, as torchao's version does.)
  Per channel and per tensor the grid is fixed up front from the whole W, as the reference quantizer does.
  ``static_groups``: every group's grid from the original W before any update — with ``act_order`` this keeps
  the groups contiguous in storage (the reference's ``static_groups``).

The grid is ``groupwise``'s (the same levels as RTN), so where no error propagates (H diagonal) GPTQ equals
RTN exactly.

Usage::

    stats = input_stats(capture_inputs(model, x)["fc1"])
    w_hat = gptq(model.fc1.weight, stats.gram, bits=4, group_size=128, act_order=True)
    layer_objective(model.fc1.weight, w_hat, stats.gram) <= layer_objective(model.fc1.weight, rtn(...), stats.gram)
"""
from __future__ import annotations

import torch

from ..layer_inputs import inverse_hessian_factor
from .groupwise import check_weight_bits, group_qparams, group_width, tensor_qparams
from .primitives import QParams

__all__ = ["gptq"]


class _Grid:
    """Per-row scale, 1/scale and zero point as column vectors: quantizing one column costs a few tensor ops."""

    def __init__(self, qp: QParams, rows: int):
        s = qp.scale.float().expand(rows) if qp.scale.dim() == 0 else qp.scale.float()
        z = qp.zero_point.float().expand(rows) if qp.zero_point.dim() == 0 else qp.zero_point.float()
        self.scale, self.inv, self.zero = s.contiguous(), (1.0 / s).contiguous(), z.contiguous()
        self.qmin, self.qmax = float(qp.qmin), float(qp.qmax)
        self.has_zero = bool((z != 0).any())

    def into(self, w: torch.Tensor, out: torch.Tensor) -> None:
        """out = fake-quantized w, in place: primitives.fake_quantize's arithmetic (x·(1/S) in float32, round half
        to even), so the same levels as rtn; in-place ops because this runs once per column."""
        torch.mul(w, self.inv, out=out).round_()
        if self.has_zero:
            out.add_(self.zero).clamp_(self.qmin, self.qmax).sub_(self.zero)
        else:
            out.clamp_(self.qmin, self.qmax)
        out.mul_(self.scale)


@torch.no_grad()
def gptq(w: torch.Tensor, gram: torch.Tensor, bits: int = 4, group_size: int | str = 128, *,
         symmetric: bool = False, percdamp: float = 0.01, block_size: int = 128, act_order: bool = False,
         static_groups: bool = False) -> torch.Tensor:
    """GPTQ-quantized copy of a weight matrix (Algorithm 1 with lazy batch updates).

    Args:
        w: the weight, read as (out, in·k…) (a conv weight is flattened, as ``layer_inputs.weight_matrix``).
        gram: XᵀX/N of the layer's input rows (``input_stats(rows).gram``), (in·k…, in·k…).
        bits: 2–8. group_size: ``"tensor"``, ``"channel"`` or g columns per group (``groupwise``'s grids).
        symmetric: zero point 0. percdamp: dampening λ as a fraction of the mean diagonal of H.
        block_size: columns per lazy batch (changes speed only, not the result beyond float rounding).
        act_order: process columns by decreasing diag H. static_groups: group grids from the original W.

    Returns a float32 tensor of ``w``'s shape whose values lie on the chosen grids.
    """
    check_weight_bits(bits)
    if block_size < 1:
        raise ValueError(f"Block size must be ≥ 1; got {block_size}.")
    shape = w.shape
    W = w.detach().float().reshape(shape[0], -1).clone()
    rows, cols = W.shape
    if gram.shape != (cols, cols):
        raise ValueError(f"The Gram matrix has shape {tuple(gram.shape)}; the weight has {cols} input columns.")
    H = 2 * gram.double().clone()
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0

    g = group_width(cols, group_size)
    fixed = None  # one grid for every column: per tensor or per channel
    if g is None:
        fixed = _Grid(tensor_qparams(W, bits, symmetric), rows)
    elif g == cols:
        fixed = _Grid(group_qparams(W, bits, symmetric), rows)
    static = [_Grid(group_qparams(W[:, i:i + g], bits, symmetric), rows) for i in range(0, cols, g)] \
        if fixed is None and static_groups else None

    perm = torch.argsort(torch.diagonal(H), descending=True, stable=True) if act_order else None
    if perm is not None:
        W, H = W[:, perm], H[perm][:, perm]
    U = inverse_hessian_factor(H, percdamp)[0].float()  # SparseGPT's: the same step of the same family
    inv_diag = (1.0 / torch.diagonal(U)).tolist()  # Python floats: no 0-d tensor op per column

    # Work on Wᵀ (columns as contiguous rows): every step below reads or updates whole columns of W.
    Wt, Qt = W.T.contiguous(), torch.empty(cols, rows)
    grid = fixed
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        block, U1 = Wt[i1:i2], U[i1:i2, i1:i2]  # a view: the in-block updates land in Wt
        err = torch.zeros(i2 - i1, rows)
        for i in range(i2 - i1):
            c = i1 + i
            if static is not None:
                grid = static[(int(perm[c]) if perm is not None else c) // g]
            elif fixed is None and c % g == 0:
                grid = _Grid(group_qparams(_group_columns(Wt, err, U, i1, i, i2, g).T, bits, symmetric), rows)
            col, q, e = block[i], Qt[c], err[i]
            grid.into(col, q)
            torch.sub(col, q, out=e).mul_(inv_diag[c])  # e = (w_c − q_c) / U_cc
            block[i:].addr_(U1[i, i:], e, alpha=-1.0)  # W[:, c:i2] −= e · U[c, c:i2]
        if i2 < cols:  # lazy batch update of all later columns: W[:, i2:] −= Err · U[i1:i2, i2:]
            Wt[i2:].addmm_(U[i1:i2, i2:].T, err, alpha=-1.0)
    Q = Qt.T
    if perm is not None:
        Q = Q[:, torch.argsort(perm)]
    return Q.contiguous().reshape(shape)


def _group_columns(Wt: torch.Tensor, err: torch.Tensor, U: torch.Tensor, i1: int, i: int, i2: int,
                   g: int) -> torch.Tensor:
    """The up-to-date values of the group starting at column i1 + i, as rows of Wᵀ (g, out).

    Columns inside the current block already carry every update; those past the block still miss this block's
    errors so far (they arrive with the lazy update), so those are applied here to a copy."""
    c, end = i1 + i, min(i1 + i + g, Wt.shape[0])
    if end <= i2:
        return Wt[c:end]
    beyond = Wt[i2:end] - U[i1:i1 + i, i2:end].T @ err[:i]
    return torch.cat([Wt[c:i2], beyond])
