"""Rank once, prune at any sparsity: a slider move becomes a comparison, not a selection.

``prune`` selects the k lowest scores every time it is called (``kthvalue``, linear time but about 35 ns
per weight): 350 ms for a 10 M-weight network, too slow for a live slider. The ranking does not depend on
the sparsity, so ``Ranking`` computes it once per (model, criterion, scope, granularity, output rate):
each unit's position in its group's stable sort. The mask at any sparsity is then ``rank >= k`` per group,
one comparison per weight, and it is exactly the mask ``prune`` returns (the same counts, the same
tie-break by position; tests/test_pruning_ranking.py checks it on every setting).

Usage::

    ranking = Ranking(model, criterion="magnitude", scope="global", output_scale=0.5)   # once per baseline
    mask = ranking.mask(0.9)                                                           # per slider move
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..models import output_layer_name, weighted_layers
from .masks import Mask, _check, _nprune


class Ranking:
    """Stable rank of every prunable unit (weight, or neuron/channel) within its ranking group.

    Args:
        model: the trained network (read once; not kept).
        criterion, scope, granularity, output_scale, exclude, seed, norm: as in ``prune`` (a fresh prune:
            no starting mask).
    """

    def __init__(self, model: nn.Module, *, criterion: str = "magnitude", scope: str = "layer",
                 granularity: str = "weight", output_scale: float = 1.0, exclude: Iterable[str] = (),
                 seed: int = 0, norm: int = 1):
        _check(0.0, criterion, scope, granularity, output_scale)
        layers = weighted_layers(model)
        if not layers:
            raise ValueError("This model has no prunable layer (no Linear or Conv layer with weights).")
        self.granularity, self.output_scale = granularity, output_scale
        self.shapes = {f"{n}.weight": tuple(m.weight.shape) for n, m in layers}
        out_name = output_layer_name(model)
        skip = {e[: -len(".weight")] if e.endswith(".weight") else e for e in exclude}
        unknown = skip - {n for n, _ in layers}
        if unknown:
            raise ValueError(f"Cannot exclude {', '.join(sorted(unknown))}: not a layer of this model.")
        if output_scale == 0 or granularity == "neuron":  # a class cannot be removed
            skip.add(out_name)
        # Scores exactly as prune's _Unit computes them (with an all-ones mask), in the same layer order,
        # so that the random criterion draws the same numbers from the same generator.
        gen = torch.Generator().manual_seed(int(seed))
        scores: dict[str, torch.Tensor] = {}
        for name, m in layers:
            if name in skip:
                continue
            w = m.weight.detach().to("cpu", torch.float32)
            if granularity == "weight":
                s = w.abs().reshape(-1)
            else:
                rows = w.reshape(w.shape[0], -1)
                s = rows.norm(p=norm, dim=1) / rows.shape[1] ** (1.0 / norm)
            scores[name] = torch.rand(s.shape, generator=gen) if criterion == "random" else s
        if not scores:
            raise ValueError("Every layer is excluded: nothing is left to prune.")
        solo = [out_name] if out_name in scores and output_scale != 1.0 else []
        pooled = [n for n in scores if n not in solo]
        groups = [([n], True) for n in solo]
        groups += [(pooled, False)] if scope == "global" and pooled else [([n], False) for n in pooled]
        # (layer names, is the output layer at its own rate, rank of each unit within the group)
        self.groups: list[tuple[list[str], bool, list[torch.Tensor]]] = []
        for names, is_out in groups:
            score = torch.cat([scores[n] for n in names])
            order = torch.sort(score, stable=True).indices
            rank = torch.empty_like(order, dtype=torch.int32)
            rank[order] = torch.arange(order.numel(), dtype=torch.int32)
            self.groups.append((names, is_out, list(torch.split(rank, [scores[n].numel() for n in names]))))

    def mask(self, sparsity: float) -> Mask:
        """The mask ``prune(model, sparsity, ...)`` would return, from one comparison per unit."""
        _check(sparsity, "magnitude", "layer", self.granularity, self.output_scale)
        mask = Mask({k: torch.ones(s) for k, s in self.shapes.items()})
        for names, is_out, ranks in self.groups:
            total = sum(r.numel() for r in ranks)
            k = _nprune(sparsity * self.output_scale if is_out else sparsity, total)
            for name, rank in zip(names, ranks):
                keep = (rank >= k).float()
                key = f"{name}.weight"
                if self.granularity == "weight":
                    mask[key] = keep.reshape(self.shapes[key])
                else:
                    mask[key] = keep.reshape(-1, *([1] * (len(self.shapes[key]) - 1))).expand(self.shapes[key]).clone()
                    mask[f"{name}.bias"] = keep  # as prune does: a removed neuron's bias goes too
        return mask
