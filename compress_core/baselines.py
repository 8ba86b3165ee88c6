"""Trained baselines, cached on disk: the dense network every compression method starts from.

A baseline is fixed by (data set, model, training config, seed). It keeps the initial weights θ0
(for lottery-ticket resets), an early checkpoint θk at ``TrainConfig.rewind_iteration`` (for late
rewinding, Frankle et al. 2020), the final weights and the training history.

Like open_lth's experiment folders, each entry lives in a directory named by a hash of its config:
``<cache>/baselines/<hash>/`` holding ``weights.pt``, ``history.json`` and, written last, ``meta.json``
with the SHA-256 of the other two. An entry whose meta is missing (half-written), whose checksums
differ (corrupt) or that fails to load is deleted and retrained, never used.

Several server processes (replicas behind a reverse proxy) may share one cache folder: ``cache_lock`` lets one
of them compute an entry (a baseline here, a run or a lottery experiment elsewhere) while the others wait and
then read it, instead of training it twice. It is the ``filelock`` package's lock on a file under
``<cache>/locks/`` (``flock`` on POSIX, ``msvcrt`` on Windows; the operating system releases it if its holder
dies), with a timeout that ends the wait in plain words.

The cache folder is ``$COMPRESS_LAB_CACHE`` if set, else ``~/.cache/compression-lab``.

Usage::

    b = get_baseline("digits", "mlp", seed=0)
    model = b.model            # a fresh copy each time: change it freely
    b.test_metrics.accuracy
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import filelock
import torch
from torch import nn

from .data import is_uploaded, load_dataset
from .models import build_model
from .settings import (  # noqa: F401  (re-exported: they live in settings)
    FALLBACK_RECIPE,
    TRAIN_RECIPES,
    BaselineConfig,
    cache_root,
    cached_record,
    default_train_config,
    entry_dir,
    read_record,
    sha256_of,
)
from .train import History, Metrics, TrainConfig, evaluate, state_copy, train

# How long a process waits for another one computing the same cache entry. The longest entries (a lottery
# experiment of many rounds on the GPT) take minutes; a lock held for longer than this is a stuck process.
LOCK_TIMEOUT_S = 30 * 60


@contextlib.contextmanager
def cache_lock(path: str | Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created with its folders if needed) for the ``with`` block.

    Waits while another process (or thread) holds it; after ``timeout`` seconds raises ``TimeoutError`` saying
    so in plain words.

    Usage::

        with cache_lock(root / "locks" / f"baseline-{name}"):
            entry = load(folder) or compute_and_save(folder)
    """
    lock = filelock.FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise TimeoutError(
            f"another Compression Lab process has been computing the same cached result for over "
            f"{timeout / 60:g} minutes (it holds the lock {path}); try again later, or stop that process") from None
    try:
        yield
    finally:
        lock.release()


# Lottery-ticket training overrides the baseline recipe of a pair: every round trains from the rewind point
# for this fixed budget (Frankle & Carbin; Greydanus's MNIST-1D notebook, which uses Adam at 2e-2). On
# MNIST-1D a high learning rate (1e-2, ten epochs) leaves the dense MLP noisy and overfit, the regime where
# sparse tickets beat it; chosen among 1e-3..1e-2 × 10..25 epochs on seeds 0-2 (bench/bench_lottery.py
# measures the outcome). Pairs not listed train their tickets with the baseline recipe. Ticket rounds never keep
# a best-validation state: every arm is measured at the end of its fixed budget (and at its early-stop point).
TICKET_OVERRIDES: dict[tuple[str, str], dict] = {
    ("mnist1d", "mlp"): dict(epochs=10, lr=1e-2, eval_every=10, rewind_iteration=20, weight_decay=0.0,
                             keep_best=False, lr_schedule="constant"),
    ("digits", "mlp"): dict(epochs=15, lr=2e-3, eval_every=10, rewind_iteration=20, keep_best=False),
}


def ticket_train_config(dataset: str, model: str) -> TrainConfig:
    """How each lottery round is trained for (dataset, model): the baseline recipe with the ticket overrides."""
    return replace(default_train_config(dataset, model), **{"keep_best": False,
                                                            **TICKET_OVERRIDES.get((dataset, model), {})})


@dataclass(frozen=True, eq=False)
class Baseline:
    """A trained dense network with its θ0 and θk. States are read-only: copy before changing."""

    config: BaselineConfig
    init_state: dict[str, torch.Tensor]
    rewind_state: dict[str, torch.Tensor]
    final_state: dict[str, torch.Tensor]
    history: History
    test_metrics: Metrics
    from_cache: bool = False

    def build(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """A new model holding ``state`` (the final weights by default)."""
        model = build_model(self.config.model, self.config.dataset, seed=self.config.seed)
        model.load_state_dict(state if state is not None else self.final_state)
        return model.eval()

    @property
    def model(self) -> nn.Module:
        """A fresh copy of the trained model (each access builds a new one)."""
        return self.build()


def _load(config: BaselineConfig, folder: Path) -> Baseline | None:
    """The cached baseline in ``folder``, or None when it is missing, half-written or corrupt."""
    if not (folder / "meta.json").exists():
        return None
    try:
        record = read_record(config, folder)  # the config and both checksums; unreadable JSON raises (warned below)
        if record is None:
            return None
        states = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
        history = History.from_dict(record["history"])
        test = Metrics(**record["test_metrics"])
        return Baseline(config, states["init"], states["rewind"], states["final"], history, test, from_cache=True)
    except Exception as e:  # any unreadable entry is rebuilt, and the rebuild is not silent
        warnings.warn(f"Rebuilding the unreadable baseline cache entry {folder}: {type(e).__name__}: {e}")
        return None


def _save(baseline: Baseline, folder: Path) -> None:
    """Write to a temporary folder, then rename: a crash never leaves a half entry under the real name."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        torch.save({"init": baseline.init_state, "rewind": baseline.rewind_state, "final": baseline.final_state},
                   tmp / "weights.pt")
        (tmp / "history.json").write_text(json.dumps(baseline.history.to_dict()))
        meta = {"config": baseline.config.cache_dict(), "test_metrics": asdict(baseline.test_metrics),
                "sha256": {f: sha256_of(tmp / f) for f in ("weights.pt", "history.json")}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def get_baseline(dataset: str, model: str, seed: int = 0, train_config: TrainConfig | None = None, *,
                 cache_dir: str | Path | None = None, use_cache: bool = True,
                 callback: Callable[[dict], "bool | None"] | None = None, weights: str = "") -> Baseline:
    """The trained baseline for (dataset, model, train_config, seed), from the disk cache if possible.

    Args:
        dataset, model: registry names.
        seed: fixes split, θ0 and batch order.
        train_config: defaults to ``default_train_config(dataset, model)``.
        cache_dir: overrides the cache root.
        use_cache: False trains without reading or writing the cache.
        callback: per-evaluation progress callback passed to ``train`` (returning False is ignored
            here: a baseline is always trained to the end).
        weights: the digest of uploaded weights (``uploads.register_weights``): they are the trained network
            (θ0 is this seed's fresh initialisation; there is no training history).
    """
    cfg = BaselineConfig(dataset, model, int(seed), train_config or default_train_config(dataset, model))
    if weights:
        return _uploaded_baseline(cfg, weights)
    root = Path(cache_dir) if cache_dir is not None else None
    folder = entry_dir(cfg, root)
    if not use_cache or is_uploaded(dataset):  # nothing derived from an upload is written to disk
        return _train_baseline(cfg, callback)
    # one process trains an entry while the others (server replicas sharing the folder) wait, then read it
    with cache_lock(folder.parent.parent / "locks" / f"baseline-{folder.name}"):
        cached = _load(cfg, folder)
        if cached is not None:
            return cached
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        baseline = _train_baseline(cfg, callback)
        _save(baseline, folder)
    return baseline


def _uploaded_baseline(cfg: BaselineConfig, digest: str) -> Baseline:
    from .uploads import uploaded_weights

    state = uploaded_weights(digest)
    ds = load_dataset(cfg.dataset, seed=cfg.seed)
    net = build_model(cfg.model, ds, seed=cfg.seed)
    init = state_copy(net)
    net.load_state_dict(state)
    return Baseline(cfg, init, init, state_copy(net), History(), evaluate(net.eval(), ds.x_test, ds.y_test))


def _train_baseline(cfg: BaselineConfig, callback: Callable[[dict], "bool | None"] | None) -> Baseline:
    dataset, model = cfg.dataset, cfg.model
    ds = load_dataset(dataset, seed=cfg.seed)
    net = build_model(model, ds, seed=cfg.seed)
    init = state_copy(net)
    history = train(net, ds, cfg.train, seed=cfg.seed,
                    callback=(lambda rec: (callback(rec), True)[1]) if callback else None)
    final = state_copy(net)
    rewind = history.rewind_state if history.rewind_state is not None else final
    history.rewind_state = None
    test = evaluate(net, ds.x_test, ds.y_test)
    return Baseline(cfg, init, rewind, final, history, test)
