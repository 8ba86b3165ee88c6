"""Training settings and the baseline cache's layout, readable without PyTorch.

``TrainConfig`` and the per-(data set, model) recipes, the config whose hash names a cached baseline's folder,
and ``cached_record``: the test metrics and training history a cached baseline wrote next to its weights,
checked as ``compress_core.baselines`` checks them. The start page shows a warm baseline from this alone, so a
server's first page needs no PyTorch; ``compress_core.train`` and ``compress_core.baselines`` re-export these names.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config, param


@dataclass(frozen=True)
class TrainConfig(Config, label="training", unknown="ignore"):
    """How to train. Frozen, so it hashes (cache keys) and round-trips through JSON."""

    epochs: int = param(20, "passes over the training split")
    batch_size: int = param(64, "examples per optimiser step")
    lr: float = param(1e-3, "learning rate")
    optimizer: str = param("adam", "'adam' or 'sgd' (momentum 0.9)")
    weight_decay: float = param(0.0, "L2 penalty")
    eval_every: int = param(0, "evaluate every this many iterations; 0 = once per epoch")
    rewind_iteration: int = param(50, "iteration k whose weights θk are kept for late rewinding")
    # added after baselines were cached: at their defaults they stay out of the hash, so those entries stay valid
    lr_schedule: str = param("constant", "'constant', or 'cosine': lr·½(1 + cos(π t/T)) at step t of T",
                             hash_default=False)
    keep_best: bool = param(False, "end with the weights of the evaluation point of best validation accuracy "
                                   "(best-validation checkpointing; the earliest such point on a tie)",
                            hash_default=False)

    def problems(self):
        if self.epochs < 0:
            yield "epochs must be ≥ 0"
        if self.batch_size < 1:
            yield "batch size must be ≥ 1"
        if not self.lr > 0:
            yield "learning rate must be > 0"
        if self.optimizer not in ("adam", "sgd"):
            yield "optimizer must be 'adam' or 'sgd'"
        if self.eval_every < 0 or self.rewind_iteration < 0:
            yield "eval_every and rewind_iteration must be ≥ 0"
        if self.lr_schedule not in ("constant", "cosine"):
            yield "lr_schedule must be 'constant' or 'cosine'"


CACHE_VERSION = 1  # part of every baseline's hash: bump it to retrain every cached baseline

# The training recipes, one table. Per-(data set, model) baselines that reach the accuracy floors in
# tests/test_baselines.py; any other pair (the 2-D point sets) trains with FALLBACK_RECIPE.
TRAIN_RECIPES: dict[tuple[str, str], TrainConfig] = {
    # Every recipe ends with the weights of its best validation accuracy (keep_best), so "float" is never a
    # handicapped, over-fitted baseline that extra fine-tuning alone would beat (issue 10).
    ("digits", "mlp"): TrainConfig(epochs=20, lr=1e-3, batch_size=64, keep_best=True),
    ("digits", "cnn"): TrainConfig(epochs=30, lr=2e-3, batch_size=64, keep_best=True),
    # MNIST-1D (Greydanus 2020: MLP 68 %, CNN 94 %): a high learning rate trained long, light L2, and the
    # weights of the best validation accuracy (its test accuracy keeps climbing while the validation loss
    # rises). Searched on seeds 0-2 at 1 and 2 threads (issue 11, 20 recipes): MLP 67.2 / 66.8 % mean at 1 / 2
    # threads, seeds within 1.3 points (unseen seeds 3-5: 65.7 / 65.3 %); CNN 94.7 / 95.2 %.
    ("mnist1d", "mlp"): TrainConfig(epochs=60, lr=8e-3, batch_size=100, weight_decay=1e-3, keep_best=True,
                                    lr_schedule="cosine"),
    ("mnist1d", "cnn"): TrainConfig(epochs=40, lr=1e-2, batch_size=100, keep_best=True),
    # The GPT on pydoc's text, within a minute on one core: bench/bench_gpt_train.py measured 52-55 s, validation
    # 2.15 / 2.11 and test 1.94 / 1.89 bits per character (seeds 0 / 1; ± 0.04 over windows). At this budget (1.7 M
    # training characters) small batches and a shallow model learn most per second: in a search of a minute each
    # (issue 25; bpc on 128 validation windows) 2 × 96 reached 2.4 where 4 × 64 reached 2.6 and 4 × 128 2.8, batches
    # of 32 did worse than 16, and 1e-3 or 4e-3 worse than 2e-3. Evaluated every half epoch (409 steps).
    ("pydoc", "gpt"): TrainConfig(epochs=2, lr=2e-3, batch_size=16, eval_every=409, keep_best=True,
                                  lr_schedule="cosine"),
}
FALLBACK_RECIPE = TrainConfig(epochs=60, lr=3e-3, batch_size=32, keep_best=True)


def default_train_config(dataset: str, model: str) -> TrainConfig:
    """The training recipe used when none is given, chosen per (data set, model); an architecture sized by hand
    (``mlp:256-128``) trains with its family's recipe."""
    family = model.partition(":")[0] if isinstance(model, str) else model
    return TRAIN_RECIPES.get((dataset, model), TRAIN_RECIPES.get((dataset, family), FALLBACK_RECIPE))


@dataclass(frozen=True)
class BaselineConfig(Config, version=CACHE_VERSION):
    """What fixes a baseline; its hash names the baseline's cache folder."""

    dataset: str = param(help="data set registry name")
    model: str = param(help="model registry name")
    seed: int = param(help="fixes the split, θ0 and the batch order")
    train: TrainConfig = param(help="how the dense network is trained")


def cache_root() -> Path:
    return Path(os.environ.get("COMPRESS_LAB_CACHE", Path.home() / ".cache" / "compression-lab"))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_dir(config: BaselineConfig, root: Path | None) -> Path:
    return (root or cache_root()) / "baselines" / config.hash()


def read_record(config: BaselineConfig, folder: Path) -> dict | None:
    """``{"test_metrics": {...}, "history": {...}}`` of the baseline cached in ``folder``, or None when the entry is
    for another config or fails its checksums; an unreadable entry raises (OSError, ValueError, KeyError…).
    Reads JSON and hashes bytes: no PyTorch."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("config") != config.cache_dict():
        return None
    if any(sha256_of(folder / f) != digest for f, digest in meta["sha256"].items()):
        return None
    return {"test_metrics": meta["test_metrics"], "history": json.loads((folder / "history.json").read_text())}


def cached_record(config: BaselineConfig, folder: Path | None = None) -> dict | None:
    """``read_record`` of the cached baseline for ``config`` (in ``folder``, by default its entry under
    ``cache_root()``), with None also for a missing, half-written or unreadable entry."""
    try:
        return read_record(config, folder if folder is not None else entry_dir(config, None))
    except (OSError, ValueError, KeyError, TypeError):
        return None
