"""Pruning masks: which weights to remove, by magnitude or at random, per layer or globally.

A ``Mask`` is a dict {parameter name: 0/1 float tensor of the parameter's shape}: 1 = kept, 0 = pruned.
``prune`` is a pure function from (model, sparsity, current mask) to a new mask, in the style of
open_lth's ``prune(hparams, model, current_mask) -> Mask``; ``apply_mask`` returns a pruned copy.

Semantics follow ``torch.nn.utils.prune`` so tests can compare with it:

- ``l1_unstructured`` / ``random_unstructured``: remove ``round(sparsity * count)`` weights of smallest
  |w| (or chosen at random) -- the count rule of torch's ``_compute_nparams_toprune``.
- ``global_unstructured``: the same, with one ranking across all pruned layers (Han et al. 2015 use a
  per-layer threshold; Frankle & Carbin 2019 use both).
- ``ln_structured(dim=0)``: remove whole output neurons (Linear rows) or filters/channels (Conv outputs)
  ranked by their L1 or L2 norm (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
- Repeated pruning (torch's ``PruningContainer``): with ``mask=`` given, ``sparsity`` is the fraction of
  the *surviving* weights (or neurons) removed this time; what was pruned stays pruned. ``prune_to``
  instead takes the overall target sparsity.

Semi-structured N:M sparsity (at most N non-zeros in each group of M consecutive weights along the
input dimension; 2:4 is what NVIDIA Ampere sparse tensor cores accelerate, Mishra et al. 2021,
"Accelerating Sparse Deep Neural Networks") is ``nm_prune``.

Usage::

    model = get_baseline("digits", "mlp").model
    mask = prune(model, 0.9)                         # 90 % of each layer's weights, smallest |w| first
    mask = prune(model, 0.2, mask=mask)              # 20 % of the survivors more: 92 % overall
    pruned = apply_mask(model, mask)                 # a copy; ``model`` is untouched
    mask.sparsity(), mask.layer_sparsity()
"""
from __future__ import annotations

import copy
import math
from typing import Iterable, Mapping

import torch
from torch import nn

from ..config import SCOPES
from ..models import is_language_model, output_layer_name, weighted_layers
from ..train import apply_mask_

CRITERIA = ("magnitude", "random")
GRANULARITIES = ("weight", "neuron")


class Mask(dict):
    """{parameter name: 0/1 float32 tensor}, 1 = kept. Covers every weight of every Linear/Conv layer.

    Bias entries appear only where whole neurons were removed (structured pruning), because a neuron
    whose weights are gone but whose bias remains still outputs a constant. Counting methods
    (``kept``, ``total``, ``sparsity``, ``density``) count weight entries only unless
    ``include_bias=True`` -- the convention of the papers' tables.
    """

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def ones(cls, model: nn.Module) -> "Mask":
        """The all-kept mask of ``model``: one entry per Linear/Conv weight."""
        return cls({f"{n}.weight": torch.ones_like(m.weight, dtype=torch.float32, device="cpu")
                    for n, m in weighted_layers(model)})

    def clone(self) -> "Mask":
        return Mask({k: v.clone() for k, v in self.items()})

    def to_state(self) -> dict[str, torch.Tensor]:
        """A compact copy for saving (``torch.save``): bool tensors on the CPU."""
        return {k: v.detach().to("cpu").bool() for k, v in self.items()}

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor | list]) -> "Mask":
        """Inverse of ``to_state``; accepts bool, integer or float tensors (or nested lists) of 0/1."""
        out = cls()
        for k, v in state.items():
            t = torch.as_tensor(v).detach().to("cpu", torch.float32)
            if not bool(((t == 0) | (t == 1)).all()):
                raise ValueError(f"Mask entry {k!r} holds values other than 0 and 1.")
            out[k] = t
        return out

    # ---- counting -------------------------------------------------------------------------------
    def _names(self, name: str | None, include_bias: bool) -> list[str]:
        if name is not None:
            key = name if name in self else f"{name}.weight"
            if key not in self:
                raise KeyError(f"No mask entry for {name!r}. Entries: {', '.join(self)}.")
            return [key]
        return [k for k in self if include_bias or not k.endswith(".bias")]

    def kept(self, name: str | None = None, include_bias: bool = False) -> int:
        """Number of kept entries (of one parameter or layer name, or overall)."""
        return int(sum(int(self[k].count_nonzero()) for k in self._names(name, include_bias)))

    def total(self, name: str | None = None, include_bias: bool = False) -> int:
        """Number of entries (of one parameter or layer name, or overall)."""
        return int(sum(self[k].numel() for k in self._names(name, include_bias)))

    def pruned(self, name: str | None = None, include_bias: bool = False) -> int:
        return self.total(name, include_bias) - self.kept(name, include_bias)

    def density(self, name: str | None = None, include_bias: bool = False) -> float:
        """Fraction kept, in [0, 1] (1.0 for an empty mask)."""
        total = self.total(name, include_bias)
        return self.kept(name, include_bias) / total if total else 1.0

    def sparsity(self, name: str | None = None, include_bias: bool = False) -> float:
        """Fraction pruned, in [0, 1]."""
        return 1.0 - self.density(name, include_bias)

    def layer_sparsity(self) -> dict[str, float]:
        """{layer name: fraction of its weights pruned}, in forward order."""
        return {k[: -len(".weight")]: self.sparsity(k) for k in self if k.endswith(".weight")}

    def layer_density(self) -> dict[str, float]:
        return {k: 1.0 - v for k, v in self.layer_sparsity().items()}

    def dead_layers(self) -> list[str]:
        """Layers with no weight left: the network is cut there (its output no longer depends on input)."""
        return [k for k, d in self.layer_density().items() if d == 0.0]

    def kept_neurons(self, layer: str) -> torch.Tensor:
        """Bool vector over ``layer``'s outputs: True where the neuron/channel keeps a weight or a bias."""
        w = self[f"{layer}.weight"]
        alive = w.reshape(w.shape[0], -1).any(dim=1)
        b = self.get(f"{layer}.bias")
        return alive | b.bool() if b is not None else alive

    def summary(self) -> list[dict]:
        """One row per weight entry: layer, kept, total, sparsity."""
        return [dict(layer=k[: -len(".weight")], kept=self.kept(k), total=self.total(k), sparsity=self.sparsity(k))
                for k in self if k.endswith(".weight")]


# ---- choosing what to prune --------------------------------------------------------------------
def _nprune(fraction: float, count: int) -> int:
    """torch.nn.utils.prune._compute_nparams_toprune for a float amount: Python's round (half to even)."""
    return int(round(fraction * count))


def _check(sparsity: float, criterion: str, scope: str, granularity: str, output_scale: float) -> None:
    if not isinstance(sparsity, (int, float)) or math.isnan(sparsity) or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"Sparsity must be a fraction between 0 and 1 (got {sparsity!r}).")
    if criterion not in CRITERIA:
        raise ValueError(f"Unknown criterion {criterion!r}: use one of {', '.join(CRITERIA)}.")
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}: use one of {', '.join(SCOPES)}.")
    if granularity not in GRANULARITIES:
        raise ValueError(f"Unknown granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}.")
    if not 0.0 <= output_scale or math.isnan(output_scale) or sparsity * output_scale > 1.0 + 1e-12:
        raise ValueError(f"The output layer's rate (sparsity × output_scale = {sparsity * output_scale:g}) "
                         "must lie between 0 and 1.")


class _Unit:
    """One prunable layer seen at the chosen granularity: scores and alive flags over its units."""

    def __init__(self, name: str, module: nn.Module, mask: Mask, granularity: str, criterion: str,
                 norm: int, gen: torch.Generator):
        self.name, self.granularity = name, granularity
        w = module.weight.detach().to("cpu", torch.float32)
        m = mask[f"{name}.weight"]
        if granularity == "weight":
            self.alive = m.reshape(-1).bool()
            score = (w * m).abs().reshape(-1)
        else:  # one unit per output neuron / channel; score = norm of its (masked) weights
            rows = (w * m).reshape(w.shape[0], -1)
            self.alive = mask.kept_neurons(name)
            # per-weight normalisation (mean |w| for L1, RMS for L2) makes layers of different fan-in
            # comparable in a global ranking and does not change the order within a layer
            score = rows.norm(p=norm, dim=1) / rows.shape[1] ** (1.0 / norm)
        if criterion == "random":
            score = torch.rand(score.shape, generator=gen)
        self.score = score

    def apply(self, remove: torch.Tensor, mask: Mask) -> None:
        """Zero the units flagged in ``remove`` (a bool vector over units) in ``mask``."""
        key = f"{self.name}.weight"
        if self.granularity == "weight":
            mask[key] = mask[key] * (~remove).reshape(mask[key].shape).float()
        else:
            keep = (~remove).float()
            mask[key] = mask[key] * keep.reshape(-1, *([1] * (mask[key].dim() - 1)))
            bias = f"{self.name}.bias"
            mask[bias] = mask.get(bias, torch.ones_like(keep)) * keep


def _remove_lowest(score: torch.Tensor, alive: torch.Tensor, k: int) -> torch.Tensor:
    """Bool vector flagging the ``k`` alive entries of lowest score (ties broken by position).

    A selection, not a sort: the k-th smallest value v (``kthvalue``, linear time), then everything
    below v and the first of the entries equal to v -- the same set a stable sort would give.
    """
    remove = torch.zeros_like(alive)
    if k <= 0:
        return remove
    idx = torch.nonzero(alive).squeeze(1)
    if k >= idx.numel():
        remove[idx] = True
        return remove
    vals = score[idx]
    v = torch.kthvalue(vals, k).values
    chosen = vals < v
    ties = torch.nonzero(vals == v).squeeze(1)[: k - int(chosen.sum())]
    chosen[ties] = True
    remove[idx[chosen]] = True
    return remove


def _resolve_exclude(model: nn.Module, exclude: Iterable[str]) -> set[str]:
    names = {n for n, _ in weighted_layers(model)}
    out = set()
    for e in exclude:
        layer = e[: -len(".weight")] if e.endswith(".weight") else e
        if layer not in names:
            raise ValueError(f"Cannot exclude {e!r}: the model's layers are {', '.join(sorted(names))}.")
        out.add(layer)
    return out


def _prune(model: nn.Module, sparsity: float, *, relative: bool, criterion: str, scope: str,
           granularity: str, mask: Mapping | None, output_scale: float, exclude: Iterable[str], seed: int,
           norm: int, calibration=None) -> Mask:
    if granularity in ("neuron", "head") and is_language_model(model):  # the GPT's neurons and heads: surgery-aware
        from .gpt_structured import gpt_prune
        if exclude:
            raise ValueError("Structured GPT pruning cuts every block: it takes no excluded layers.")
        return gpt_prune(model, sparsity, unit=granularity, criterion=criterion, scope=scope, mask=mask,
                         relative=relative, seed=seed, calibration=calibration)
    if granularity == "head":
        raise ValueError("Only the GPT has attention heads to prune: choose weights or neurons for this model.")
    if criterion == "activation":
        raise ValueError("The activation criterion scores the GPT's whole MLP neurons and attention heads: choose one "
                         "of those granularities, or magnitude or random for single weights (Wanda, the activation-"
                         "aware criterion for single weights, is on the Language models page).")
    _check(sparsity, criterion, scope, granularity, output_scale)
    layers = weighted_layers(model)
    if not layers:
        raise ValueError("This model has no prunable layer (no Linear or Conv layer with weights).")
    new = Mask.ones(model)
    if mask is not None:
        for k, v in mask.items():
            if k in new and tuple(v.shape) != tuple(new[k].shape):
                raise ValueError(f"Mask entry {k!r} has shape {tuple(v.shape)}, the parameter {tuple(new[k].shape)}.")
            new[k] = torch.as_tensor(v).detach().to("cpu", torch.float32).clone()
    out_name = output_layer_name(model)
    skip = _resolve_exclude(model, exclude)
    out_rate = sparsity * output_scale
    if output_scale == 0 or granularity == "neuron":  # a class cannot be removed
        skip.add(out_name)
    gen = torch.Generator().manual_seed(int(seed))
    units = [_Unit(n, m, new, granularity, criterion, norm, gen) for n, m in layers if n not in skip]
    if not units:
        raise ValueError("Every layer is excluded: nothing is left to prune.")

    def count(rate: float, group: list[_Unit]) -> int:
        alive = sum(int(u.alive.sum()) for u in group)
        if relative:
            return _nprune(rate, alive)
        total = sum(u.alive.numel() for u in group)
        return max(0, _nprune(rate, total) - (total - alive))

    # the output layer is ranked on its own when it is pruned at a different rate
    solo = [u for u in units if u.name == out_name and output_scale != 1.0]
    pooled = [u for u in units if u not in solo]
    groups = [([u], out_rate) for u in solo]
    if scope == "global" and pooled:
        groups.append((pooled, sparsity))
    else:
        groups += [([u], sparsity) for u in pooled]
    for group, rate in groups:
        score = torch.cat([u.score for u in group])
        alive = torch.cat([u.alive for u in group])
        remove = _remove_lowest(score, alive, count(rate, group))
        for u, r in zip(group, torch.split(remove, [u.score.numel() for u in group])):
            u.apply(r, new)
    return new


def prune(model: nn.Module, sparsity: float, *, criterion: str = "magnitude", scope: str = "layer",
          granularity: str = "weight", mask: Mapping | None = None, output_scale: float = 1.0,
          exclude: Iterable[str] = (), seed: int = 0, norm: int = 1, calibration=None) -> Mask:
    """A new ``Mask`` that removes ``sparsity`` of ``model``'s weights (never modifies ``model``).

    Args:
        model: a network whose Linear/Conv weights are ranked (biases are not pruned).
        sparsity: fraction in [0, 1] to remove: of each layer (scope "layer") or of all pooled layers
            (scope "global"); with ``mask`` given, the fraction of the *surviving* weights (or neurons) to
            remove this time, like repeated ``torch.nn.utils.prune`` calls. Count = round(fraction × n).
        criterion: "magnitude" (smallest |w|, or smallest neuron norm, first) or "random".
        scope: "layer" (each layer at the same rate) or "global" (one ranking across layers).
        granularity: "weight" (unstructured) or "neuron" (whole Linear output neurons / Conv output
            channels, with their biases; the output layer's classes are never removed). On the GPT, "neuron"
            cuts whole MLP neurons and "head" whole attention heads (``gpt_structured.gpt_prune``: a neuron's
            or head's group norm, or with criterion "activation" and ``calibration`` the size of what it adds;
            every block keeps at least one; ``output_scale`` and ``norm`` do not apply).
        mask: an existing mask to prune further; its zeros stay zero.
        output_scale: the output layer is pruned at ``sparsity × output_scale`` on its own ranking
            (0 excludes it; Frankle & Carbin prune it at half the rate, 0.5).
        exclude: layer names ("fc1") or weight names ("fc1.weight") to leave untouched.
        seed: fixes the random criterion.
        norm: 1 or 2, the norm ranking neurons (granularity "neuron").
        calibration: token windows for the GPT's "activation" criterion (its heads and neurons only).

    Returns:
        a ``Mask`` with one entry per Linear/Conv weight (and per pruned layer's bias for neurons).

    Example::

        m = prune(model, 0.8, scope="global", output_scale=0.5)
        m = prune(model, 0.2, mask=m)       # a second round: 20 % of what remains
    """
    return _prune(model, sparsity, relative=mask is not None, criterion=criterion, scope=scope,
                  granularity=granularity, mask=mask, output_scale=output_scale, exclude=exclude, seed=seed,
                  norm=norm, calibration=calibration)


def prune_to(model: nn.Module, sparsity: float, *, mask: Mapping | None = None, **kwargs) -> Mask:
    """Like ``prune`` but ``sparsity`` is the overall target (of each layer or of the pool) even when a
    ``mask`` is given: remove round(sparsity × total) − (already removed) more, never restoring any.

    Schedules (``compress_core.pruning.schedules``) give cumulative targets, which is what this takes.
    """
    kwargs.setdefault("criterion", "magnitude")
    kwargs.setdefault("scope", "layer")
    kwargs.setdefault("granularity", "weight")
    kwargs.setdefault("output_scale", 1.0)
    kwargs.setdefault("exclude", ())
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("norm", 1)
    return _prune(model, sparsity, relative=False, mask=mask, **kwargs)


def nm_prune(model: nn.Module, n: int = 2, m: int = 4, *, mask: Mapping | None = None,
             exclude: Iterable[str] = (), include_output: bool = True) -> Mask:
    """Semi-structured N:M mask: in every group of ``m`` consecutive weights along each row's input
    dimension, keep the ``n`` of largest |w| (a shorter last group keeps at most ``n``).

    Args:
        model: the network.
        n, m: keep ``n`` of every ``m`` (2:4 = 50 % sparsity, the pattern of sparse tensor cores).
        mask: an existing mask; already-pruned weights score lowest and stay pruned.
        exclude: layer names to leave dense.
        include_output: prune the output layer too.

    Example::

        m24 = nm_prune(model, 2, 4);  m24.sparsity()   # 0.5 when every row length is a multiple of 4
    """
    if not (isinstance(n, int) and isinstance(m, int) and 0 < n <= m):
        raise ValueError(f"N:M needs whole numbers with 0 < N ≤ M (got {n}:{m}).")
    base = Mask.ones(model)
    if mask is not None:
        base.update({k: torch.as_tensor(v).to("cpu", torch.float32).clone() for k, v in mask.items()})
    skip = _resolve_exclude(model, exclude)
    if not include_output:
        skip.add(output_layer_name(model))
    for name, module in weighted_layers(model):
        if name in skip:
            continue
        key = f"{name}.weight"
        w = (module.weight.detach().to("cpu", torch.float32) * base[key]).abs()
        base[key] = base[key] * nm_keep(w.reshape(w.shape[0], -1), n, m).reshape(w.shape)
    return base


def nm_keep(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """0/1 float32 matrix keeping the ``n`` highest of ``scores`` (rows, cols) in each group of ``m`` consecutive
    columns of every row (a shorter last group keeps at most ``n``). Shared by ``nm_prune`` (|w|) and Wanda's N:M
    variant (|w|·‖X_j‖), so that the two agree when the input norms are uniform."""
    rows, cols = scores.shape
    pad = (-cols) % m  # pad the last group with -inf so padding is never chosen over a weight
    padded = torch.cat([scores.float(), scores.new_full((rows, pad), -math.inf, dtype=torch.float32)], dim=1)
    padded = padded.reshape(rows, -1, m)
    top = padded.topk(min(n, m), dim=2).indices
    return torch.zeros_like(padded).scatter_(2, top, 1.0).reshape(rows, -1)[:, :cols]


def is_nm_sparse(mask: Mapping[str, torch.Tensor], n: int = 2, m: int = 4) -> bool:
    """True when every group of ``m`` consecutive weights (along the input dimension) keeps ≤ ``n``."""
    for k, v in mask.items():
        if not k.endswith(".weight"):
            continue
        rows = v.reshape(v.shape[0], -1)
        pad = (-rows.shape[1]) % m
        groups = torch.cat([rows, rows.new_zeros(rows.shape[0], pad)], 1).reshape(rows.shape[0], -1, m)
        if bool((groups.sum(2) > n).any()):
            return False
    return True


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Module:
    """A pruned copy of ``model``: a deep copy with the masked parameters set to zero."""
    params = dict(model.named_parameters())
    for k, v in mask.items():
        if k not in params:
            raise ValueError(f"Mask names parameter {k!r}, which the model does not have.")
        if tuple(v.shape) != tuple(params[k].shape):
            raise ValueError(f"Mask entry {k!r} has shape {tuple(v.shape)}, the parameter {tuple(params[k].shape)}.")
    out = copy.deepcopy(model)
    apply_mask_(out, mask)
    return out


def threshold(model: nn.Module, mask: Mapping[str, torch.Tensor], layer: str) -> float | None:
    """The magnitude cut of ``layer``: the largest |w| removed (None when nothing was removed)."""
    w = dict(model.named_parameters())[f"{layer}.weight"].detach().cpu().abs()
    removed = w[mask[f"{layer}.weight"] == 0]
    return float(removed.max()) if removed.numel() else None


# surgery lives in its own module; re-exported so ``from compress_core.pruning import shrink`` works
