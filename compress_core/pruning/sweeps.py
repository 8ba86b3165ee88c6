"""Sweeps over pruning settings: accuracy against sparsity, and per-layer sensitivity.

- ``accuracy_curves``: test accuracy vs sparsity, one-shot (no retraining), one-shot + fine-tuning,
  iterative prune → fine-tune → repeat (Han et al. 2015, Fig. 5), and gradual pruning inside one training
  run (Zhu & Gupta 2017), from the trained model or from scratch.
- ``sparsity_sensitivity``: prune one layer at a time, the others dense (Han et al. 2015, Fig. 6;
  Li et al. 2017): the layers that tolerate heavy pruning are the redundant ones.

Usage::

    rows = accuracy_curves(b.model, ds, [0.5, 0.8, 0.9, 0.95], finetune=TrainConfig(epochs=2, lr=3e-4))
    scan = sparsity_sensitivity(b.model, ds, [0.5, 0.9, 0.99])
"""
from __future__ import annotations

from typing import Iterable, Sequence

from torch import nn

from ..data import Dataset
from ..models import output_layer_name, weighted_layers
from ..train import TrainConfig, evaluate, train
from .gradual import GradualSchedule, gradual_prune, training_iterations
from .masks import apply_mask, prune, prune_to
from .schedules import Progress, check_target, run_schedule

CURVE_MODES = ("oneshot", "oneshot_ft", "iterative", "gradual", "gradual_scratch")
# Gradual curves prune with Zhu & Gupta's cubic in GRADUAL_STEPS updates, from the start of the run (fine-tuning
# a trained model) or from a quarter of it (from scratch, once the weights mean something), until 3/4 of
# the run; the last quarter trains at the final sparsity.
GRADUAL_STEPS = 10
GRADUAL_SPAN = {"gradual": (0.0, 0.75), "gradual_scratch": (0.25, 0.75)}


def accuracy_curves(model: nn.Module, dataset: Dataset, sparsities: Sequence[float], *,
                    finetune: TrainConfig, seed: int = 0, modes: Iterable[str] = ("oneshot", "oneshot_ft", "iterative"),
                    progress: Progress | None = None, init_model: nn.Module | None = None,
                    scratch_train: TrainConfig | None = None, **prune_kwargs) -> list[dict]:
    """Test accuracy vs sparsity, one row per (mode, sparsity).

    Modes (``CURVE_MODES``):

    - "oneshot": prune the trained model, no retraining;
    - "oneshot_ft": prune once, then fine-tune with ``finetune``;
    - "iterative": one run along the sorted grid: each point is pruned further from the previous fine-tuned
      point, then fine-tuned (prune → fine-tune → repeat);
    - "gradual": Zhu & Gupta 2017, per point one ``finetune`` run from the trained model in which the mask
      follows the cubic s_t (``GRADUAL_STEPS`` updates over the first 3/4 of the run, ``GRADUAL_SPAN``);
    - "gradual_scratch": the same inside one ``scratch_train`` run (default: ``finetune``) from
      ``init_model`` (θ0, required), pruning from 1/4 to 3/4 of the run: the paper's setting.

    Args:
        init_model: the untrained network (e.g. ``baseline.build(baseline.init_state)``), for "gradual_scratch".
        scratch_train: the training run of "gradual_scratch" (e.g. the baseline's own recipe).
    """
    grid = sorted(float(s) for s in sparsities)
    for s in grid:
        check_target(s)
    modes = list(modes)
    unknown = set(modes) - set(CURVE_MODES)
    if unknown:
        raise ValueError(f"Unknown curve mode(s): {', '.join(sorted(unknown))}. Valid modes: {', '.join(CURVE_MODES)}.")
    if "gradual_scratch" in modes and init_model is None:
        raise ValueError("The 'gradual_scratch' curve trains from the initial weights: pass init_model.")
    scratch_train = scratch_train or finetune
    base = evaluate(model, dataset.x_test, dataset.y_test)
    rows = [dict(mode=md, sparsity=0.0, test_acc=base.accuracy, test_loss=base.loss) for md in modes
            if md != "gradual_scratch"]
    # work in fine-tuning runs; a from-scratch run counts as its length in fine-tuning runs
    cost = {"oneshot": 0.05, "oneshot_ft": 1.0, "iterative": 1.0, "gradual": 1.0,
            "gradual_scratch": max(1.0, scratch_train.epochs / max(1, finetune.epochs))}
    work = len(grid) * sum(cost[md] for md in modes) or 1
    done = 0.0

    def tick(amount: float, label: str) -> None:
        nonlocal done
        done += amount
        if progress:
            progress(min(1.0, done / work), label)

    for md in modes:
        if md in GRADUAL_SPAN:
            start, cfg = (model, finetune) if md == "gradual" else (init_model, scratch_train)
            begin, end = GRADUAL_SPAN[md]
            for s in grid:
                sched = GradualSchedule.spanning(s, training_iterations(cfg, dataset), steps=GRADUAL_STEPS,
                                                 begin=begin, end=end)
                res = gradual_prune(start, dataset, sched, cfg, seed=seed, **prune_kwargs)
                rows.append(dict(mode=md, sparsity=res.mask.sparsity(), test_acc=res.test_acc,
                                 test_loss=res.test_loss))
                tick(cost[md], f"{md}, {s:.1%}")
            continue
        if md == "iterative":
            res = run_schedule(model, dataset, grid, finetune=finetune, seed=seed,
                               progress=lambda f, lab: tick(1.0, f"iterative, {lab}"), **prune_kwargs)
            rows += [dict(mode=md, sparsity=r["sparsity"], test_acc=r["test_acc"], test_loss=r["test_loss"])
                     for r in res.rows]
            continue
        for s in grid:
            m = prune_to(model, s, seed=seed, **prune_kwargs)
            net = apply_mask(model, m)
            if md == "oneshot_ft" and finetune.epochs > 0:
                train(net, dataset, finetune, seed=seed, mask=m)
            met = evaluate(net, dataset.x_test, dataset.y_test)
            rows.append(dict(mode=md, sparsity=m.sparsity(), test_acc=met.accuracy, test_loss=met.loss))
            tick(0.05 if md == "oneshot" else 1.0, f"{md}, {s:.1%}")
    return rows


def sparsity_sensitivity(model: nn.Module, dataset: Dataset, sparsities: Sequence[float], *,
                     criterion: str = "magnitude", granularity: str = "weight", seed: int = 0, norm: int = 1,
                     progress: Progress | None = None) -> list[dict]:
    """Prune one layer at a time (the others stay dense) over ``sparsities``; measure test accuracy.

    The layers that tolerate heavy pruning are the redundant ones (Han et al. 2015, Fig. 6; Li et al.
    2017). Returns rows {layer, sparsity, test_acc, test_loss}; with granularity "neuron" the output
    layer (whose rows are classes) is skipped.
    """
    layers = [n for n, _ in weighted_layers(model)]
    if not layers:
        raise ValueError("This model has no prunable layer (no Linear or Conv layer with weights).")
    if granularity == "neuron" and output_layer_name(model) in layers:
        layers.remove(output_layer_name(model))
    grid = sorted(float(s) for s in sparsities)
    rows, n, i = [], len(layers) * len(grid), 0
    for layer in layers:
        others = [x for x in (n_ for n_, _ in weighted_layers(model)) if x != layer]
        for s in grid:
            m = prune(model, s, criterion=criterion, granularity=granularity, exclude=others, seed=seed, norm=norm)
            met = evaluate(apply_mask(model, m), dataset.x_test, dataset.y_test)
            rows.append(dict(layer=layer, sparsity=m.sparsity(layer), test_acc=met.accuracy, test_loss=met.loss))
            i += 1
            if progress:
                progress(i / n, f"{layer} at {s:.0%}")
    return rows
