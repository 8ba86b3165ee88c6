"""Gradual pruning inside one training run (Zhu & Gupta 2017, "To prune, or not to prune").

The mask is updated every Δt training steps, from step t0 for n pruning steps, to the cubic target

    s_t = s_f + (s_i − s_f) · (1 − (t − t0) / (n·Δt))³     for t ∈ {t0, t0 + Δt, ..., t0 + n·Δt},

which prunes fast at first, while many redundant weights remain, and slowly near the end, so the network
recovers while it trains. After t0 + n·Δt the mask stays fixed at s_f and training goes on to the end.
Each update ranks the current weights (``prune_to``, magnitude by default, per layer by default): pruned
weights are held at zero by ``train``, so they rank lowest and stay pruned, and the mask only grows. The
update runs inside ``compress_core.train.train`` through its ``step_hook``, so it is mask-aware and as
deterministic as training itself.

It works from scratch (θ0, the paper's setting) or from a trained model (pruning while fine-tuning).
``schedules.run_schedule(model, ds, cubic(...))`` is the discrete alternative: prune to each target, then
fine-tune, outside one training run.

Usage::

    ds = load_dataset("mnist1d")
    cfg = TrainConfig(epochs=20, lr=1e-3)
    sched = GradualSchedule.spanning(0.9, training_iterations(cfg, ds), steps=10, begin=0.25, end=0.75)
    res = gradual_prune(build_model("mlp", ds, seed=0), ds, sched, cfg)
    res.rows            # [{'iteration': t, 'target': s_t, 'sparsity': ...}, ...] at each Δt
    res.test_acc, res.mask.sparsity()
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data import Dataset
from ..train import History, TrainConfig, evaluate, train
from .masks import Mask, apply_mask, prune_to
from .schedules import Progress, check_target, cubic

__all__ = ["GradualResult", "GradualSchedule", "gradual_prune", "training_iterations"]


def training_iterations(config: TrainConfig, dataset: Dataset) -> int:
    """Optimiser steps of one training run: epochs × ceil(training examples / batch size)."""
    return config.epochs * max(1, -(-len(dataset.y_train) // config.batch_size))


@dataclass(frozen=True)
class GradualSchedule:
    """When and how much to prune during training (Zhu & Gupta 2017). Frozen: it hashes and prints."""

    final: float  # s_f, the sparsity reached at t0 + n·Δt and kept to the end
    steps: int = 10  # n, the number of pruning steps after the first update at t0
    interval: int = 10  # Δt, training iterations between two mask updates
    start: int = 0  # t0, the iteration of the first update (0 = before the first step)
    initial: float = 0.0  # s_i, the sparsity set at t0

    def __post_init__(self):
        problems = []
        for name in ("final", "initial"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or math.isnan(v) or not 0.0 <= v <= 1.0:
                problems.append(f"the {name} sparsity must be a fraction between 0 and 1 (got {v!r})")
        if not isinstance(self.steps, int) or self.steps < 1:
            problems.append(f"at least one pruning step is needed (got {self.steps!r})")
        if not isinstance(self.interval, int) or self.interval < 1:
            problems.append(f"the interval Δt must be at least one iteration (got {self.interval!r})")
        if not isinstance(self.start, int) or self.start < 0:
            problems.append(f"the first pruning iteration t0 must be ≥ 0 (got {self.start!r})")
        if not problems and self.initial > self.final:
            problems.append(f"the initial sparsity ({self.initial}) exceeds the final one ({self.final}): "
                            "gradual pruning only removes weights")
        if problems:
            raise ValueError("Invalid gradual pruning schedule: " + "; ".join(problems) + ".")

    @property
    def end(self) -> int:
        """The iteration of the last mask update, t0 + n·Δt."""
        return self.start + self.steps * self.interval

    def targets(self) -> list[tuple[int, float]]:
        """(iteration t, target s_t) of every mask update, t = t0, t0 + Δt, ..., t0 + n·Δt."""
        return [(self.start + i * self.interval, s)
                for i, s in enumerate(cubic(self.final, self.steps, self.initial))]

    def sparsity_at(self, t: int) -> float:
        """The target in force after iteration t: 0 before t0 (dense), then s at the last update ≤ t."""
        if t < self.start:
            return 0.0
        i = min(self.steps, (t - self.start) // self.interval)
        return self.targets()[i][1]

    @classmethod
    def spanning(cls, final: float, total_iterations: int, *, steps: int = 10, begin: float = 0.0,
                 end: float = 0.75, initial: float = 0.0) -> "GradualSchedule":
        """A schedule whose updates run from ``begin`` to about ``end`` (fractions) of a training run of
        ``total_iterations`` steps: t0 = floor(begin·T), Δt = max(1, floor((end − begin)·T / n)).

        Example::

            GradualSchedule.spanning(0.9, 1000, steps=10, begin=0.2, end=0.7)
            # GradualSchedule(final=0.9, steps=10, interval=50, start=200, initial=0.0)
        """
        if not 0.0 <= begin < end <= 1.0:
            raise ValueError(f"Pruning must begin before it ends, within training: 0 ≤ begin < end ≤ 1 "
                             f"(got begin={begin!r}, end={end!r}).")
        t0 = int(begin * total_iterations + 1e-9)
        span = int((end - begin) * total_iterations + 1e-9)  # (the epsilon: 0.7 − 0.2 is 0.4999...)
        steps = max(1, min(int(steps), span))
        return cls(final=float(final), steps=steps, interval=max(1, span // steps), start=t0, initial=float(initial))


@dataclass
class GradualResult:
    """One row per mask update, the final mask and weights, the training history and the test metrics."""

    rows: list[dict] = field(default_factory=list)  # iteration, target, sparsity
    mask: Mask | None = None
    state: dict[str, torch.Tensor] | None = None  # final weights (masked)
    history: History | None = None
    test_acc: float = float("nan")
    test_loss: float = float("nan")


def gradual_prune(model: nn.Module, dataset: Dataset, schedule: GradualSchedule, config: TrainConfig, *,
                  seed: int = 0, progress: Progress | None = None, **prune_kwargs) -> GradualResult:
    """Train a copy of ``model`` with ``config`` while its mask follows ``schedule`` (Zhu & Gupta 2017).

    Args:
        model: the starting network, not modified: freshly initialised (from scratch) or trained.
        dataset: data for training and measuring.
        schedule: the ``GradualSchedule`` (s_i, s_f, t0, Δt, n); its last update must fall within training.
        config: the one training run the pruning happens in (T = ``training_iterations(config, dataset)``).
        seed: the batch order (and the random criterion's draw).
        progress: called with (fraction done, label) at each training evaluation.
        prune_kwargs: passed to ``prune_to`` (criterion, scope, granularity, output_scale, exclude, norm).

    Returns:
        a ``GradualResult``; ``rows`` hold, for each update, the iteration t, the target s_t and the
        sparsity reached (equal to s_t up to rounding to whole weights per layer or pool).
    """
    check_target(schedule.final)
    steps = training_iterations(config, dataset)
    if schedule.end > steps:
        raise ValueError(f"The last pruning step (iteration t0 + n·Δt = {schedule.end}) falls after the end of "
                         f"training ({steps} iterations): train longer, or prune in fewer or closer steps.")
    due = dict(schedule.targets())
    net = apply_mask(model, Mask.ones(model))  # a copy
    res = GradualResult(mask=Mask.ones(net))

    def hook(t: int, m: nn.Module) -> Mask | None:
        if t not in due:
            return None
        res.mask = prune_to(m, due[t], mask=res.mask, seed=seed, **prune_kwargs)
        res.rows.append(dict(iteration=t, target=float(due[t]), sparsity=res.mask.sparsity()))
        return res.mask

    def cb(rec: dict) -> None:
        if progress:
            progress(min(1.0, rec["iteration"] / max(1, steps)),
                     f"iteration {rec['iteration']}/{steps}: {res.mask.sparsity():.1%} sparse")

    res.history = train(net, dataset, config, seed=seed, step_hook=hook, callback=cb)
    net.eval()
    met = evaluate(net, dataset.x_test, dataset.y_test)
    res.test_acc, res.test_loss = met.accuracy, met.loss
    res.state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    res.mask = Mask({k: v.cpu() for k, v in res.mask.items()})
    return res
