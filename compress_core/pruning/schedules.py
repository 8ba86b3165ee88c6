"""Pruning schedules (when and how much to prune) and ``run_schedule``, which walks one.

Schedules are plain functions returning the list of cumulative target sparsities, in the spirit of
Torch-Pruning's schedulers:

- ``one_shot(s)``: prune once to s (then optionally fine-tune).
- ``iterative(s, rate=0.2)``: prune a fixed fraction of what remains, fine-tune, repeat (Han et al. 2015;
  Frankle & Carbin 2019 use 20 % per round): targets 1 − (1 − rate)^r, the last clipped to s.
- ``cubic(s_f, steps, s_i=0)``: gradual pruning during training (Zhu & Gupta 2017, "To prune, or not to
  prune"): s_t = s_f + (s_i − s_f)(1 − t/n)³ for t = 0..n -- fast at first, when many redundant weights
  remain, and slowly near the end.

``run_schedule`` walks a schedule: prune to each target on the current weights (``prune_to``), fine-tune
with the mask enforced, measure. Sweeps over many settings (curves, sensitivity) live in ``pruning.sweeps``.

Usage::

    b = get_baseline("digits", "mlp")
    ds = load_dataset("digits")
    res = run_schedule(b.model, ds, iterative(0.95, rate=0.3), finetune=TrainConfig(epochs=3, lr=3e-4))
    res.rows[-1]["test_acc"], res.mask.sparsity()
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..data import Dataset
from ..train import TrainConfig, evaluate, train
from .masks import Mask, apply_mask, prune_to

Progress = Callable[[float, str], None]  # (fraction done, what is running)


def check_target(s: float) -> None:
    if not isinstance(s, (int, float)) or math.isnan(s) or not 0.0 <= s <= 1.0:
        raise ValueError(f"Target sparsity must be a fraction between 0 and 1 (got {s!r}).")


def one_shot(final: float) -> list[float]:
    """[final]: prune once."""
    check_target(final)
    return [float(final)]


def iterative(final: float, rate: float = 0.2, max_rounds: int = 200) -> list[float]:
    """Cumulative sparsities when each round removes ``rate`` of the surviving weights, up to ``final``.

    Example::

        iterative(0.5, rate=0.2)  # [0.2, 0.36, 0.488, 0.5]
    """
    check_target(final)
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
    check_target(final)
    if rounds < 1:
        raise ValueError("At least one round is needed.")
    return 1.0 - (1.0 - final) ** (1.0 / rounds)


def cubic(final: float, steps: int, initial: float = 0.0) -> list[float]:
    """Zhu & Gupta (2017): s_t = s_f + (s_i − s_f)(1 − t/n)³ for t = 0, 1, ..., n (n = ``steps``)."""
    check_target(final)
    check_target(initial)
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
