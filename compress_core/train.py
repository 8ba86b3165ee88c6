"""Deterministic, mask-aware training and evaluation.

The same seed gives bit-identical weights on the same machine: the seed fixes the order of the
mini-batches (a private ``torch.Generator``), and nothing else in training is random. Across torch thread
counts weights agree only to rounding: the CPU matrix products split their sums over the batch by thread
(the first step's output-layer weight gradient already differs in the last bit between 1 and 2 threads),
and training amplifies that; recipes are chosen so the accuracy they reach does not depend on it.

A mask (a mapping from parameter name to a 0/1 tensor of the same shape, such as
``compress_core.pruning.Mask``) stays enforced throughout: masked gradients are zeroed before each
step, so optimiser state never sees them, and masked weights are re-zeroed after it. This is what
pruning with fine-tuning and lottery-ticket training need.

Usage::

    ds = load_dataset("digits")
    model = build_model("mlp", ds, seed=0)
    history = train(model, ds, TrainConfig(epochs=5), seed=0)
    evaluate(model, ds.x_test, ds.y_test).accuracy
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from . import optim
from .data import Dataset
from .settings import TrainConfig  # noqa: F401  (re-exported)


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with PyTorch on ``n`` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    loss: float  # mean cross-entropy in nats

    @property
    def bits(self) -> float:
        """The mean cross-entropy in bits: bits per character for a character-level language model."""
        return self.loss / math.log(2)


@dataclass
class History:
    """What happened during training: one record per evaluation point."""

    records: list[dict] = field(default_factory=list)  # iteration, epoch, train_loss, val_*, test_*
    iterations: int = 0  # iteration reached, counted from the start of training (start_iteration + steps)
    stopped: bool = False  # True when the callback asked to stop early
    seconds: float = 0.0
    rewind_state: dict | None = None  # weights at TrainConfig.rewind_iteration, if reached
    best_iteration: int | None = None  # with TrainConfig.keep_best: the iteration whose weights were kept
    start_iteration: int = 0  # iteration training resumed from (k for a network rewound to θk), else 0

    @property
    def steps(self) -> int:
        """Optimiser steps taken in this call (``iterations`` counts from the start of training)."""
        return self.iterations - self.start_iteration

    def column(self, key: str) -> list:
        return [r[key] for r in self.records]

    def early_stop_iteration(self) -> int:
        """Iteration of minimum validation loss (Frankle & Carbin's 'early-stopping iteration')."""
        if not self.records:
            return 0
        return min(self.records, key=lambda r: r["val_loss"])["iteration"]

    def to_dict(self) -> dict:
        return {"records": self.records, "iterations": self.iterations, "stopped": self.stopped,
                "seconds": self.seconds, "start_iteration": self.start_iteration}

    @classmethod
    def from_dict(cls, d: Mapping) -> "History":
        return cls(records=list(d["records"]), iterations=int(d["iterations"]),
                   stopped=bool(d["stopped"]), seconds=float(d["seconds"]),
                   start_iteration=int(d.get("start_iteration", 0)))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> Metrics:
    """Accuracy (fraction correct) and mean cross-entropy of ``model`` on ``(x, y)``: per example for a classifier,
    per target token for a language model (``y`` of (N, T) next tokens, logits of (N, classes, T))."""
    return evaluate_examples(model, x, y, batch_size)[0]


def evaluate_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 4096) -> tuple[Metrics, torch.Tensor]:
    """``evaluate``'s metrics and, from the same pass, which predictions were right (a bool tensor shaped like
    ``y``): what a comparison paired example by example (``stats.compare_paired``) needs."""
    if len(y) == 0:
        raise ValueError("Cannot evaluate on an empty set.")
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    right, loss = [], 0.0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            out = model(xb)
            loss += F.cross_entropy(out, yb, reduction="sum").item()
            right.append((out.argmax(1) == yb).cpu())
    model.train(was_training)
    ok = torch.cat(right)
    return Metrics(accuracy=int(ok.sum()) / y.numel(), loss=loss / y.numel()), ok


@torch.no_grad()
def apply_mask_(model: nn.Module, mask: Mapping[str, torch.Tensor] | None) -> None:
    """Zero the masked entries of ``model``'s parameters in place."""
    if not mask:
        return
    params = dict(model.named_parameters())
    for name, m in mask.items():
        if name not in params:
            raise ValueError(f"Mask names parameter {name!r}, which the model does not have.")
        params[name].mul_(m.to(params[name].device, params[name].dtype))


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's state dict (safe to keep while training continues)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _optimizer(model: nn.Module, cfg: TrainConfig) -> optim.Optimizer:
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


ProgressCallback = Callable[[dict], "bool | None"]
# Called after every optimiser step with (iteration, model); may return a new mask, enforced from then on.
StepHook = Callable[[int, nn.Module], "Mapping[str, torch.Tensor] | None"]
# The training loss of one mini-batch from (model outputs, inputs, targets); cross-entropy by default.
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def train(model: nn.Module, dataset: Dataset, config: TrainConfig = TrainConfig(), *, seed: int = 0,
          mask: Mapping[str, torch.Tensor] | None = None, callback: ProgressCallback | None = None,
          device: torch.device | None = None, start_iteration: int = 0,
          step_hook: StepHook | None = None, loss_fn: LossFn | None = None) -> History:
    """Train ``model`` in place on ``dataset``'s training split.

    Args:
        model: the network; its parameters are updated in place.
        dataset: a ``Dataset``; validation and test metrics are recorded at each evaluation point.
        config: hyperparameters (``TrainConfig``).
        seed: fixes the mini-batch order.
        mask: optional {parameter name: 0/1 tensor}; masked weights and their gradients stay zero.
        callback: called with each evaluation record (a dict with ``epoch``, ``iteration``,
            ``val_acc``...); return ``False`` to stop training after that point.
        device: where to train; CUDA when present by default.
        start_iteration: resume a run of ``config`` at iteration k (a network rewound to θk, Frankle et
            al. 2020): only the remaining T − k steps are taken, on the mini-batches the full run would
            use from step k + 1 on (the seeded order is drawn exactly as in a full run, the first k
            batches skipped), and iterations (records, evaluation points) count from the start of
            training, not from k.
        step_hook: called after every optimiser step (and once before the first, at ``start_iteration``)
            with (iteration, model); it may return a new mask, which replaces ``mask`` from that step
            on: the model's weights are masked at once, and its gradients from the next step
            (gradual pruning inside training, ``compress_core.pruning.gradual``).
        loss_fn: the mini-batch loss from (outputs, inputs, targets), e.g. knowledge distillation's
            (``compress_core.recover.distill``); None: cross-entropy with the targets.

    Returns:
        a ``History`` (records, iterations, whether stopped, wall time, θk at ``rewind_iteration``).
    """
    device = device or default_device()
    model.to(device)
    n = len(dataset.y_train)
    steps_per_epoch = max(1, -(-n // config.batch_size))
    if not 0 <= start_iteration <= config.epochs * steps_per_epoch:
        raise ValueError(f"Cannot resume at iteration {start_iteration}: this training has "
                         f"{config.epochs * steps_per_epoch} iterations.")

    def to_device(m: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        return {k: v.to(device=device, dtype=torch.float32) for k, v in (m or {}).items()}

    mask = to_device(mask)
    apply_mask_(model, mask)
    params = dict(model.named_parameters())
    opt = _optimizer(model, config)
    gen = torch.Generator().manual_seed(int(seed))
    x, y = dataset.x_train.to(device), dataset.y_train.to(device)
    eval_every = config.eval_every or steps_per_epoch
    hist = History(iterations=start_iteration, start_iteration=start_iteration)
    start = time.perf_counter()
    if config.rewind_iteration == start_iteration:
        hist.rewind_state = state_copy(model)

    def hook() -> None:
        nonlocal mask
        if step_hook is not None:
            new = step_hook(hist.iterations, model)
            if new is not None:
                mask = to_device(new)
                apply_mask_(model, mask)

    hook()

    def record(epoch: float, train_loss: float) -> bool:
        val = evaluate(model, dataset.x_val, dataset.y_val)
        test = evaluate(model, dataset.x_test, dataset.y_test)
        rec = dict(iteration=hist.iterations, epoch=epoch, train_loss=train_loss, val_loss=val.loss,
                   val_acc=val.accuracy, test_loss=test.loss, test_acc=test.accuracy)
        hist.records.append(rec)
        if config.keep_best and (best["acc"] is None or val.accuracy > best["acc"]):
            best.update(acc=val.accuracy, iteration=hist.iterations, state=state_copy(model))
        model.train()
        return callback is None or callback(dict(rec, epochs=config.epochs,
                                                 total_iterations=config.epochs * steps_per_epoch)) is not False

    best = dict(acc=None, iteration=None, state=None)
    total = config.epochs * steps_per_epoch

    def finish() -> History:
        if config.keep_best and best["state"] is not None:
            model.load_state_dict(best["state"])
            hist.best_iteration = best["iteration"]
        hist.seconds = time.perf_counter() - start
        return hist

    model.train()
    running, count = 0.0, 0
    skip = start_iteration  # batches of the seeded order that the first k iterations used
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen).to(device)  # drawn every epoch: the order stays that of a full run
        for i in range(0, n, config.batch_size):
            if skip:
                skip -= 1
                continue
            idx = order[i:i + config.batch_size]
            if config.lr_schedule == "cosine":  # of the iteration counted from the start (k after rewinding)
                opt.lr = config.lr * 0.5 * (1.0 + math.cos(math.pi * hist.iterations / total))
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx]) if loss_fn is None else loss_fn(out, x[idx], y[idx])
            opt.zero_grad()
            loss.backward()
            for name, m in mask.items():
                params[name].grad.mul_(m)
            opt.step()
            apply_mask_(model, mask)
            hist.iterations += 1
            hook()
            running += loss.item()
            count += 1
            if hist.iterations == config.rewind_iteration:
                hist.rewind_state = state_copy(model)
            if hist.iterations % eval_every == 0:
                keep_going = record(hist.iterations / steps_per_epoch, running / max(count, 1))
                running, count = 0.0, 0
                if not keep_going:
                    hist.stopped = True
                    return finish()
    if hist.iterations % eval_every != 0 or not hist.records:  # (also: nothing left to train after k)
        record(hist.iterations / steps_per_epoch, running / max(count, 1) if count else float("nan"))
    return finish()
