"""What the Lottery tickets page shows, as plain data: the config built from its controls, the run plan, the
table of every number, the comparisons behind the verdict, the masks of one round and the training curves of one
round.

Frankle & Carbin 2019 (iterative magnitude pruning, rewinding to θ0) and Frankle et al. 2020 (rewinding to θk).
Everything here is a pure function of settings and ``LotteryRun`` results, so a notebook gets the same numbers
as the page.

Usage::

    cfg = settings_config("digits", "mlp", 0, rounds=5, mode="target", target_percent=10.0)
    plan(cfg).remaining_percent          # 10.0: what is left after the last round
    runs = run_seeds(cfg, seeds(0, 2))
    table_rows(summarize(runs), "final_acc")[0]["weights left (%)"]   # 100.0
    comparison_rows(verdict(runs))       # each difference with its standard error and outcome
    mask_view(runs[0], 2, input_shape=(1, 8, 8), kind="image").layer_remaining_by_round[2]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..data import Dataset
from ..train import TrainConfig
from .imp import check, overlap_matrix, rate_for_target
from .results import ARM_LABELS, CONTROLS, MEASURES, LotteryConfig, LotteryRun, Verdict, ticket_train_config

RATE_MODES = ("rate", "target")  # a fixed rate per round, or the % of weights wanted after the last round


def settings_config(dataset: str, model: str, seed: int, *, rounds: int = 10, mode: str = "rate",
                    rate_percent: float = 20.0, target_percent: float = 10.0, scope: str = "layer",
                    half_output: bool = True, rewind: str = "init", rewind_iteration: int = 0,
                    epochs: int | None = None,
                    controls: Sequence[str] = ("reinit", "random_mask"), data: Dataset | None = None) -> LotteryConfig:
    """The ``LotteryConfig`` of the page's controls, trained with the pair's ticket recipe at ``epochs``.

    Args:
        mode: "rate" (``rate_percent`` of the survivors per round) or "target" (``target_percent`` of the
            weights left after ``rounds`` rounds: p = 1 − r^(1/N), ``rate_for_target``).
        half_output: prune the output layer at half the rate (Frankle & Carbin).
        epochs: epochs per round (default: the recipe's).
        data: when given, also ``check`` the settings against it (a rewind point past the end of training).

    Raises ValueError in plain words for settings that cannot run.
    """
    if mode not in RATE_MODES:
        raise ValueError(f"Unknown pruning-amount mode {mode!r}: use {' or '.join(RATE_MODES)}.")
    if mode == "rate":
        rate = rate_percent / 100
    else:
        if rounds < 1:
            raise ValueError("Zero rounds prune nothing, so there is no ticket to find: choose at least 1 round.")
        rate = rate_for_target(target_percent / 100, rounds)
    recipe = ticket_train_config(dataset, model)
    train = TrainConfig(**{**recipe.to_dict(), "epochs": int(epochs if epochs is not None else recipe.epochs)})
    cfg = LotteryConfig(dataset=dataset, model=model, rounds=int(rounds), rate=rate, scope=scope,
                        output_scale=0.5 if half_output else 1.0, rewind=rewind,
                        rewind_iteration=int(rewind_iteration), controls=tuple(c for c in CONTROLS if c in controls),
                        train=train, seed=seed)
    if data is not None:
        check(cfg, data)
    return cfg


def seeds(first: int, count: int) -> list[int]:
    """The seeds a multi-seed run repeats with: ``first``, ``first + 1``, …"""
    return list(range(int(first), int(first) + int(count)))


@dataclass(frozen=True)
class Plan:
    """What a setting will do, before it runs."""

    rate: float  # fraction of the survivors removed per round
    output_rate: float | None  # the output layer's rate, when it differs
    remaining_percent: float  # % of the weights left after the last round (at ``rate``)
    trainings_per_seed: int  # the dense round, then every arm of every round


def plan(config: LotteryConfig) -> Plan:
    return Plan(config.rate, config.rate * config.output_scale if config.output_scale != 1 else None,
                100 * (1 - config.rate) ** config.rounds, len(config.arms) * config.rounds + 1)


def rounds_done(runs: Sequence[LotteryRun]) -> int:
    """Rounds finished by every seed (0 with no run)."""
    return min((r.rounds_done for r in runs), default=0)


def table_rows(rows: Sequence[Mapping], measure: str) -> list[dict]:
    """The page's table of every number: one row per (round, arm) of ``summarize(runs, measure)``; with a
    "± s.e. (points)" column when the rows carry the standard error (``summarize(..., n_test=...)``)."""
    out = []
    for r in rows:
        t = {"round": r["round"], "arm": ARM_LABELS[r["arm"]], "weights left (%)": r["remaining"],
             f"{MEASURES[measure]} (%)": r["acc_mean"]}
        if r.get("acc_se") is not None:
            t["± s.e. (points)"] = r["acc_se"]
        out.append({**t, "spread across seeds": r["acc_std"], "final (%)": r["final_acc"],
                    "at early stop (%)": r["early_stop_acc"], "best (%)": r["best_acc"],
                    "early-stop iteration": r["early_stop_iteration"], "overlap with previous round": r["overlap_prev"],
                    "seeds": r["seeds"]})
    return out


def comparison_rows(v: Verdict) -> list[dict]:
    """The comparisons behind the verdict, one row each: the ticket against the dense network, then each
    control against the ticket, with the difference, its standard error, the per-seed differences and the
    outcome (``compare_accuracies``)."""
    pairs = ([("winning ticket", "dense network", v.vs_dense)] if v.vs_dense is not None else []) + \
        [(ARM_LABELS[a], "winning ticket", c) for a, c in v.comparisons.items()]
    return [{"comparison": f"{a} − {b}", "difference (points)": c.diff, "± s.e. (points)": c.se,
             "2 s.e. (points)": 2 * c.se,
             "per-seed differences": ", ".join(f"{d:+.2f}" for d in c.per_seed).replace("-", "−"),
             "seeds": c.seeds, "test examples": c.n_test,
             "outcome": _outcome(a, c)} for a, b, c in pairs]


def _outcome(arm: str, c) -> str:
    if c.reason == "noise":
        return "no measurable difference (within noise)"
    if c.reason == "seeds disagree":
        return "no measurable difference (the seeds disagree in sign)"
    if c.reason == "tolerance":
        return f"no difference beyond the tolerance ({c.tolerance:g} points)"
    return f"{arm}: {c.outcome}"


@dataclass(frozen=True, eq=False)
class MaskView:
    """The masks of one seed at one round, as the figures draw them.

    ``first`` is the first weighted layer's mask: (neurons, inputs) for a linear layer (``conv`` False), or for
    a convolution each filter's kept kernel positions, flattened, with ``tile_shape`` / ``tile_kind`` to
    draw them as tiles (``conv`` True).
    """

    round: int
    first: np.ndarray
    conv: bool
    tile_shape: tuple[int, ...]
    tile_kind: str
    layer_remaining_by_round: dict[int, dict[str, float]]  # round -> {layer: fraction kept}; 0 = dense
    control_overlap: dict[str, list[tuple[int, float]]]  # control -> [(round, Jaccard with the ticket)]
    overlap: list[list[float]]  # Jaccard between the ticket's masks of rounds 0..rounds_done


def mask_view(run: LotteryRun, round_: int, input_shape: tuple[int, ...], kind: str,
              first_layer: str | None = None, rounds: int | None = None) -> MaskView:
    """The ticket's masks of ``run`` at ``round_`` (0 = dense), the per-layer remaining fractions of every
    finished round, and the mask overlaps (``overlap_matrix`` over rounds 0..``rounds``, default all finished;
    the random-mask and one-shot controls against the ticket). ``first_layer`` defaults to the first weight in
    the mask (the forward order)."""
    mask = {k: t.numpy() for k, t in run.mask(round_).items()}
    name = f"{first_layer}.weight" if first_layer else next(k for k in mask if k.endswith(".weight"))
    w = mask[name]
    if w.ndim == 2:
        first, conv, shape, tkind = w, False, tuple(input_shape), kind
    else:  # a convolution: a kernel position counts as kept when any input channel keeps it
        k = w.reshape(w.shape[0], -1, *w.shape[2:]).sum(axis=1) > 0
        first, conv = k.reshape(k.shape[0], -1), True
        shape, tkind = (k.shape[1:], "image") if k.ndim == 3 else ((1, k.shape[-1]), "sequence")
    by_round = {0: {n: 1.0 for n in run.dense.layer_remaining},
                **{i + 1: a["ticket"].layer_remaining for i, a in enumerate(run.rounds)}}
    ctrl = {a: [(i + 1, rnd[a].overlap_ticket) for i, rnd in enumerate(run.rounds)]
            for a in ("random_mask", "oneshot") if a in run.config.controls}
    jac = overlap_matrix([run.mask(i) for i in range((run.rounds_done if rounds is None else rounds) + 1)])
    return MaskView(round_, first, conv, tuple(shape), tkind, by_round, ctrl, jac)


@dataclass(frozen=True, eq=False)
class RoundCurves:
    """The training curves of every arm at one round, the dense network's for reference."""

    round: int
    remaining: float  # fraction of the weights the ticket keeps at this round
    curves: dict[str, list[dict]]  # arm ("dense" first) -> evaluation records


def round_curves(run: LotteryRun, round_: int) -> RoundCurves:
    rnd = run.rounds[round_ - 1]
    curves = {"dense": list(run.dense.records), **{a: list(x.records) for a, x in rnd.items()}}
    return RoundCurves(round_, rnd["ticket"].remaining, curves)
