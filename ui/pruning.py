"""Streamlit glue for the Pruning page: the sparsity grid of the slider and process-wide memo caches.

The expensive results (a fine-tuned pruning run, accuracy curves, sensitivity scans) are kept in
bounded process-wide dicts rather than ``st.cache_data``: they report progress to the page that asked
for them, and Streamlit's caches would replay those progress elements later. Every cached object is
shared between sessions: read it, never change it.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Callable

from compress_core.pruning_live import PruneOutcome, PruneSettings, prune_with
from compress_core.schedules import accuracy_curves, sensitivity_scan
from compress_core.train import TrainConfig

# 0-80 % in steps of 5 (plus a few tiny rates, to see them round to nothing in small layers), then finer
# and finer: the interesting things happen above 90 %.
SPARSITY_STEPS: list[float] = sorted({round(x, 4) for x in (
    [0.1, 0.5, 1.0, 2.0] + [i * 5.0 for i in range(17)] + [82.0 + 2 * i for i in range(5)] + [91.0 + i for i in range(5)]
    + [95.5 + 0.5 * i for i in range(6)] + [98.2 + 0.2 * i for i in range(5)] + [99.1 + 0.1 * i for i in range(9)])})
CURVE_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
SENSITIVITY_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)


class Memo:
    """A bounded, thread-safe memo: each key computed once even when two sessions ask together."""

    def __init__(self, size: int):
        self.size, self.data, self.locks, self.guard = size, OrderedDict(), {}, threading.Lock()

    def get(self, key, compute: Callable[[], object]):
        with self.guard:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            with self.guard:
                if key in self.data:
                    return self.data[key]
            value = compute()
            with self.guard:
                self.data[key] = value
                while len(self.data) > self.size:
                    self.data.popitem(last=False)
            return value

    def has(self, key) -> bool:
        with self.guard:
            return key in self.data


OUTCOMES, CURVES, SENSITIVITY = Memo(64), Memo(16), Memo(32)


def sel_key(sel) -> str:
    return json.dumps({"d": sel.dataset, "m": sel.model, "s": sel.seed, "t": sel.train.to_dict()}, sort_keys=True)


def outcome(baseline, ds, sel, settings: PruneSettings) -> PruneOutcome:
    return OUTCOMES.get((sel_key(sel), settings),
                        lambda: prune_with(baseline.model, ds, settings, batch_size=sel.train.batch_size))


def curves_key(sel, settings: PruneSettings, epochs: int) -> tuple:
    gran = "weight" if settings.granularity == "nm" else settings.granularity
    return (sel_key(sel), settings.criterion, settings.scope, gran, settings.output_scale, epochs, settings.seed,
            settings.finetune_lr)


def curves(baseline, ds, sel, settings: PruneSettings, epochs: int, progress=None) -> list[dict]:
    key = curves_key(sel, settings, epochs)
    ft = TrainConfig(epochs=epochs, lr=settings.finetune_lr, batch_size=sel.train.batch_size,
                     optimizer=settings.finetune_optimizer)
    return CURVES.get(key, lambda: accuracy_curves(
        baseline.model, ds, CURVE_GRID, finetune=ft, seed=settings.seed, progress=progress,
        criterion=key[1], scope=key[2], granularity=key[3], output_scale=key[4]))


def sensitivity(baseline, ds, sel, criterion: str, granularity: str, seed: int, progress=None) -> list[dict]:
    gran = "weight" if granularity == "nm" else granularity
    return SENSITIVITY.get((sel_key(sel), criterion, gran, seed), lambda: sensitivity_scan(
        baseline.model, ds, SENSITIVITY_GRID, criterion=criterion, granularity=gran, seed=seed, progress=progress))
