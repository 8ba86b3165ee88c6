"""Streamlit glue for the Pruning page: the sparsity grid of the slider and process-wide memo caches.

The expensive results (a fine-tuned pruning run, accuracy curves, sensitivity scans) are kept in
``ui.memo.Memo`` caches: they report progress to the page that asked for them. Every cached object is
shared between sessions: read it, never change it.
"""
from __future__ import annotations

from compress_core.pruning import PruneOutcome, PruneSettings, accuracy_curves, prune_with, sparsity_sensitivity
from compress_core.train import TrainConfig

from .memo import Memo

# 0-80 % in steps of 5 (plus a few tiny rates, to see them round to nothing in small layers), then finer
# and finer: the interesting things happen above 90 %.
SPARSITY_STEPS: list[float] = sorted({round(x, 4) for x in (
    [0.1, 0.5, 1.0, 2.0] + [i * 5.0 for i in range(17)] + [82.0 + 2 * i for i in range(5)] + [91.0 + i for i in range(5)]
    + [95.5 + 0.5 * i for i in range(6)] + [98.2 + 0.2 * i for i in range(5)] + [99.1 + 0.1 * i for i in range(9)])})
CURVE_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
SENSITIVITY_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)


OUTCOMES, CURVES, SENSITIVITY = Memo(64), Memo(16), Memo(32)


def outcome(baseline, ds, sel, settings: PruneSettings) -> PruneOutcome:
    return OUTCOMES.get((sel.key, settings),
                        lambda: prune_with(baseline.model, ds, settings, batch_size=sel.train.batch_size))


def _swept(granularity: str) -> str:
    """2:4 has one sparsity of its own: sweeps over sparsity use single weights instead."""
    return "weight" if granularity == "nm" else granularity


def curves(baseline, ds, sel, settings: PruneSettings, epochs: int, progress=None) -> list[dict]:
    key = (sel.key, settings.criterion, settings.scope, _swept(settings.granularity), settings.output_scale, epochs,
           settings.seed, settings.finetune_lr)
    ft = TrainConfig(epochs=epochs, lr=settings.finetune_lr, batch_size=sel.train.batch_size,
                     optimizer=settings.finetune_optimizer)
    return CURVES.get(key, lambda: accuracy_curves(
        baseline.model, ds, CURVE_GRID, finetune=ft, seed=settings.seed, progress=progress,
        criterion=key[1], scope=key[2], granularity=key[3], output_scale=key[4]))


def sensitivity(baseline, ds, sel, criterion: str, granularity: str, seed: int, progress=None) -> list[dict]:
    gran = _swept(granularity)
    return SENSITIVITY.get((sel.key, criterion, gran, seed), lambda: sparsity_sensitivity(
        baseline.model, ds, SENSITIVITY_GRID, criterion=criterion, granularity=gran, seed=seed, progress=progress))
