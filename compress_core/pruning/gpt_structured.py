"""Structured pruning of the GPT: whole MLP neurons and whole attention heads, cut out by surgery.

A transformer block has two kinds of unit that can go whole, leaving a smaller *dense* block that any hardware runs
faster (the residual stream, its width and the LayerNorms stay as they are):

- an **MLP neuron** j: row j of ``mlp.fc`` (and its bias) and column j of ``mlp.fc2``. GELU(0) = 0, so a neuron whose
  row and bias are zero adds nothing, and neither does one whose ``fc2`` column is zero;
- an **attention head** h (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"; Voita et al. 2019): rows
  h·d … (h+1)·d − 1 of ``attn.q``, ``.k`` and ``.v`` (and their biases), d the head dim, and the same columns of
  ``attn.proj``. A head whose value rows and value bias are zero outputs zero (attention averages zero vectors),
  and one whose ``proj`` columns are zero is never read. Surgery keeps the head dim and lowers ``attn.heads``.

Scores, per unit (the ``criterion``):

- ``"magnitude"``: the norm (L1 or L2) of every weight and bias entry of the unit's group -- the rows and columns
  above, taken together (Torch-Pruning's group norm);
- ``"activation"``: how large the unit's contribution to the residual stream is on calibration windows: for a
  neuron ‖X_j‖₂·‖fc2[:, j]‖₂ (X_j its GELU outputs: Wanda's |W|·‖X‖ at the neuron level, Sun et al. 2024), for a
  head ‖Y_h·proj[:, h]ᵀ‖_F (Y_h its attention outputs) -- both exactly the Frobenius norm of what the unit adds;
- ``"ablation"`` (heads only): how much the calibration loss rises when the head alone is masked (Michel et al.
  2019's importance, measured by removing the head instead of by its gradient);
- ``"random"``: the control.

The rate is per block (each block loses round(rate × its units)) or global (one ranking over all blocks), and every
block keeps at least one head and one neuron: the best-scored unit stays even at 100 %.

Usage::

    mask = gpt_prune(model, 0.5, unit="head")                    # 2 of 4 heads per block, by magnitude
    mask = gpt_prune(model, 0.25, unit="neuron", criterion="activation", calibration=ds.x_train[:64])
    small = shrink_gpt(model, mask)                               # block1.attn.heads == 2, mlp.fc 384 → 288 rows
    torch.allclose(small(x), apply_mask(model, mask)(x), atol=1e-5)
    gpt_summary(model, mask)                                      # heads and neurons kept, parameters, per block
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SCOPES
from ..layer_inputs import capture_inputs
from .masks import Mask, _nprune, apply_mask

__all__ = ["GPT_CRITERIA", "UNITS", "blocks", "gpt_prune", "gpt_summary", "gpt_warnings", "kept_heads_neurons",
           "removes_units", "unit_mask",
           "shrink_gpt", "shrunk_params", "unit_scores"]

UNITS = ("neuron", "head")  # what the GPT's structured granularities cut: MLP neurons, attention heads
GPT_CRITERIA = ("magnitude", "random", "activation", "ablation")
_UNIT_WORDS = {"neuron": ("MLP neuron", "MLP neurons"), "head": ("attention head", "attention heads")}


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, block) of every transformer block, in order (children with an ``attn`` and an ``mlp``)."""
    return [(n, m) for n, m in model.named_children() if hasattr(m, "attn") and hasattr(m, "mlp")]


def _head_dim(attn: nn.Module) -> int:
    return attn.q.weight.shape[0] // attn.heads


def _n_units(block: nn.Module, unit: str) -> int:
    return block.attn.heads if unit == "head" else block.mlp.fc.weight.shape[0]


def _masked(model: nn.Module, mask: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """{parameter name: detached float32 CPU tensor with ``mask`` applied}."""
    out = {}
    for k, p in model.named_parameters():
        t = p.detach().to("cpu", torch.float32)
        out[k] = t * mask[k].to(t) if mask is not None and k in mask else t
    return out


def _group_entries(p: dict[str, torch.Tensor], name: str, block: nn.Module, unit: str) -> torch.Tensor:
    """(units, entries): every weight and bias entry of each unit's group, one row per unit."""
    if unit == "neuron":
        fc, fc2 = f"{name}.mlp.fc", f"{name}.mlp.fc2"
        return torch.cat([p[f"{fc}.weight"], p[f"{fc}.bias"][:, None], p[f"{fc2}.weight"].t()], dim=1)
    h, d = block.attn.heads, _head_dim(block.attn)
    a = f"{name}.attn"
    parts = [torch.cat([p[f"{a}.{x}.weight"], p[f"{a}.{x}.bias"][:, None]], dim=1).reshape(h, -1)
             for x in ("q", "k", "v")]  # rows h·d … (h+1)·d − 1 of each, with their biases
    proj = p[f"{a}.proj.weight"].t().reshape(h, d * p[f"{a}.proj.weight"].shape[0])  # columns of head h
    return torch.cat(parts + [proj], dim=1)


def _calibration(calibration) -> tuple[torch.Tensor, torch.Tensor | None]:
    if calibration is None:
        raise ValueError("The activation and ablation criteria need calibration windows (token ids): none given.")
    x, y = calibration if isinstance(calibration, (tuple, list)) else (calibration, None)
    if len(x) == 0:
        raise ValueError("Calibration needs at least one window of text; got none.")
    return x, y


@torch.no_grad()
def unit_scores(model: nn.Module, unit: str = "neuron", criterion: str = "magnitude", *,
                mask: Mapping[str, torch.Tensor] | None = None, calibration=None, norm: int = 2,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """{block name: one score per head or MLP neuron}; the lowest go first. ``model`` is never modified.

    Args:
        model: a GPT (``compress_core.gpt``).
        unit: "neuron" (MLP neurons) or "head" (attention heads).
        criterion: one of ``GPT_CRITERIA`` (see the module docstring).
        mask: the current mask; scores read the masked weights (and the masked model's activations).
        calibration: token windows (B, T) for "activation"; ``(windows, next characters)`` for "ablation".
        norm: 1 or 2, the norm of "magnitude".
        seed: fixes "random".
    """
    if unit not in UNITS:
        raise ValueError(f"Unknown unit {unit!r}: the GPT's structured pruning cuts {' or '.join(UNITS)}s.")
    if criterion not in GPT_CRITERIA:
        raise ValueError(f"Unknown criterion {criterion!r}: use one of {', '.join(GPT_CRITERIA)}.")
    if criterion == "ablation" and unit != "head":
        raise ValueError("The ablation criterion scores attention heads only (one forward pass per head); score MLP "
                         "neurons by magnitude or activation.")
    bl = blocks(model)
    if not bl:
        raise ValueError("This model has no transformer block: structured GPT pruning needs the GPT.")
    if criterion == "random":
        gen = torch.Generator().manual_seed(int(seed))
        return {n: torch.rand(_n_units(b, unit), generator=gen) for n, b in bl}
    if criterion == "magnitude":
        if norm not in (1, 2):
            raise ValueError(f"The magnitude norm must be 1 or 2 (got {norm!r}).")
        p = _masked(model, mask)
        return {n: _group_entries(p, n, b, unit).norm(p=norm, dim=1) for n, b in bl}
    x, y = _calibration(calibration)
    net = apply_mask(model, mask) if mask is not None else model
    if criterion == "activation":
        layer = "mlp.fc2" if unit == "neuron" else "attn.proj"
        rows = capture_inputs(net, x, [f"{n}.{layer}" for n, _ in bl])  # what fc2 / proj read: (rows, units · d)
        p = _masked(model, mask)
        out = {}
        for n, b in bl:
            xs, w = rows[f"{n}.{layer}"], p[f"{n}.{layer}.weight"]
            if unit == "neuron":
                out[n] = xs.norm(dim=0) * w.norm(dim=0)  # ‖X_j‖·‖fc2[:, j]‖ = ‖X_j fc2[:, j]ᵀ‖_F
            else:
                d = _head_dim(b.attn)
                out[n] = torch.stack([(xs[:, h * d:(h + 1) * d] @ w[:, h * d:(h + 1) * d].t()).norm()
                                      for h in range(b.attn.heads)])
        return out
    if y is None:
        raise ValueError("The ablation criterion needs the next characters of the calibration windows as well.")
    base = _loss(net, x, y)
    out = {}
    for n, b in bl:
        scores = []
        for h in range(b.attn.heads):
            one = unit_mask(model, {n: torch.arange(b.attn.heads) == h}, "head", mask)
            scores.append(_loss(apply_mask(model, one), x, y) - base)
        out[n] = torch.tensor(scores)
    return out


def _loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    loss = float(F.cross_entropy(net(x.to(device)), y.to(device)))
    net.train(was)
    return loss


def unit_mask(model: nn.Module, removed: Mapping[str, torch.Tensor], unit: str,
              mask: Mapping[str, torch.Tensor] | None = None) -> Mask:
    """A ``Mask`` (every Linear weight, plus the biases of the cut groups) that removes the units flagged in
    ``removed`` ({block: bool vector over its heads or neurons}), on top of ``mask`` if given."""
    new = Mask.ones(model)
    if mask is not None:
        new.update({k: torch.as_tensor(v).detach().to("cpu", torch.float32).clone() for k, v in mask.items()})
    for name, block in blocks(model):
        if name not in removed:
            continue
        keep = (~removed[name].bool()).float()
        if unit == "neuron":
            rows, cols = [f"{name}.mlp.fc"], [f"{name}.mlp.fc2"]
        else:
            keep = keep.repeat_interleave(_head_dim(block.attn))
            rows, cols = [f"{name}.attn.{x}" for x in ("q", "k", "v")], [f"{name}.attn.proj"]
        for r in rows:
            new[f"{r}.weight"] = new[f"{r}.weight"] * keep[:, None]
            new[f"{r}.bias"] = new.get(f"{r}.bias", torch.ones_like(keep)) * keep
        for c in cols:
            new[f"{c}.weight"] = new[f"{c}.weight"] * keep[None, :]
    return new


def _remove_lowest(score: torch.Tensor, alive: torch.Tensor, k: int) -> torch.Tensor:
    """Bool vector of the ``k`` alive units of lowest score (ties: the first in order), by a stable sort."""
    remove = torch.zeros_like(alive)
    if k <= 0:
        return remove
    order = torch.sort(torch.where(alive, score, torch.inf), stable=True).indices
    remove[order[:k]] = True
    return remove & alive


def gpt_prune(model: nn.Module, sparsity: float, *, unit: str = "neuron", criterion: str = "magnitude",
              scope: str = "layer", mask: Mapping[str, torch.Tensor] | None = None, relative: bool = False,
              calibration=None, norm: int = 2, seed: int = 0) -> Mask:
    """A ``Mask`` that removes ``sparsity`` of the GPT's MLP neurons or attention heads (``model`` is untouched).

    Args:
        model: a GPT.
        sparsity: fraction in [0, 1] of the units removed: of each block's (scope "layer": round(sparsity × units)
            per block) or of all blocks' together (scope "global"). Every block keeps at least one unit, its
            best-scored, which is never a candidate: a request that would empty a block cuts all but that one
            (``gpt_warnings`` says so in words).
        unit: "neuron" or "head".
        criterion: one of ``GPT_CRITERIA``; ``calibration`` as in ``unit_scores``.
        mask: units it already removed stay removed; ``sparsity`` is then the overall target (``relative``:
            the fraction of the surviving units removed this time).
        norm, seed: as in ``unit_scores``.
    """
    if not isinstance(sparsity, (int, float)) or math.isnan(sparsity) or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"Sparsity must be a fraction between 0 and 1 (got {sparsity!r}).")
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}: use one of {', '.join(SCOPES)}.")
    scores = unit_scores(model, unit, criterion, mask=mask, calibration=calibration, norm=norm, seed=seed)
    alive = {n: k[0 if unit == "head" else 1] for n, k in kept_heads_neurons(model, mask or {}).items()}

    def count(group: list[str]) -> int:
        total, live = sum(alive[n].numel() for n in group), sum(int(alive[n].sum()) for n in group)
        return _nprune(sparsity, live) if relative else max(0, _nprune(sparsity, total) - (total - live))

    removable = {}  # every block keeps its best-scored unit: it is never a candidate
    for n, a in alive.items():
        removable[n] = a.clone()
        if bool(a.any()):
            removable[n][torch.where(a, scores[n], -torch.inf).argmax()] = False
    groups = [list(scores)] if scope == "global" else [[n] for n in scores]
    removed = {}
    for group in groups:
        flags = _remove_lowest(torch.cat([scores[n] for n in group]), torch.cat([removable[n] for n in group]),
                               count(group))
        removed.update(zip(group, torch.split(flags, [alive[n].numel() for n in group])))
    return unit_mask(model, removed, unit, mask)


def kept_heads_neurons(model: nn.Module,
                       mask: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{block: (bool over heads, bool over MLP neurons)}: True where the unit survives surgery with ``mask``.

    A head is cut when its value rows and value bias are all masked (it outputs zeros) or when every ``proj``
    column that reads it is; a neuron when its ``fc`` row and bias are masked, or its ``fc2`` column. A bias
    without a mask entry is kept, so an unstructured mask (weights only) cuts a head or neuron only through
    the layer that reads it."""
    out = {}
    for name, b in blocks(model):
        def m(key: str, like: torch.Tensor) -> torch.Tensor:
            return mask[key].to("cpu").bool() if key in mask else torch.ones(like.shape, dtype=torch.bool)

        a, mlp = b.attn, b.mlp
        h, d = a.heads, _head_dim(a)
        v_alive = m(f"{name}.attn.v.weight", a.v.weight).any(dim=1) | m(f"{name}.attn.v.bias", a.v.bias)
        read = m(f"{name}.attn.proj.weight", a.proj.weight).any(dim=0)
        heads = (v_alive & read).reshape(h, d).any(dim=1)
        fc_alive = m(f"{name}.mlp.fc.weight", mlp.fc.weight).any(dim=1) | m(f"{name}.mlp.fc.bias", mlp.fc.bias)
        neurons = fc_alive & m(f"{name}.mlp.fc2.weight", mlp.fc2.weight).any(dim=0)
        out[name] = (heads, neurons)
    return out


def removes_units(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> bool:
    """True when ``mask`` cuts at least one whole head or MLP neuron out of the GPT (surgery then shrinks it)."""
    return any(not bool(h.all()) or not bool(n.all()) for h, n in kept_heads_neurons(model, mask).values())


def _empty_blocks(kept: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> str | None:
    for name, (h, n) in kept.items():
        for what, flags in (("attention head", h), ("MLP neuron", n)):
            if not bool(flags.any()):
                return (f"Block {name!r} would keep no {what}: surgery cannot build a block without one. Keep at least "
                        f"one {what} per block (lower the rate).")
    return None


@torch.no_grad()
def shrink_gpt(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Sequential:
    """A smaller dense copy of the GPT without the heads and MLP neurons that ``mask`` cuts (``model`` untouched).

    Surviving weights are copied with ``mask`` applied, so unstructured zeros remain; the output equals
    ``apply_mask(model, mask)``'s for every input (up to the order of float sums). The head dim, the width, the
    embeddings, the LayerNorms and each attention's ``kv_hook`` stay as they are; ``attn.heads`` counts the kept heads.

    Raises ValueError (plain words) when a block would keep no head or no neuron.
    """
    kept = kept_heads_neurons(model, mask)
    empty = _empty_blocks(kept)
    if empty:
        raise ValueError(empty)
    small = apply_mask(model, mask)
    for name, b in blocks(small):
        heads, neurons = kept[name]
        a, d = b.attn, _head_dim(b.attn)
        rows = heads.repeat_interleave(d)
        for x in ("q", "k", "v"):
            setattr(a, x, _linear(getattr(a, x), rows=rows))
        a.proj = _linear(a.proj, cols=rows)
        a.heads = int(heads.sum())
        b.mlp.fc, b.mlp.fc2 = _linear(b.mlp.fc, rows=neurons), _linear(b.mlp.fc2, cols=neurons)
    return small


def _linear(m: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A Linear layer holding ``m``'s kept rows (outputs) or columns (inputs)."""
    w, b = m.weight.detach(), None if m.bias is None else m.bias.detach()
    if rows is not None:
        w, b = w[rows.to(w.device)], None if b is None else b[rows.to(w.device)]
    if cols is not None:
        w = w[:, cols.to(w.device)]
    new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=w.device, dtype=w.dtype)
    new.weight.copy_(w)
    if b is not None:
        new.bias.copy_(b)
    return new


def _block_params(width: int, heads: int, head_dim: int, neurons: int) -> int:
    """Parameters of one block: two LayerNorms, q/k/v (heads·d rows, with bias), proj (heads·d columns, bias of
    width), fc (neurons rows, with bias) and fc2 (neurons columns, bias of width)."""
    hd = heads * head_dim
    return 4 * width + 3 * (hd * width + hd) + width * hd + width + neurons * width + neurons + width * neurons + width


def shrunk_params(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> int:
    """Parameters of ``shrink_gpt(model, mask)``, counted without building it."""
    total = sum(p.numel() for p in model.parameters())
    return total - sum(r["params"] - r["params_after"] for r in gpt_summary(model, mask))


def gpt_summary(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> list[dict]:
    """Per block: heads and MLP neurons kept of their totals, and the block's parameters before and after surgery."""
    rows = []
    for (name, b), (heads, neurons) in zip(blocks(model), kept_heads_neurons(model, mask).values()):
        width, d = b.ln1.weight.shape[0], _head_dim(b.attn)
        rows.append(dict(block=name, heads=heads.numel(), kept_heads=int(heads.sum()), neurons=neurons.numel(),
                         kept_neurons=int(neurons.sum()),
                         params=sum(p.numel() for p in b.parameters()),
                         params_after=_block_params(width, int(heads.sum()), d, int(neurons.sum()))))
    return rows


def gpt_warnings(model: nn.Module, mask: Mapping[str, torch.Tensor], sparsity: float, unit: str,
                 scope: str = "layer") -> list[str]:
    """Plain words about a structured GPT mask: a rate that rounds to no unit, or blocks held at one unit."""
    one, many = _UNIT_WORDS[unit]
    summary = gpt_summary(model, mask)
    key = "heads" if unit == "head" else "neurons"
    kept = sum(r[f"kept_{key}"] for r in summary)
    total = sum(r[key] for r in summary)
    out = []
    if sparsity > 0 and kept == total:
        out.append(f"A rate of {sparsity:.1%} rounds to no {one} here: nothing was cut (each block has "
                   f"{summary[0][key]} {many}; {'the pool' if scope == 'global' else 'each block'} removes "
                   f"round(rate × its {many}).")
    held = [r["block"] for r in summary if r[f"kept_{key}"] == 1 and _nprune(sparsity, r[key]) >= r[key]]
    if held and scope == "layer":
        out.append(f"{sparsity:.1%} of the {many} would empty {', '.join(held)}: every block keeps at least its "
                   f"best-scored {one}, so {summary[0][key] - 1} of {summary[0][key]} are cut there.")
    elif scope == "global" and total - kept < _nprune(sparsity, total):
        out.append(f"{sparsity:.1%} of all {many} would empty a block: every block keeps at least its best-scored "
                   f"{one}, so {total - kept} of {total} are cut instead of {_nprune(sparsity, total)}.")
    return out
