"""Sweeps over pruning settings: accuracy against sparsity, and per-layer sensitivity.

- ``accuracy_curves``: test accuracy vs sparsity, one-shot (no retraining), one-shot + fine-tuning, and
  iterative prune → fine-tune → repeat (Han et al. 2015, Fig. 5).
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
from .masks import apply_mask, prune, prune_to
from .schedules import Progress, check_target, run_schedule


def accuracy_curves(model: nn.Module, dataset: Dataset, sparsities: Sequence[float], *,
                    finetune: TrainConfig, seed: int = 0, modes: Iterable[str] = ("oneshot", "oneshot_ft", "iterative"),
                    progress: Progress | None = None, **prune_kwargs) -> list[dict]:
    """Test accuracy vs sparsity, one row per (mode, sparsity).

    Modes: "oneshot" (prune the trained model, no retraining), "oneshot_ft" (prune once, then fine-tune
    with ``finetune``), "iterative" (one run along the sorted grid: each point is pruned further from the
    previous fine-tuned point, then fine-tuned -- prune → fine-tune → repeat).
    """
    grid = sorted(float(s) for s in sparsities)
    for s in grid:
        check_target(s)
    modes = list(modes)
    unknown = set(modes) - {"oneshot", "oneshot_ft", "iterative"}
    if unknown:
        raise ValueError(f"Unknown curve mode(s): {', '.join(sorted(unknown))}.")
    base = evaluate(model, dataset.x_test, dataset.y_test)
    rows = [dict(mode=md, sparsity=0.0, test_acc=base.accuracy, test_loss=base.loss) for md in modes]
    work = len(grid) * (("oneshot" in modes) * 0.05 + ("oneshot_ft" in modes) + ("iterative" in modes)) or 1
    done = 0.0

    def tick(amount: float, label: str) -> None:
        nonlocal done
        done += amount
        if progress:
            progress(min(1.0, done / work), label)

    for md in modes:
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
    if granularity == "neuron":
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
