"""What the Deep compression page shows, as plain data: the key stages, their warnings, the whole-model formula
and how many shared values a layer really uses (Han, Mao & Dally 2016, "Deep Compression").

Pure functions of a ``deep_compression.PipelineResult``, so a notebook gets the page's numbers.

Usage::

    res = run_pipeline(baseline, ds, PipelineConfig(sparsity=0.9, bits=4))
    s = stage_summary(res)
    s.final["ratio"], s.pruned["ratio"], s.formula_ratio      # whole pipeline, pruning alone, Han's eq. 1
    used_centroids(res, "fc1.weight")                         # of the k = 16 shared values
"""
from __future__ import annotations

from dataclasses import dataclass

from .deep_compression import PipelineResult, han_ratio

FORMULA_COLUMNS = {"n": "n kept", "han_formula": "formula ×", "measured": "measured ×",
                   "measured_with_index": "with index ×"}


@dataclass(frozen=True)
class StageSummary:
    """The stages the page names: dense, the last pruning round, and the final (shared) model; plus the facts
    its notes are about."""

    dense: dict
    pruned: dict  # the last "pruned…" stage
    final: dict
    accuracy_change: float  # final − dense test accuracy (fraction)
    sparse_costs_more: bool  # the pruned (sparse-format) model is bigger than the dense one: index cost
    one_bit_uniform: bool  # a signed 1-bit symmetric grid: levels −S and 0 only
    dead_layers: tuple[str, ...]  # layers that lost every weight
    n_kept: int  # surviving weights over all layers (Han's n)
    formula_ratio: float | None  # Han's eq. 1 for the whole model (None with no survivor)
    sharing_grows: tuple[str, ...] = ()  # layers too small for their codebook: sharing makes them bigger (< 1×)


def stage_summary(res: PipelineResult) -> StageSummary:
    stages, cfg = res.stages, res.config
    dense, final = stages[0], stages[-1]
    pruned = [r for r in stages if r["stage"].startswith("pruned")][-1]
    n_all = sum(r["n"] for r in res.formula)
    return StageSummary(dense, pruned, final, final["test_acc"] - dense["test_acc"], pruned["bytes"] > dense["bytes"],
                        cfg.method == "uniform" and cfg.bits == 1, tuple(res.mask.dead_layers()), n_all,
                        han_ratio(n_all, cfg.k) if n_all else None,
                        tuple(r["layer"] for r in res.formula if r["n"] and r["measured"] < 1))


def formula_rows(res: PipelineResult, digits: int = 2) -> list[dict]:
    """Han's formula next to the measured ratios per layer, as the page's table (b, always 32, dropped)."""
    return [{FORMULA_COLUMNS.get(k, k): (round(v, digits) if isinstance(v, float) else v) for k, v in r.items()
             if k != "b"} for r in res.formula]


def used_centroids(res: PipelineResult, weight: str) -> int | None:
    """How many of the layer's k shared values hold at least one surviving weight (None: no codebook, or no
    survivor). Linear initialisation leaves centroids in the empty band around zero after heavy pruning."""
    if weight not in res.centroids or not res.mask.kept(weight):
        return None
    return int(res.final_state[weight][res.mask[weight].bool()].unique().numel())
