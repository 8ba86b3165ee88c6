"""One position of the Pruning page's controls, computed: the mask, the pruned model, its metrics, and
plain-words warnings about settings that break the network.

``PruneSettings`` is the frozen description of what to do (it hashes, so it keys caches and links);
``prune_with(model, dataset, settings)`` does it: one-shot, iterative (prune → fine-tune → repeat with a
constant per-round rate, Han et al. 2015) or gradual (Zhu & Gupta 2017's cubic schedule), with weights,
neurons/channels (Li et al. 2017) or N:M groups (Mishra et al. 2021).

Usage::

    s = PruneSettings(sparsity=0.9, scope="global")
    out = prune_with(baseline.model, ds, s)
    out.metrics.accuracy, out.mask.sparsity(), out.warnings
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import Config, param
from ..data import Dataset
from ..models import is_language_model, output_layer_name
from ..train import Metrics, TrainConfig, evaluate, train
from .masks import Mask, apply_mask, nm_prune, prune_to
from .ranking import Ranking
from .schedules import cubic, rounds_rate, run_schedule
from .structured import kept_units

SCHEDULES = ("one-shot", "iterative", "gradual")


@dataclass(frozen=True)
class PruneSettings(Config):
    """What to prune and how. Frozen: it hashes (cache keys) and round-trips through JSON."""

    sparsity: float = param(0.5, "target fraction of weights (or neurons) removed")
    criterion: str = param("magnitude", "'magnitude' (smallest |w| first), 'random', or for the GPT's heads and "
                                        "neurons 'activation' (the size of what each adds, on calibration windows)")
    scope: str = param("layer", "'layer': every layer at the same rate; 'global': one ranking across layers")
    granularity: str = param("weight", "'weight', 'neuron' (whole neurons/channels; the GPT's MLP neurons), "
                                       "'head' (the GPT's attention heads) or 'nm' (N:M semi-structured)")
    output_scale: float = param(1.0, "the output layer's rate = sparsity × this (0 = not pruned)")
    schedule: str = param("one-shot", "'one-shot', 'iterative' (constant rate per round) or 'gradual' (cubic)")
    rounds: int = param(4, "pruning steps of the iterative and gradual schedules")
    finetune_epochs: int = param(0, "training epochs after each pruning step")
    # SGD with momentum 0.9 recovered more than Adam in our runs (see bench)
    finetune_lr: float = param(0.03, "fine-tuning learning rate")
    finetune_optimizer: str = param("sgd", "fine-tuning optimizer: 'sgd' (momentum 0.9) or 'adam'")
    n: int = param(2, "N of the N:M pattern: weights kept in each group")
    m: int = param(4, "M of the N:M pattern: consecutive weights per group")
    seed: int = param(0, "fixes the random ranking and the fine-tuning batch order")

    def problems(self):
        if self.schedule not in SCHEDULES:
            yield f"Unknown schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}."
        if self.rounds < 1 or self.finetune_epochs < 0:
            yield "Rounds must be ≥ 1 and fine-tuning epochs ≥ 0."

    def targets(self) -> list[float]:
        """Cumulative sparsities of the schedule's pruning steps."""
        if self.schedule == "one-shot" or self.granularity == "nm":
            return [self.sparsity]
        if self.schedule == "iterative":
            p = rounds_rate(self.sparsity, self.rounds)
            return [1.0 - (1.0 - p) ** r for r in range(1, self.rounds)] + [self.sparsity]
        return cubic(self.sparsity, self.rounds)[1:]

    def finetune(self, batch_size: int = 64) -> TrainConfig | None:
        if self.finetune_epochs == 0:
            return None
        return TrainConfig(epochs=self.finetune_epochs, lr=self.finetune_lr, batch_size=batch_size,
                           optimizer=self.finetune_optimizer)


@dataclass
class PruneOutcome:
    mask: Mask
    model: nn.Module  # the pruned (and fine-tuned) copy
    metrics: Metrics  # test accuracy and loss
    steps: list[dict] = field(default_factory=list)  # one row per schedule step
    warnings: list[str] = field(default_factory=list)  # plain words for the page


def diagnose(model: nn.Module, mask: Mask, settings: PruneSettings) -> list[str]:
    """Plain-words warnings about a mask: cut layers, a removed output layer, rates that round to nothing."""
    if cuts_gpt_units(model, settings):
        from .gpt_structured import gpt_warnings
        return gpt_warnings(model, mask, settings.sparsity, settings.granularity, settings.scope)
    out = []
    dead = mask.dead_layers()
    out_name = output_layer_name(model)
    if out_name in dead:
        out.append(f"The output layer ({out_name}) has no weight left: every input gets the same prediction. "
                   "Lower the sparsity or prune the output layer at a lower rate.")
    hidden_dead = [d for d in dead if d != out_name]
    if hidden_dead:
        out.append(f"Layer {', '.join(hidden_dead)} has 100 % sparsity: nothing flows through it, so the "
                   "network's output no longer depends on its input. Lower the sparsity"
                   + (" or prune per layer instead of globally." if settings.scope == "global" else "."))
    if settings.granularity == "neuron":
        empty = [n for n, k in kept_units(model, mask).items() if not bool(k.any())]
        if empty and not hidden_dead:
            out.append(f"Layer {', '.join(empty)} keeps no neuron: the network is cut in two.")
    if settings.sparsity > 0 and settings.granularity != "nm":
        if mask.pruned() == 0:
            out.append(f"A sparsity of {settings.sparsity:.2%} rounds to nothing here: no weight was removed "
                       "(each layer prunes round(sparsity × its size) weights).")
        else:
            zero = [n for n, s in mask.layer_sparsity().items() if s == 0.0
                    and not (n == out_name and (settings.output_scale == 0 or settings.granularity == "neuron"))]
            if zero and settings.scope == "layer":
                out.append(f"In layer {', '.join(zero)} the sparsity rounds to zero weights: it stays dense.")
    return out


def prune_with(model: nn.Module, dataset: Dataset, settings: PruneSettings, batch_size: int = 64,
               ranking: Ranking | None = None) -> PruneOutcome:
    """Prune ``model`` (never modified) as ``settings`` say; fine-tune if asked; measure on the test split.

    ``ranking``: ``ranking_for(model, settings)``, built once and reused across sparsities: without fine-tuning
    the mask is then one comparison per weight instead of a fresh ranking (the same mask, tested).

    Raises ValueError (plain words) for impossible settings, e.g. an output rate above 100 %.
    """
    s = settings
    ft = s.finetune(batch_size)
    _check_criterion(model, s)
    if s.granularity == "nm":
        mask = nm_prune(model, s.n, s.m, include_output=s.output_scale > 0)
        net = apply_mask(model, mask)
        if ft is not None:
            train(net, dataset, ft, seed=s.seed, mask=mask)
        steps = []
    else:
        kw = dict(criterion=s.criterion, scope=s.scope, granularity=s.granularity, output_scale=s.output_scale,
                  calibration=calibration_for(model, dataset, s))
        if ft is None:  # no training between steps: ranking the same weights again gives the same mask
            mask = ranking.mask(s.sparsity) if ranking is not None else prune_to(model, s.sparsity, seed=s.seed, **kw)
            net, steps = apply_mask(model, mask), []
        else:
            res = run_schedule(model, dataset, s.targets(), finetune=ft, seed=s.seed, **kw)
            mask, steps = res.mask, res.rows
            net = apply_mask(model, mask)
            net.load_state_dict(res.state)
    net.to("cpu").eval()
    metrics = evaluate(net, dataset.x_test, dataset.y_test)
    return PruneOutcome(mask=mask, model=net, metrics=metrics, steps=steps, warnings=diagnose(model, mask, s))


GPT_CALIBRATION = 64  # training windows (64 characters each) the GPT's activation criterion scores units on


def cuts_gpt_units(model: nn.Module, settings: PruneSettings) -> bool:
    """True when ``settings`` cut whole MLP neurons or attention heads out of a GPT (``gpt_structured``)."""
    return settings.granularity in ("neuron", "head") and is_language_model(model)


def _check_criterion(model: nn.Module, settings: PruneSettings) -> None:
    if settings.criterion == "activation" and not cuts_gpt_units(model, settings):
        raise ValueError("The activation criterion scores the GPT's whole MLP neurons and attention heads: choose "
                         "one of those granularities, or magnitude or random.")


def calibration_for(model: nn.Module, dataset: Dataset, settings: PruneSettings):
    """The calibration windows the criterion of ``settings`` reads (the GPT's activation criterion), else None."""
    if settings.criterion == "activation" and cuts_gpt_units(model, settings):
        return dataset.x_train[:GPT_CALIBRATION]
    return None


def extra_training_control(model: nn.Module, dataset: Dataset, settings: PruneSettings,
                           batch_size: int = 64) -> Metrics | None:
    """The control for a fine-tuned result: the dense model (never modified) trained exactly as the pruned one
    was -- the same fine-tuning runs (one per schedule step, step i with seed + i, a fresh optimizer each), no
    mask -- then measured on the test split. None without fine-tuning.

    Extra epochs can help a model that stopped early or over-fitted; the fair question is whether the pruned
    model matches *this* number, not the baseline's.
    """
    ft = settings.finetune(batch_size)
    if ft is None:
        return None
    net = copy.deepcopy(model)
    for i in range(len(settings.targets())):  # one run per pruning step (2:4 and one-shot: one)
        train(net, dataset, ft, seed=settings.seed + i)
    return evaluate(net.to("cpu").eval(), dataset.x_test, dataset.y_test)


def ranking_for(model: nn.Module, settings: PruneSettings) -> Ranking | None:
    """The ``Ranking`` that ``prune_with`` can reuse for every sparsity of these settings (None for 2:4)."""
    s = settings
    _check_criterion(model, s)
    if s.granularity == "nm" or cuts_gpt_units(model, s):
        return None  # (the GPT's heads and neurons: gpt_prune ranks a few hundred units, no ranking to keep)
    return Ranking(model, criterion=s.criterion, scope=s.scope, granularity=s.granularity,
                   output_scale=s.output_scale, seed=s.seed)


@torch.no_grad()
def weight_values(model: nn.Module, layer: str) -> torch.Tensor:
    """The layer's weights as a flat CPU tensor (for histograms)."""
    return dict(model.named_parameters())[f"{layer}.weight"].detach().cpu().reshape(-1)
