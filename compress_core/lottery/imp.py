"""Lottery tickets: iterative magnitude pruning (IMP) with rewinding, and the controls that test it.

Frankle & Carbin 2019, "The Lottery Ticket Hypothesis": store θ0, train, remove the smallest-magnitude
p % of the surviving weights, reset the survivors to θ0 and train again; repeat. The mask m found this way
picks a subnetwork f(x; m ⊙ θ0) that, trained alone, matches the dense network with far fewer weights.
Frankle et al. 2020 ("Linear Mode Connectivity and the Lottery Ticket Hypothesis") rewind to θk, the weights
after k iterations, instead of θ0 ("late rewinding"), which is what makes tickets appear in larger networks.

Every mask comes from ``compress_core.pruning.prune`` (one source of truth). Each round trains, with the
same ``TrainConfig`` and batch order as the ticket:

- ``ticket``: m_r ⊙ θ_rewind, where m_r prunes ``rate`` of the last ticket's surviving weights;
- ``reinit``: the same mask on a fresh random initialization (is θ0 part of the ticket?);
- ``random_mask``: a random mask with the same kept count in every layer, on θ_rewind (does the mask matter?);
- ``oneshot``: the trained dense network pruned once, by magnitude, to the same sparsity (per layer, or per
  pool under global scope), on θ_rewind (does iterating matter?).

Round 0 is the dense network trained from θ0 with the same recipe (a cached ``Baseline``). Runs report
progress, stop between training evaluations (a stopped round is dropped, finished rounds are kept), are
cached on disk by their settings and resume where they stopped.

Usage::

    cfg = LotteryConfig.default("mnist1d", "mlp", rounds=10, controls=("reinit", "random_mask"))
    run = run_lottery(cfg, progress=lambda e: print(e.message))
    [r["ticket"].final_acc for r in run.rounds]
    runs = run_seeds(cfg, seeds=(0, 1, 2))         # then summarize(runs), verdict(runs)
"""
from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from ..baselines import Baseline, cache_lock, cache_root, get_baseline
from ..data import Dataset, is_uploaded, load_dataset
from ..models import build_model, output_layer_name, weighted_layers
from ..pruning.masks import Mask, prune
from ..pruning.schedules import rounds_rate
from ..train import History, apply_mask_, state_copy, train
from .results import ARM_LABELS, ArmRound, LotteryConfig, LotteryRun


def rate_for_target(target_density: float, rounds: int) -> float:
    """Per-round rate p that leaves ``target_density`` of the weights after ``rounds`` rounds: p = 1 − r^(1/N).

    Example::

        rate_for_target(0.1, 10)   # 0.2057: ten rounds at 20.6 % leave 10 % of the weights
    """
    if not 0.0 < target_density < 1.0:
        raise ValueError(f"The target fraction of weights left must lie strictly between 0 and 1 "
                         f"(got {target_density!r}).")
    return rounds_rate(1.0 - target_density, rounds)


def expected_remaining(config: LotteryConfig, layer_sizes: Mapping[str, int]) -> list[dict[str, int]]:
    """Kept weights after each round 0..N, by the counting rule of ``prune``: a round removes
    round(rate × alive) of each group. Under scope "layer" a group is a layer; under "global" the layers share
    one ranking, so only the pool's total is fixed (key "pool"). With ``output_scale`` ≠ 1 the output layer is
    its own group, pruned at rate × output_scale.

    Args:
        config: the run's settings (rate, rounds, scope, output_scale).
        layer_sizes: {layer: number of weights}, in forward order (the last one is the output layer).

    Example::

        expected_remaining(LotteryConfig(rounds=2), {"fc1": 100, "fc2": 10})
        # [{'fc1': 100, 'fc2': 10}, {'fc1': 80, 'fc2': 9}, {'fc1': 64, 'fc2': 8}]
    """
    names = list(layer_sizes)
    out = names[-1]
    solo = config.output_scale != 1.0
    pooled = [n for n in names if not (solo and n == out)]
    if config.scope == "global":
        groups = {"pool": sum(layer_sizes[n] for n in pooled)}
    else:
        groups = {n: int(layer_sizes[n]) for n in pooled}
    if solo:
        groups[out] = int(layer_sizes[out])
    rows = [dict(groups)]
    for _ in range(config.rounds):
        for g in groups:
            rate = config.rate * (config.output_scale if solo and g == out else 1.0)
            groups[g] -= int(round(rate * groups[g]))
        rows.append(dict(groups))
    return rows


def jaccard(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """|A ∩ B| / |A ∪ B| of the kept weights of two masks (weights only; 1.0 when both keep nothing)."""
    inter = union = 0
    for k in a:
        if k.endswith(".bias") or k not in b:
            continue
        x, y = a[k].bool(), b[k].bool()
        inter += int((x & y).sum())
        union += int((x | y).sum())
    return inter / union if union else 1.0


def overlap_matrix(masks: Sequence[Mapping[str, torch.Tensor]]) -> list[list[float]]:
    """``jaccard`` between every pair of masks (e.g. the ticket's masks of rounds 0..n)."""
    return [[jaccard(a, b) for b in masks] for a in masks]


def matched_mask(model: nn.Module, like: Mask, criterion: str, scope: str, seed: int = 0) -> Mask:
    """A mask of ``model`` with exactly ``like``'s kept count per layer (scope "layer"), or per pool (scope
    "global": the output layer alone, the other layers pooled), chosen by ``criterion`` ("magnitude" ranks
    ``model``'s |w|; "random" picks uniformly, seeded). Built by ``prune`` one group at a time.
    """
    layers = [n for n, _ in weighted_layers(model)]
    out = output_layer_name(model)
    if scope == "global":
        groups = [[n for n in layers if n != out], [out]]
    else:
        groups = [[n] for n in layers]
    result = Mask.ones(model)
    for group in groups:
        if not group:
            continue
        total = sum(like.total(n) for n in group)
        removed = total - sum(like.kept(n) for n in group)
        # prune(...) removes round(s × total): s = removed / total gives back exactly ``removed``
        part = prune(model, removed / total, criterion=criterion, scope="global",
                     exclude=[n for n in layers if n not in group], seed=seed)
        for n in group:
            result[f"{n}.weight"] = part[f"{n}.weight"]
    return result


def rewound(config: LotteryConfig, base: Baseline, mask: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A new model holding the rewind point (θ0, or θk for late rewinding), with ``mask``'s zeros applied."""
    state = base.init_state if config.rewind == "init" else base.rewind_state
    model = base.build(state)
    apply_mask_(model, mask)
    return model


def _reinit_seed(seed: int, round_: int) -> int:
    """A fresh initialization per (seed, round), far from the seeds used for θ0."""
    return 1_000_003 * (int(seed) + 1) + int(round_)


def total_iterations(config: LotteryConfig, dataset: Dataset | None = None) -> int:
    """Optimiser steps in one training of the recipe (epochs × steps per epoch)."""
    ds = dataset or load_dataset(config.dataset, config.seed)
    return config.train.epochs * max(1, -(-len(ds.y_train) // config.train.batch_size))


def start_iteration(config: LotteryConfig, arm: str) -> int:
    """The iteration an arm's training starts from: k for the arms rewound to θk (late rewinding, which
    trains T − k iterations, as Frankle et al. 2020 do), 0 for θ0 and for the random re-initialization."""
    return config.rewind_iteration if config.rewind == "early" and arm != "reinit" else 0


def _round_units(config: LotteryConfig, steps: int) -> int:
    """Training iterations of one pruning round, all arms together."""
    return sum(steps - start_iteration(config, arm) for arm in config.arms)


def _job_units(config: LotteryConfig, steps: int) -> int:
    """Training iterations of one seed's run: the dense network, then every round."""
    return steps + config.rounds * _round_units(config, steps)


def check(config: LotteryConfig, dataset: Dataset | None = None) -> None:
    """Raise a plain-words ValueError for settings that only fail against the data (a rewind point past the end)."""
    if config.train.epochs < 1:
        raise ValueError("Each round must train for at least one epoch.")
    steps = total_iterations(config, dataset)
    if config.rewind == "early" and config.rewind_iteration >= steps:
        raise ValueError(f"The rewind iteration k = {config.rewind_iteration} is past the end of training: one "
                         f"round trains for {steps} iterations. Choose k below {steps} (a few % of training, "
                         "as in Frankle et al. 2020).")


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress bar: passed to the ``progress`` callback at each evaluation."""

    seed: int
    round: int  # 0 = the dense network
    rounds: int
    arm: str
    fraction: float  # of the whole job (all seeds), 0..1
    elapsed_s: float
    eta_s: float | None  # estimated seconds left (None until something was measured)
    val_acc: float | None

    @property
    def message(self) -> str:
        what = "dense network" if self.round == 0 else f"round {self.round}/{self.rounds} · {ARM_LABELS[self.arm]}"
        eta = f" · about {self.eta_s:.0f} s left" if self.eta_s is not None else ""
        acc = f" · val. accuracy {self.val_acc:.1%}" if self.val_acc is not None else ""
        return f"Seed {self.seed} · {what}{acc}{eta}"


class _Clock:
    """Counts training iterations done across a job (several seeds) to report a fraction and a time left."""

    def __init__(self, total_units: int, callback, should_stop):
        self.total, self.done, self.fresh = max(1, total_units), 0, 0
        self.start = time.perf_counter()
        self.callback, self.should_stop = callback, should_stop

    def skip(self, units: int) -> None:  # work found in the cache: done, but not timed
        self.done += units

    def report(self, seed, round_, rounds, arm, units, val_acc) -> bool:
        """Count ``units`` new iterations, call back; False when the caller asked to stop."""
        self.done += units
        self.fresh += units
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.fresh * (self.total - self.done) if self.fresh else None
        if self.callback:
            self.callback(Progress(seed, round_, rounds, arm, min(1.0, self.done / self.total), elapsed, eta, val_acc))
        return not (self.should_stop and self.should_stop())


def _record(arm: str, round_: int, mask: Mask, hist: History, prev: Mapping | None, ticket: Mapping) -> ArmRound:
    # record iterations count from the start of training (k + steps after rewinding to θk), as the paper's do
    es = min(hist.records, key=lambda r: r["val_loss"])
    return ArmRound(arm=arm, round=round_, remaining=mask.density(), layer_remaining=mask.layer_density(),
                    final_acc=hist.records[-1]["test_acc"], best_acc=max(r["test_acc"] for r in hist.records),
                    early_stop_iteration=int(es["iteration"]), early_stop_acc=es["test_acc"],
                    iterations=hist.steps, seconds=hist.seconds,  # steps trained: T − k after rewinding to θk
                    overlap_prev=jaccard(mask, prev) if prev is not None else 1.0, overlap_ticket=jaccard(mask, ticket),
                    records=tuple(dict(r) for r in hist.records))


def cache_paths(config: LotteryConfig, cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(results JSON, resume weights) of these settings in the cache: ``<cache>/lottery/<hash>.json|.pt``."""
    folder = (Path(cache_dir) if cache_dir is not None else cache_root()) / "lottery"
    return folder / f"{config.hash()}.json", folder / f"{config.hash()}.pt"


def load_run(config: LotteryConfig, cache_dir: str | Path | None = None) -> LotteryRun | None:
    """The cached run of these settings (complete, or the rounds finished before a stop), or None."""
    jpath, ppath = cache_paths(config, cache_dir)
    try:
        run = LotteryRun.from_json(jpath.read_text())
        if run.config != config:
            return None
        state = torch.load(ppath, map_location="cpu", weights_only=True) if ppath.exists() else None
        return replace(run, resume_state=state)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:  # say so: its rounds will be rerun
        warnings.warn(f"Ignoring an unreadable lottery-ticket cache entry {jpath}: {e}")
        return None


def _save(run: LotteryRun, cache_dir: str | Path | None) -> None:
    """Write next to the final name, then rename: a crash never leaves a half-written entry."""
    jpath, ppath = cache_paths(run.config, cache_dir)
    jpath.parent.mkdir(parents=True, exist_ok=True)
    for path, write in ((ppath, lambda p: torch.save(run.resume_state, p)),
                        (jpath, lambda p: Path(p).write_text(run.to_json()))):
        if path is ppath and run.resume_state is None:
            continue
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)


def run_lottery(config: LotteryConfig, *, progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None, use_cache: bool = True,
                cache_dir: str | Path | None = None, _clock: _Clock | None = None) -> LotteryRun:
    """Run (or resume, or load) iterative magnitude pruning with rewinding and its controls for one seed.

    Args:
        config: the settings (``LotteryConfig``); ``config.seed`` is the seed.
        progress: called with a ``Progress`` at every training evaluation.
        should_stop: polled at every training evaluation; when it returns True the round in progress is
            dropped and the run returns with ``stopped=True`` and the rounds finished so far.
        use_cache: read and write ``<cache>/lottery/<hash>.json``; a stopped run resumes from there. Server
            replicas sharing the cache folder run one entry at a time (a file lock): a second asking for the
            same settings waits, then loads (or resumes) what the first wrote.
        cache_dir: overrides the cache root (``$COMPRESS_LAB_CACHE``).

    Returns:
        a ``LotteryRun``.
    """
    if not use_cache or is_uploaded(config.dataset):  # nothing derived from an upload is written to disk
        return _run_lottery(config, progress, should_stop, False, cache_dir, _clock)
    jpath = cache_paths(config, cache_dir)[0]
    with cache_lock(jpath.parent.parent / "locks" / f"lottery-{jpath.stem}"):
        return _run_lottery(config, progress, should_stop, True, cache_dir, _clock)


def _run_lottery(config: LotteryConfig, progress, should_stop, use_cache: bool, cache_dir, _clock) -> LotteryRun:
    ds = load_dataset(config.dataset, config.seed)
    check(config, ds)
    steps = total_iterations(config, ds)
    clock = _clock or _Clock(_job_units(config, steps), progress, should_stop)
    cached = load_run(config, cache_dir) if use_cache else None
    if cached is not None and cached.complete:
        clock.skip(_job_units(config, steps))
        return replace(cached, stopped=False)
    t0 = time.perf_counter()
    base_cfg = replace(config.train, rewind_iteration=config.rewind_iteration or config.train.rewind_iteration)

    def dense_cb(rec: dict) -> None:
        clock.report(config.seed, 0, config.rounds, "dense", rec["iteration"] - dense_cb.last, rec["val_acc"])
        dense_cb.last = rec["iteration"]
    dense_cb.last = 0
    base = get_baseline(config.dataset, config.model, config.seed, base_cfg, use_cache=use_cache,
                        cache_dir=cache_dir, callback=dense_cb)
    clock.skip(steps - dense_cb.last)  # a cached baseline trained nothing
    trained = base.build(base.final_state)
    dense_trained = base.build()  # the one-shot control prunes it (a pure read): built once, not per round
    ones = Mask.ones(trained)
    dense = _record("dense", 0, ones, base.history, None, ones)
    rounds, masks = [], []
    ticket_mask, prev = ones, {arm: ones for arm in config.arms}
    if cached is not None and cached.rounds_done and cached.resume_state is not None and cached.dense == dense:
        rounds, masks = list(cached.rounds), list(cached.masks)
        ticket_mask = Mask.from_state(masks[-1]["ticket"])
        prev = {arm: Mask.from_state(masks[-1].get(arm, masks[-1]["ticket"])) for arm in config.arms}
        trained.load_state_dict(cached.resume_state)
        clock.skip(_round_units(config, steps) * len(rounds))
    stopped = False
    for r in range(len(rounds) + 1, config.rounds + 1):
        ticket_mask = prune(trained, config.rate, mask=ticket_mask, scope=config.scope,
                            output_scale=config.output_scale)
        arm_masks = {"ticket": ticket_mask, "reinit": ticket_mask}
        if "random_mask" in config.controls:
            arm_masks["random_mask"] = matched_mask(trained, ticket_mask, "random", "layer",
                                                    seed=_reinit_seed(config.seed, r))
        if "oneshot" in config.controls:
            arm_masks["oneshot"] = matched_mask(dense_trained, ticket_mask, "magnitude", config.scope)
        results, new_trained = {}, None
        for arm in config.arms:
            if arm == "reinit":
                net = build_model(config.model, ds, seed=_reinit_seed(config.seed, r))
            else:
                net = rewound(config, base, arm_masks[arm])

            def cb(rec: dict, arm=arm) -> bool:
                ok = clock.report(config.seed, r, config.rounds, arm, rec["iteration"] - cb.last, rec["val_acc"])
                cb.last = rec["iteration"]
                return ok
            cb.last = start_iteration(config, arm)
            # a network rewound to θk trains the remaining T − k iterations, on the batches of steps k+1..T
            hist = train(net, ds, config.train, seed=config.seed, mask=arm_masks[arm], callback=cb,
                         start_iteration=cb.last)
            if hist.stopped:
                stopped = True
                break
            results[arm] = _record(arm, r, arm_masks[arm], hist, prev[arm], ticket_mask)
            if arm == "ticket":
                new_trained = net
        if stopped:
            break
        trained = new_trained.cpu()
        prev = {arm: arm_masks[arm] for arm in config.arms}
        rounds.append(results)
        masks.append({a: arm_masks[a].to_state() for a in config.arms if a != "reinit"})
        run = LotteryRun(config, dense, tuple(rounds), tuple(masks), stopped=False,
                         seconds=(cached.seconds if cached else 0.0) + time.perf_counter() - t0,
                         resume_state=state_copy(trained))
        if use_cache:
            _save(run, cache_dir)
    return LotteryRun(config, dense, tuple(rounds), tuple(masks), stopped=stopped,
                      seconds=(cached.seconds if cached else 0.0) + time.perf_counter() - t0,
                      resume_state=state_copy(trained))


def run_seeds(config: LotteryConfig, seeds: Sequence[int] = (0,), *, progress: Callable[[Progress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, use_cache: bool = True,
              cache_dir: str | Path | None = None, on_run: Callable[[LotteryRun], None] | None = None
              ) -> list[LotteryRun]:
    """``run_lottery`` for each seed in turn, with one progress bar over all of them.

    Args:
        config: settings; its seed is replaced by each of ``seeds``.
        on_run: called with each seed's run as it finishes (or stops).
    A stop keeps the runs finished so far (the stopped one last, with its finished rounds) and skips the rest.
    """
    if not seeds:
        raise ValueError("Choose at least one seed.")
    ds = load_dataset(config.dataset, config.seed)
    units = _job_units(config, total_iterations(config, ds)) * len(seeds)
    clock = _Clock(units, progress, should_stop)
    runs = []
    for s in seeds:
        run = run_lottery(config.with_seed(s), use_cache=use_cache, cache_dir=cache_dir, _clock=clock)
        runs.append(run)
        if on_run:
            on_run(run)
        if run.stopped:
            break
    return runs
