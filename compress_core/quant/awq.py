"""AWQ: protect the weights that meet large activations by scaling their input channels before quantizing.

Lin et al. 2024, "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration", §3.2–3.3.
A weight column j that multiplies a large input |X_j| matters more; multiplying it by s_j > 1 (and dividing the
input by s_j, which leaves the float layer unchanged) shrinks its relative rounding error. The scale is

    s = s_X^α / sqrt(max(s_X^α)·min(s_X^α)),   s_X = mean_rows |X_j|  (``input_stats(rows).absmean``),

(the normalisation is the reference code's; it does not change the search), with α picked on a grid of
``n_grid`` = 20 points in [0, 1) minimising the layer's output error on the calibration rows,

    L(α) = ‖X Wᵀ − (X diag(s)⁻¹) Q(W diag(s))ᵀ‖² / (rows · out),

computed from the Gram matrix (``groupwise.layer_objective``). Then (``clip``) the clipping search of the
reference code: per output row and group, the largest |value| kept is r·max|w| for r in 1, 0.95, …, 0.55,
whichever gives the smallest error of that group's share of the output (on the scaled inputs X/s). α = 0 gives
s = 1: plain RTN (plus the clipping, if on).

Quantization uses ``groupwise``'s grid, so AWQ, GPTQ and RTN are compared on the same levels. (The reference's
4-bit grid stretches only to [min, max] of each group without including 0; ours always includes 0, as every grid
in this package.) The layer then computes Q(W·diag(s)) applied to x / s: ``scaling.scale_input`` keeps the
division in the layer, or ``scaling.fold_into_layernorm`` moves it into the LayerNorm before it.

A conv layer is scaled per input channel (its weight-matrix columns of one channel share a scale), so the CNN
gets AWQ too.

Usage::

    stats = input_stats(rows)                                   # rows = capture_inputs(model, x)["fc1"]
    res = awq(layer.weight, stats.gram, stats.absmean, bits=4, group_size=128)
    new_layer = scale_input(layer, res.scale, res.weight)       # computes Q(W s)(x / s) + b
    res.alpha, res.effective_weight                             # chosen α; Q(W s)/s, comparable with rtn(W)
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..layer_inputs import input_stats, layers_of, weight_matrix
from .groupwise import check_weight_bits, group_width, layer_objective, rtn
from .scaling import column_scale, fold_groups, fold_scale, replace_module, scale_input

__all__ = ["AWQResult", "CLIP_GRID", "MAX_SHRINK", "N_GRID", "awq", "awq_model", "awq_scale", "channel_stat",
           "clip_search", "quantize_scaled"]

N_GRID = 20  # α ∈ {0, 1/20, …, 19/20}, the reference's scale search
CLIP_GRID, MAX_SHRINK = 20, 0.5  # clip ratios 1 − i/20 for i < 0.5·20: 1, 0.95, …, 0.55


@dataclass(frozen=True, eq=False)
class AWQResult:
    """``weight``: Q(W·diag(s)) (out, cols), what the layer stores; ``scale``: s per column (cols,);
    ``alpha``: the chosen exponent; ``loss``: L(α) at that α (before clipping); ``losses``: L at every α tried;
    ``clip``: the kept max |value| per (row, group) of the scaled weight, or None without clipping."""

    weight: torch.Tensor
    scale: torch.Tensor
    alpha: float
    loss: float
    losses: tuple[float, ...]
    clip: torch.Tensor | None

    @property
    def effective_weight(self) -> torch.Tensor:
        """Q(W·diag(s))·diag(s)⁻¹: what the layer applies to the unscaled input (compare with W, or rtn(W))."""
        return self.weight / self.scale


def awq_scale(act_mean: torch.Tensor, alpha: float) -> torch.Tensor:
    """s = s_X^α, floored at 1e-4 and divided by sqrt(max s · min s), as the reference code computes it."""
    s = act_mean.detach().float().pow(alpha).clamp(min=1e-4)
    return s / (s.max() * s.min()).sqrt()


def _group_index(cols: int, g: int | None) -> tuple[torch.Tensor, int]:
    """Group number of each column (all 0 per tensor) and the number of groups per row."""
    if g is None:
        return torch.zeros(cols, dtype=torch.long), 1
    return torch.arange(cols) // g, math.ceil(cols / g)


def _group_absmax(w: torch.Tensor, g: int) -> torch.Tensor:
    """max |w| per (row, group of g columns; the last one shorter when g does not divide the columns)."""
    full = w.shape[1] // g * g
    parts = [w[:, :full].abs().reshape(len(w), -1, g).amax(-1)] if full else []
    if full < w.shape[1]:
        parts.append(w[:, full:].abs().amax(1, keepdim=True))
    return torch.cat(parts, 1)


def _diagonal_blocks(gram: torch.Tensor, cols: int, g: int | None) -> list[torch.Tensor]:
    """The Gram matrix's blocks G_kk of each group's columns (the whole matrix per tensor or per channel)."""
    if g is None or g == cols:
        return [gram]
    return [gram[i:i + g, i:i + g] for i in range(0, cols, g)]


def _group_errors(d: torch.Tensor, blocks: list[torch.Tensor], g: int | None) -> torch.Tensor:
    """d_k G_kk d_kᵀ per (row, group) for the weight error d (out, cols); per tensor their sum, as (out, 1)."""
    if g is None:
        return ((d @ blocks[0]) * d).sum().expand(len(d), 1)
    if len(blocks) == 1:
        return ((d @ blocks[0]) * d).sum(1, keepdim=True)
    full = d.shape[1] // g
    errs = []
    if full:  # all whole groups at once: (out, k, g) against (k, g, g)
        dk = d[:, :full * g].reshape(len(d), full, g)
        errs.append(torch.einsum("okg,kgh,okh->ok", dk, torch.stack(blocks[:full]), dk))
    if len(blocks) > full:
        dt = d[:, full * g:]
        errs.append(((dt @ blocks[-1]) * dt).sum(1, keepdim=True))
    return torch.cat(errs, 1)


@torch.no_grad()
def clip_search(w: torch.Tensor, gram: torch.Tensor, bits: int, group_size: int | str = 128,
                symmetric: bool = False, n_grid: int = CLIP_GRID, max_shrink: float = MAX_SHRINK) -> torch.Tensor:
    """The max |value| kept per (row, group) of ``w`` (out, cols) that minimises each group's output error.

    For ratio r = 1 − i/n_grid (i < max_shrink·n_grid) the group is clamped to ±r·max|w_group| and rounded; its
    error is d G_kk dᵀ (d = w − q over the group's columns, G_kk its block of the Gram matrix): the mean square of
    the group's share of the output. A smaller ratio replaces the best only when strictly better, so clipping
    never raises a group's error. Per tensor one ratio serves the whole matrix (the error summed)."""
    w = w.detach().float()
    out, cols = w.shape
    g = group_width(cols, group_size)
    gidx, n_groups = _group_index(cols, g)
    if g is None:
        absmax = w.abs().max().expand(out, 1)
    else:
        absmax = _group_absmax(w, g)
    blocks = _diagonal_blocks(gram.double(), cols, g)
    best_err = torch.full(absmax.shape, float("inf"), dtype=torch.float64)
    best_max = absmax.clone()
    for i in range(int(max_shrink * n_grid)):
        max_val = absmax * (1 - i / n_grid)
        limit = max_val[:, gidx] if g is not None else max_val.expand(out, cols)
        d = (w - rtn(torch.clamp(w, -limit, limit), bits, group_size, symmetric)).double()
        err = _group_errors(d, blocks, g)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_max = torch.where(better, max_val, best_max)
    return best_max


@torch.no_grad()
def awq(w: torch.Tensor, gram: torch.Tensor, act_mean: torch.Tensor, bits: int = 4, group_size: int | str = 128, *,
        symmetric: bool = False, n_grid: int = N_GRID, alpha: float | None = None, clip: bool = True) -> AWQResult:
    """AWQ for one weight matrix (out, cols) with its inputs' Gram matrix (cols, cols) and mean |x| per column.

    Args:
        bits: 2–8. group_size: ``"tensor"``, ``"channel"`` or g columns (``groupwise``'s grids).
        n_grid: α is searched over i/n_grid, i = 0…n_grid − 1. alpha: use this α instead of searching.
        clip: then search the clipping range per group (``clip_search``).
    """
    check_weight_bits(bits)
    w = w.detach().float().reshape(w.shape[0], -1)
    out = w.shape[0]
    alphas = [alpha] if alpha is not None else [i / n_grid for i in range(n_grid)]
    best = None
    losses = []
    for a in alphas:
        s = awq_scale(act_mean, a)
        w_eff = rtn(w * s, bits, group_size, symmetric) / s
        loss = layer_objective(w, w_eff, gram) / out
        losses.append(loss)
        if best is None or loss < best[0]:
            best = (loss, a, s)
    loss, a, s = best
    weight, max_val = quantize_scaled(w * s, gram / (s[:, None] * s[None, :]).double(), bits, group_size,
                                      symmetric=symmetric, clip=clip)
    return AWQResult(weight, s, a, loss, tuple(losses), max_val)


@torch.no_grad()
def quantize_scaled(ws: torch.Tensor, gram_scaled: torch.Tensor, bits: int, group_size: int | str = 128, *,
                    symmetric: bool = False, clip: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The last step of AWQ: the scaled weight W·diag(s) clipped (``clip_search``, on the Gram matrix of the scaled
    inputs X/s) and rounded. Returns (quantized weight, kept max |value| per (row, group) or None)."""
    ws = ws.detach().float()
    if not clip:
        return rtn(ws, bits, group_size, symmetric), None
    max_val = clip_search(ws, gram_scaled, bits, group_size, symmetric)
    g = group_width(ws.shape[1], group_size)
    limit = max_val[:, _group_index(ws.shape[1], g)[0]] if g is not None else max_val[:1, :1]
    return rtn(torch.clamp(ws, -limit, limit), bits, group_size, symmetric), max_val


def channel_stat(layer: nn.Module, per_column: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    """A per-column statistic of a layer's input rows pooled per input channel (over a conv's k… columns)."""
    k = weight_matrix(layer).shape[1] // layer.weight.shape[1]
    v = per_column.reshape(-1, k)
    return v.mean(1) if reduce == "mean" else v.amax(1)


@torch.no_grad()
def awq_model(model: nn.Module, inputs: dict[str, torch.Tensor], bits: int = 4, group_size: int | str = 128,
              layers=None, *, symmetric: bool = False, fold: dict[str, list[str]] | None = None,
              n_grid: int = N_GRID, alpha: float | None = None, clip: bool = True, quantize: bool = True) -> nn.Module:
    """An AWQ-quantized copy of ``model`` (eval mode; the original is untouched).

    Args:
        inputs: each layer's float input rows (``capture_inputs(model, x)``).
        layers: names of the Linear/Conv layers to quantize (default: all).
        fold: {name of a LayerNorm (or Linear) : [the layers that read its output]}: those layers share one
            scale, searched on their weights stacked, and the division goes into that module (a Linear only where
            nothing nonlinear follows it but a ReLU or attention's value mixing: v → proj); every other layer keeps
            the division itself (``scaling.ScaledLinear`` …, same name and parameters).
        bits, group_size, symmetric, n_grid, alpha, clip: as ``awq``.
        quantize: False stores W·diag(s) unquantized (the scales still searched): the float model's function,
            which shows the rescaling is exact.
    """
    new = copy.deepcopy(model).eval()
    selected = [n for n, _ in layers_of(new, layers)]
    groups = fold_groups(fold, selected)
    # First every fold group's scale, searched on the current float weights and applied in float (the reference
    # code's order: all scales, then the quantization), so that a fold into a Linear that is itself quantized (AWQ's
    # v → proj) rescales float weights, not codes. Groups are searched in the order given.
    scales = {}
    for into, names in groups.items():
        mods = [new.get_submodule(n) for n in names]
        if not all(isinstance(m, nn.Linear) for m in mods):
            raise ValueError(f"The layers folded into {into} must be Linear layers.")
        stats = input_stats(inputs[names[0]])
        w = torch.cat([weight_matrix(m).detach().float() for m in mods])
        s = awq(w, stats.gram, stats.absmean, bits, group_size, symmetric=symmetric, n_grid=n_grid, alpha=alpha,
                clip=False).scale
        fold_scale(new, into, s)
        for m in mods:
            m.weight.mul_(s)
        scales[into] = s
    for into, names in groups.items() if quantize else ():
        mods = [new.get_submodule(n) for n in names]
        s, gram = scales[into], input_stats(inputs[names[0]]).gram
        ws = torch.cat([weight_matrix(m).detach().float() for m in mods])
        q, _ = quantize_scaled(ws, gram / (s[:, None] * s[None, :]).double(), bits, group_size, symmetric=symmetric,
                               clip=clip)
        for m, part in zip(mods, q.split([m.weight.shape[0] for m in mods])):
            m.weight.copy_(part)
    grouped = {n for names in groups.values() for n in names}
    for name in selected:
        if name in grouped:
            continue
        layer = new.get_submodule(name)
        stats = input_stats(inputs[name])
        # one scale per input channel: a conv's k… columns of a channel share their pooled mean |x|
        mean_cols = column_scale(layer, channel_stat(layer, stats.absmean))
        res = awq(weight_matrix(layer), stats.gram, mean_cols, bits, group_size, symmetric=symmetric, n_grid=n_grid,
                  alpha=alpha, clip=clip and quantize)
        per_channel = res.scale[::weight_matrix(layer).shape[1] // layer.weight.shape[1]]
        stored = res.weight if quantize else weight_matrix(layer).detach().float() * res.scale
        replace_module(new, name, scale_input(layer, per_channel, stored))
    return new
