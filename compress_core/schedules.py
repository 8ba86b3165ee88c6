"""Pruning schedules (when and how much to prune) and the runs built on them: curves and sensitivity.

Schedules are plain functions returning the list of cumulative target sparsities, in the spirit of
Torch-Pruning's schedulers:

- ``one_shot(s)``: prune once to s (then optionally fine-tune).
- ``iterative(s, rate=0.2)``: prune a fixed fraction of what remains, fine-tune, repeat (Han et al. 2015;
  Frankle & Carbin 2019 use 20 % per round): targets 1 − (1 − rate)^r, the last clipped to s.
- ``cubic(s_f, steps, s_i=0)``: gradual pruning during training (Zhu & Gupta 2017, "To prune, or not to
  prune"): s_t = s_f + (s_i − s_f)(1 − t/n)³ for t = 0..n -- fast at first, when many redundant weights
  remain, and slowly near the end.

``run_schedule`` walks a schedule: prune to each target on the current weights (``prune_to``), fine-tune
with the mask enforced, measure. ``accuracy_curves`` and ``sensitivity_scan`` give the page's charts.

Usage::

    b = get_baseline("digits", "mlp")
    ds = load_dataset("digits")
    res = run_schedule(b.model, ds, iterative(0.95, rate=0.3), finetune=TrainConfig(epochs=3, lr=3e-4))
    res.rows[-1]["test_acc"], res.mask.sparsity()
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .data import Dataset
from .models import output_layer_name, weighted_layers
from .pruning import Mask, apply_mask, prune, prune_to
from .train import TrainConfig, evaluate, train

Progress = Callable[[float, str], None]  # (fraction done, what is running)


def _check_target(s: float) -> None:
    if not isinstance(s, (int, float)) or math.isnan(s) or not 0.0 <= s <= 1.0:
        raise ValueError(f"Target sparsity must be a fraction between 0 and 1 (got {s!r}).")


def one_shot(final: float) -> list[float]:
    """[final]: prune once."""
    _check_target(final)
    return [float(final)]


def iterative(final: float, rate: float = 0.2, max_rounds: int = 200) -> list[float]:
    """Cumulative sparsities when each round removes ``rate`` of the surviving weights, up to ``final``.

    Example::

        iterative(0.5, rate=0.2)  # [0.2, 0.36, 0.488, 0.5]
    """
    _check_target(final)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"The per-round rate must lie strictly between 0 and 1 (got {rate!r}).")
    out, remaining = [], 1.0
    while len(out) < max_rounds:
        remaining *= 1.0 - rate
        s = 1.0 - remaining
        if s >= final - 1e-12:
            out.append(float(final))
            break
        out.append(s)
    return out


def rounds_rate(final: float, rounds: int) -> float:
    """The per-round rate p with 1 − (1 − p)^rounds = final: reach ``final`` in exactly ``rounds`` rounds."""
    _check_target(final)
    if rounds < 1:
        raise ValueError("At least one round is needed.")
    return 1.0 - (1.0 - final) ** (1.0 / rounds)


def cubic(final: float, steps: int, initial: float = 0.0) -> list[float]:
    """Zhu & Gupta (2017): s_t = s_f + (s_i − s_f)(1 − t/n)³ for t = 0, 1, ..., n (n = ``steps``)."""
    _check_target(final)
    _check_target(initial)
    if steps < 1:
        raise ValueError("The cubic schedule needs at least one pruning step.")
    return [final + (initial - final) * (1.0 - t / steps) ** 3 for t in range(steps + 1)]


@dataclass
class ScheduleResult:
    """One row per pruning step (sparsity reached, accuracy right after pruning and after fine-tuning)."""

    rows: list[dict] = field(default_factory=list)
    mask: Mask | None = None
    state: dict[str, torch.Tensor] | None = None  # final weights (masked)


def run_schedule(model: nn.Module, dataset: Dataset, targets: Sequence[float], *,
                 finetune: TrainConfig | None = None, seed: int = 0, mask: Mask | None = None,
                 progress: Progress | None = None, **prune_kwargs) -> ScheduleResult:
    """Prune ``model`` (a copy) to each target in turn, fine-tuning after each step.

    Args:
        model: the trained network (not modified).
        dataset: data for fine-tuning and measuring.
        targets: cumulative sparsities, e.g. ``iterative(0.95)`` or ``cubic(0.9, 10)``.
        finetune: training after each pruning step (None or 0 epochs = no fine-tuning).
        seed: fine-tuning batch order (step i uses seed + i) and the random criterion.
        mask: a starting mask.
        progress: called with (fraction done, label).
        prune_kwargs: passed to ``prune_to`` (criterion, scope, granularity, output_scale, exclude, norm).

    Returns:
        a ``ScheduleResult``; each row holds step, target, sparsity, acc_pruned/loss_pruned (before
        fine-tuning) and test_acc/test_loss (after).
    """
    net = apply_mask(model, mask) if mask else apply_mask(model, Mask.ones(model))
    res = ScheduleResult(mask=mask)
    for i, target in enumerate(targets):
        m = prune_to(net, target, mask=res.mask, seed=seed + i, **prune_kwargs)
        net = apply_mask(net, m)
        before = evaluate(net, dataset.x_test, dataset.y_test)
        if finetune is not None and finetune.epochs > 0:
            train(net, dataset, finetune, seed=seed + i, mask=m)
            net.eval()
        after = evaluate(net, dataset.x_test, dataset.y_test)
        res.mask = m
        res.rows.append(dict(step=i + 1, target=float(target), sparsity=m.sparsity(), acc_pruned=before.accuracy,
                             loss_pruned=before.loss, test_acc=after.accuracy, test_loss=after.loss))
        if progress:
            progress((i + 1) / len(targets), f"step {i + 1}/{len(targets)}: {m.sparsity():.1%} sparse")
    res.state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return res


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
        _check_target(s)
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


def sensitivity_scan(model: nn.Module, dataset: Dataset, sparsities: Sequence[float], *,
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
