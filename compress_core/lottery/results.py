"""Lottery-ticket experiments as data: the settings (``LotteryConfig``), what came out (``ArmRound``,
``LotteryRun``), their JSON round trip, averages across seeds, and the computed verdict.

The procedure itself (iterative magnitude pruning with rewinding, and its controls) is in
``compress_core.lottery``. Frankle & Carbin 2019, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable
Neural Networks"; Frankle et al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis" (late
rewinding).

Usage::

    cfg = LotteryConfig.default("mnist1d", "mlp", rounds=10)
    run = run_lottery(cfg)                       # compress_core.lottery
    LotteryRun.from_json(run.to_json()) == run   # True: results round-trip through JSON
    summarize([run])[0]                          # one row per (round, arm), averaged over seeds
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Mapping, Sequence

import numpy as np
import torch

from ..baselines import ticket_train_config
from ..config import SCOPES, Config, param
from ..data import load_dataset
from ..stats import Comparison, accuracy_se, compare_accuracies, noise_words
from ..train import TrainConfig

ARMS = ("ticket", "reinit", "random_mask", "oneshot")
CONTROLS = ARMS[1:]
ARM_LABELS = {"dense": "dense network", "ticket": "winning ticket", "reinit": "random re-init",
              "random_mask": "random mask", "oneshot": "one-shot pruning"}
MEASURES = {"final_acc": "final test accuracy", "early_stop_acc": "test accuracy at the early-stopping iteration",
            "best_acc": "best test accuracy (chosen on the test set: optimistic)"}
REWINDS = ("init", "early")
# Part of every run's hash and file. 2: late rewinding trains T − k iterations and the early-stopping iteration
# counts from the start of training (issue 11), so runs cached by version 1 are not reused.
VERSION = 2


@dataclass(frozen=True)
class LotteryConfig(Config, label="lottery", version=VERSION, unknown="ignore"):
    """Settings of one lottery-ticket run (one seed). Frozen: it hashes, prints and round-trips through JSON.

    Its ``hash()`` names the run's cache entry. ``ticket_train_config`` (in ``compress_core.baselines``,
    beside the baseline recipes) gives each (data set, model) pair's training recipe.
    """

    dataset: str = param("mnist1d", "data set registry name")
    model: str = param("mlp", "model registry name")
    rounds: int = param(10, "pruning rounds after the dense round 0")
    rate: float = param(0.2, "fraction of the surviving weights removed each round")
    scope: str = param("layer", "'layer': every layer at the same rate; 'global': one ranking across layers")
    output_scale: float = param(0.5, "the output layer is pruned at rate × this (Frankle & Carbin: half rate)")
    rewind: str = param("init", "'init': reset survivors to θ0; 'early': to θk, the weights after k iterations")
    rewind_iteration: int = param(0, "k for late rewinding (0 when rewinding to θ0)")
    controls: tuple[str, ...] = param(("reinit", "random_mask"), "control arms, trained exactly like the ticket")
    train: TrainConfig = param(factory=TrainConfig, help="each round's training (from the rewind point)")
    seed: int = param(0, "fixes the split, θ0, the batch order, the re-inits and the random masks")

    def problems(self):
        if not isinstance(self.rounds, int) or self.rounds < 1:
            yield (f"the number of rounds must be at least 1 (got {self.rounds!r}): zero rounds prune "
                   "nothing, so there is no ticket to find")
        if not isinstance(self.rate, (int, float)) or math.isnan(self.rate) or not 0.0 < self.rate < 1.0:
            yield (f"the pruning rate per round must lie strictly between 0 and 1 (got {self.rate!r}): "
                   "0 prunes nothing and 1 removes every weight in the first round")
        if self.scope not in SCOPES:
            yield f"scope must be one of {', '.join(SCOPES)} (got {self.scope!r})"
        if not 0.0 <= self.output_scale or self.rate * self.output_scale > 1.0:
            yield "the output layer's rate (rate × output scale) must lie between 0 and 1"
        if self.rewind not in REWINDS:
            yield f"rewind must be 'init' (θ0) or 'early' (θk) (got {self.rewind!r})"
        elif self.rewind == "early" and self.rewind_iteration < 1:
            yield "late rewinding needs an iteration k of at least 1"
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            yield f"unknown control(s) {', '.join(map(repr, bad))}: use {', '.join(CONTROLS)}"

    def canonical(self) -> dict:
        """Canonical forms, so equal settings share one cache entry."""
        out = {"controls": tuple(c for c in CONTROLS if c in self.controls)}
        if self.rewind == "init":
            out["rewind_iteration"] = 0
        return out

    @classmethod
    def default(cls, dataset: str = "mnist1d", model: str = "mlp", **kwargs) -> "LotteryConfig":
        """Frankle & Carbin's procedure with this pair's ticket recipe; keyword arguments override."""
        kwargs.setdefault("train", ticket_train_config(dataset, model))
        return cls(dataset=dataset, model=model, **kwargs)

    @property
    def arms(self) -> tuple[str, ...]:
        return ("ticket", *self.controls)

    def with_seed(self, seed: int) -> "LotteryConfig":
        return replace(self, seed=int(seed))


@dataclass(frozen=True)
class ArmRound:
    """One trained network: an arm (ticket, a control, or the dense network) at one round."""

    arm: str
    round: int
    remaining: float  # fraction of the prunable weights kept
    layer_remaining: dict  # {layer: fraction of its weights kept}
    final_acc: float  # test accuracy at the end of training
    best_acc: float  # highest test accuracy seen during training
    early_stop_iteration: int  # iteration of minimum validation loss
    early_stop_acc: float  # test accuracy at that iteration
    iterations: int
    seconds: float = field(compare=False)  # wall time: differs between identical runs
    overlap_prev: float = 1.0  # Jaccard overlap of this arm's mask with its mask one round earlier
    overlap_ticket: float = 1.0  # Jaccard overlap with the ticket's mask of the same round
    records: tuple = ()  # the training curve: dicts of iteration, epoch, losses and accuracies

    def to_dict(self) -> dict:
        return {**asdict(self), "records": [dict(r) for r in self.records]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ArmRound":
        kw = {f.name: d[f.name] for f in fields(cls)}
        kw["records"] = tuple(dict(r) for r in d["records"])
        kw["layer_remaining"] = dict(d["layer_remaining"])
        return cls(**kw)


def _encode_mask(state: Mapping[str, torch.Tensor]) -> dict:
    """A 0/1 mask as {name: {shape, bits}}: packed bits in base64 (43k weights take about 7 KB)."""
    out = {}
    for k, v in state.items():
        bits = np.packbits(v.detach().cpu().bool().numpy().reshape(-1))
        out[k] = {"shape": list(v.shape), "bits": base64.b64encode(bits.tobytes()).decode()}
    return out


def _decode_mask(d: Mapping) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in d.items():
        n = int(np.prod(v["shape"])) if v["shape"] else 1
        bits = np.unpackbits(np.frombuffer(base64.b64decode(v["bits"]), dtype=np.uint8))[:n]
        out[k] = torch.from_numpy(bits.astype(bool)).reshape(v["shape"])
    return out


@dataclass(frozen=True, eq=False)
class LotteryRun:
    """A lottery-ticket run of one seed: the dense round 0, then every finished round's arms and masks.

    ``rounds[r - 1]`` holds round r's ``ArmRound`` per arm; ``masks[r - 1]`` its masks ({arm: {weight name:
    bool tensor}}; the re-init control shares the ticket's mask). A stopped run keeps its finished rounds.
    """

    config: LotteryConfig
    dense: ArmRound
    rounds: tuple = ()  # tuple of {arm: ArmRound}
    masks: tuple = ()  # tuple of {arm: {param: bool tensor}}
    stopped: bool = False
    seconds: float = 0.0
    resume_state: dict | None = field(default=None, repr=False)  # last ticket's trained weights (not in JSON)

    @property
    def rounds_done(self) -> int:
        return len(self.rounds)

    @property
    def complete(self) -> bool:
        return self.rounds_done >= self.config.rounds

    def arm(self, name: str) -> list[ArmRound]:
        """The ``ArmRound`` of arm ``name`` at every finished round (round 1 first)."""
        return [r[name] for r in self.rounds if name in r]

    def mask(self, round_: int, arm: str = "ticket") -> dict[str, torch.Tensor]:
        """The bool mask of ``arm`` at round ``round_`` (round 0 = everything kept)."""
        if round_ == 0:
            return {k: torch.ones(v.shape, dtype=torch.bool) for k, v in self.masks[0]["ticket"].items()} \
                if self.masks else {}
        m = self.masks[round_ - 1]
        return m.get(arm, m["ticket"])

    def to_dict(self) -> dict:
        return {"version": VERSION, "config": self.config.to_dict(), "dense": self.dense.to_dict(),
                "rounds": [{a: r.to_dict() for a, r in rnd.items()} for rnd in self.rounds],
                "masks": [{a: _encode_mask(m) for a, m in rnd.items()} for rnd in self.masks],
                "stopped": self.stopped, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: Mapping) -> "LotteryRun":
        if d.get("version") != VERSION:
            raise ValueError(f"Lottery results of version {d.get('version')!r}; this code reads version {VERSION}.")
        return cls(config=LotteryConfig.from_dict(d["config"]), dense=ArmRound.from_dict(d["dense"]),
                   rounds=tuple({a: ArmRound.from_dict(r) for a, r in rnd.items()} for rnd in d["rounds"]),
                   masks=tuple({a: _decode_mask(m) for a, m in rnd.items()} for rnd in d["masks"]),
                   stopped=bool(d["stopped"]), seconds=float(d["seconds"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "LotteryRun":
        return cls.from_dict(json.loads(text))

    def __eq__(self, other) -> bool:  # equal settings, numbers and masks (resume_state is a cache detail)
        if not isinstance(other, LotteryRun):
            return NotImplemented
        return (self.config == other.config and self.dense == other.dense and self.rounds == other.rounds
                and self.stopped == other.stopped and len(self.masks) == len(other.masks)
                and all(a.keys() == b.keys() and all(a[k].keys() == b[k].keys() and all(
                    torch.equal(a[k][n], b[k][n]) for n in a[k]) for k in a) for a, b in zip(self.masks, other.masks)))

    __hash__ = None


# ---- across seeds ---------------------------------------------------------------------------------------
def common_rounds(runs: Sequence[LotteryRun]) -> int:
    """Rounds finished by every run (averages use only these)."""
    return min((r.rounds_done for r in runs), default=0)


def summarize(runs: Sequence[LotteryRun], measure: str = "final_acc", n_test: int | None = None) -> list[dict]:
    """One row per (round, arm) with means over the runs (seeds) and their spread.

    Row keys: round, arm, remaining (%), acc_mean / acc_std / acc_min / acc_max (``measure``, in %),
    acc_se (the standard error of acc_mean in points, ``accuracy_se``; None unless ``n_test``, the number of
    test examples, is given), final_acc, best_acc, early_stop_acc (means, %), early_stop_iteration (mean),
    overlap_prev, seeds. Round 0 is the dense network (arm "dense").
    """
    if measure not in MEASURES:
        raise ValueError(f"Unknown accuracy measure {measure!r}: use one of {', '.join(MEASURES)}.")
    if not runs:
        return []
    n = common_rounds(runs)
    rows = []

    def row(items: list[ArmRound], arm: str, rnd: int) -> dict:
        acc = np.array([getattr(i, measure) for i in items]) * 100
        se = 100 * accuracy_se(acc / 100, n_test) if n_test else None
        return dict(round=rnd, arm=arm, remaining=float(np.mean([i.remaining for i in items]) * 100),
                    acc_mean=float(acc.mean()), acc_std=float(acc.std()), acc_min=float(acc.min()),
                    acc_max=float(acc.max()), acc_se=se,
                    **{k: float(np.mean([getattr(i, k) for i in items]) * 100)
                       for k in ("final_acc", "best_acc", "early_stop_acc")},
                    early_stop_iteration=float(np.mean([i.early_stop_iteration for i in items])),
                    overlap_prev=float(np.mean([i.overlap_prev for i in items])), seeds=len(items))

    rows.append(row([r.dense for r in runs], "dense", 0))
    for rnd in range(1, n + 1):
        for arm in runs[0].config.arms:
            items = [r.rounds[rnd - 1][arm] for r in runs if arm in r.rounds[rnd - 1]]
            if len(items) == len(runs):
                rows.append(row(items, arm, rnd))
    return rows


# ---- is a difference real? -------------------------------------------------------------------------------


def test_size(config: LotteryConfig) -> int:
    """How many test examples a run of ``config`` is scored on (its data set's test split)."""
    return len(load_dataset(config.dataset, config.seed).y_test)


@dataclass(frozen=True)
class Verdict:
    """The plain-words conclusion, computed from the numbers of a run (or the mean of several seeds), with the
    comparisons it rests on (``compare_accuracies``)."""

    matched_round: int | None  # sparsest round whose ticket is not measurably worse than dense (None: none)
    remaining: float  # % of weights left at that round (or at the best ticket round when none matched)
    ticket_acc: float
    dense_acc: float
    speedup: float | None  # dense early-stop iteration / ticket early-stop iteration
    controls: dict  # {control: accuracy at that round, %}
    text: str
    n_test: int = 0  # test examples each accuracy is measured on
    seeds: int = 1
    vs_dense: Comparison | None = None  # the ticket (a) against the dense network (b)
    comparisons: dict = field(default_factory=dict)  # {control: Comparison of the control (a) against the ticket}
    note: str = ""  # how the uncertainty is computed and when a difference counts, in plain words


def _accs(runs: Sequence[LotteryRun], rnd: int, arm: str, measure: str) -> list[float]:
    """Per-seed accuracy (fraction) of ``arm`` at round ``rnd`` (0: the dense network)."""
    return [getattr(r.dense if rnd == 0 else r.rounds[rnd - 1][arm], measure) for r in runs]


def verdict(runs: Sequence[LotteryRun], measure: str = "final_acc", tolerance: float = 0.0,
            n_test: int | None = None) -> Verdict:
    """Find the sparsest round whose ticket matches the dense network and compare its training speed and its
    controls there, saying which differences are larger than the noise of the test set.

    Every accuracy comparison follows ``compare_accuracies``: a difference is real only beyond 2 standard errors
    (binomial on ``n_test`` examples; with several seeds, the standard error of the mean per-seed difference,
    the seeds agreeing in sign) and beyond ``tolerance``. A ticket *matches* when it is not measurably worse than
    the dense network; a control did *worse* (or *better*) than the ticket only when the difference is real,
    otherwise "no measurable difference (within noise)".

    Args:
        runs: one run per seed (same settings); means over seeds are compared, seed by seed.
        measure: which accuracy (``MEASURES``).
        tolerance: accuracy points a difference must exceed to count (a ticket up to this far below the dense
            network still matches).
        n_test: test examples per accuracy (default: the size of the runs' test split, ``test_size``).
    """
    rows = summarize(runs, measure)
    if len(rows) <= 1:
        raise ValueError("No finished pruning round yet: run at least one round to get a verdict.")
    n_test = int(n_test) if n_test else test_size(runs[0].config)
    dense = rows[0]
    tickets = [r for r in rows if r["arm"] == "ticket"]
    dense_accs = _accs(runs, 0, "dense", measure)
    vs = {r["round"]: compare_accuracies(_accs(runs, r["round"], "ticket", measure), dense_accs, n_test, tolerance)
          for r in tickets}
    matches = [r for r in tickets if vs[r["round"]].outcome != "worse"]
    hit = min(matches, key=lambda r: r["remaining"]) if matches else max(tickets, key=lambda r: r["acc_mean"])
    vs_dense = vs[hit["round"]]
    ctrl = {r["arm"]: r["acc_mean"] for r in rows if r["round"] == hit["round"] and r["arm"] in CONTROLS}
    ticket_accs = _accs(runs, hit["round"], "ticket", measure)
    comps = {a: compare_accuracies(_accs(runs, hit["round"], a, measure), ticket_accs, n_test, tolerance)
             for a in ctrl}
    speed = (dense["early_stop_iteration"] / hit["early_stop_iteration"]) if hit["early_stop_iteration"] else None
    seeds = f" (mean of {len(runs)} seeds)" if len(runs) > 1 else ""
    what = MEASURES[measure]
    if matches:
        text = (f"The sparsest winning ticket is round {hit['round']}: with **{hit['remaining']:.1f} %** of the "
                f"weights left it reaches **{hit['acc_mean']:.1f} %** {what}{seeds}, against {dense['acc_mean']:.1f} % "
                f"for the dense network ({vs_dense.words()}).")
    else:
        text = (f"No ticket matched the dense network's {dense['acc_mean']:.1f} %{seeds}. The best ticket, round "
                f"{hit['round']} ({hit['remaining']:.1f} % of the weights left), reached {hit['acc_mean']:.1f} % "
                f"({vs_dense.words()}).")
    if speed is not None:
        faster = "faster" if speed > 1 else "slower" if speed < 1 else "as fast"
        text += (f" Its validation loss bottomed out at iteration {hit['early_stop_iteration']:.0f} versus "
                 f"{dense['early_stop_iteration']:.0f} for the dense network: {speed:.2f}× ({faster}).")
    if ctrl:
        parts = [f"{ARM_LABELS[a]} {v:.1f} % ({comps[a].words()})" for a, v in ctrl.items()]
        text += " At the same sparsity the controls reached " + "; ".join(parts) + "."
        worse = [a for a in ctrl if comps[a].outcome == "worse"]
        better = [a for a in ctrl if comps[a].outcome == "better"]
        same = [a for a in ctrl if comps[a].outcome == "no difference"]

        def names(arms: list[str]) -> str:
            return ", ".join(ARM_LABELS[a] for a in arms)

        if len(worse) == len(ctrl):
            text += " Every control did measurably worse: the ticket's initial weights and its mask both matter."
        elif worse:
            text += f" Only {names(worse)} did measurably worse than the ticket."
        else:
            text += " No control did measurably worse: at this sparsity the ticket's advantage is not visible."
        if better:
            text += f" {names(better)[0].upper() + names(better)[1:]} did measurably better than the ticket."
        if same:
            text += f" No measurable difference for {names(same)}."
    if any(c.within_noise for c in (vs_dense, *comps.values())):
        text += f" Differences within 2 standard errors are within the noise of this test set: " \
                f"{noise_words(n_test, runs[0].config.dataset)}."
    spread = (f"; with {len(runs)} seeds, the standard error of the mean per-seed difference when that is larger, "
              "and every seed must agree in sign") if len(runs) > 1 else ""
    tol = f" and your tolerance of {tolerance:g} points" if tolerance else ""
    note = (f"± is one standard error: binomial, √(p(1 − p)/n) on n = {n_test:,} test examples "
            f"(one example = {100 / n_test:.2f} points), √(s₁² + s₂²) for a difference{spread}. A difference counts "
            f"as real only beyond 2 standard errors{tol}.")
    return Verdict(hit["round"] if matches else None, hit["remaining"], hit["acc_mean"], dense["acc_mean"],
                   speed, ctrl, text, n_test, len(runs), vs_dense, comps, note)
