"""What the Deep compression page shows, as plain data: the key stages, their warnings, the whole-model formula,
how many shared values a layer really uses, where the file's bytes go, and the published figures beside ours
(Han, Mao & Dally 2016, "Deep Compression").

Pure functions of a ``pipeline.PipelineResult``, so a notebook gets the page's numbers.

Usage::

    res = run_pipeline(baseline, ds, PipelineConfig(sparsity=0.9, bits=4))
    s = stage_summary(res)
    s.final["ratio"], s.pruned["ratio"], s.formula_ratio      # whole pipeline (the file), pruning alone, eq. 1
    used_centroids(res, "fc1.weight")                         # of the k = 16 shared values
    file_breakdown(res)                                       # the file's bytes by kind; they sum to its length
"""
from __future__ import annotations

from dataclasses import dataclass

from ..export import han_format
from .pipeline import PipelineResult, han_ratio

FORMULA_COLUMNS = {"n": "n kept", "han_formula": "formula ×", "measured": "measured ×",
                   "measured_with_index": "with index ×"}


@dataclass(frozen=True)
class StageSummary:
    """The stages the page names: dense, the last pruning round, and the final (shared) model; plus the facts
    its notes are about."""

    dense: dict
    pruned: dict  # the last "pruned…" stage
    final: dict  # the last stage: the file (its length, and the accuracy of the network loaded from it)
    accuracy_change: float  # final − dense test accuracy (fraction)
    sparse_costs_more: bool  # the pruned (sparse-format) model is bigger than the dense one: index cost
    one_bit_uniform: bool  # a signed 1-bit symmetric grid: levels −S and 0 only
    dead_layers: tuple[str, ...]  # layers that lost every weight
    n_kept: int  # surviving weights over all layers (Han's n)
    formula_ratio: float | None  # Han's eq. 1 for the whole model (None with no survivor)
    sharing_grows: tuple[str, ...] = ()  # layers too small for their codebook: sharing makes them bigger (< 1×)
    shared: dict | None = None  # the last stage before the file (shared or quantized, CSR-counted)


def stage_summary(res: PipelineResult) -> StageSummary:
    stages, cfg = res.stages, res.config
    dense, final = stages[0], stages[-1]
    pruned = [r for r in stages if r["stage"].startswith("pruned")][-1]
    n_all = sum(r["n"] for r in res.formula)
    return StageSummary(dense, pruned, final, final["test_acc"] - dense["test_acc"], pruned["bytes"] > dense["bytes"],
                        cfg.method == "uniform" and cfg.bits == 1, tuple(res.mask.dead_layers()), n_all,
                        han_ratio(n_all, cfg.k) if n_all else None,
                        tuple(r["layer"] for r in res.formula if r["n"] and r["measured"] < 1), stages[-2])


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


# ---- the file ----------------------------------------------------------------------------------------------
FILE_GROUPS = (("relative indices", "relative index"), ("codes", "codes"),
               ("codebooks / scales", ("codebook", "scales")), ("biases", "bias"),
               ("headers and checksum", ("frame", "JSON", "layer fields", "CRC")))


def file_breakdown(res: PipelineResult) -> list[dict]:
    """The file's bytes by kind (relative indices, codes, codebooks, biases, headers): rows of part, bytes and
    share; the bytes sum to ``len(res.file)``."""
    total, rows = len(res.file), []
    for name, prefixes in FILE_GROUPS:
        n = sum(p["bytes"] for p in res.file_parts if p["part"].startswith(prefixes))
        rows.append(dict(part=name, bytes=n, share=n / total if total else 0.0))
    return rows


def file_layers(res: PipelineResult) -> list[dict]:
    """Per layer of the file: the relative index width chosen, entries (survivors + fillers), Han's filler zeros,
    how each stream is coded and the layer's bytes."""
    rows = []
    for p in han_format.read(res.file).layers:
        rows.append({"layer": p.layer, "index bits": p.index_bits, "entries": p.entries,
                     "filler zeros": p.fillers, "indices": f"{p.index} B, {p.index_coding}",
                     "codes": f"{p.codes} B, {p.code_coding}", "codebook / scales": f"{p.values} B",
                     "bias": f"{p.bias} B", "layer bytes": p.bytes})
    return rows


# Han, Mao & Dally 2016, Table 1 (LeNet-300-100 on MNIST), and Han et al. 2015, Table 1 (pruning alone). Only these
# figures are shown, labelled as published; the other stages of their Table 2 are not reproduced here.
PUBLISHED_LENET_300_100 = dict(
    citation="Han, Mao & Dally 2016, \"Deep Compression\", Table 1; Han et al. 2015, \"Learning both Weights and "
             "Connections\", Table 1 (LeNet-300-100 on MNIST)",
    dense_kb=1070, final_kb=27, ratio=40, dense_error=1.64, final_error=1.58, pruned_kept=0.08, pruned_ratio=12)


def published_comparison(res: PipelineResult) -> list[dict]:
    """Our stages (measured) next to the published LeNet-300-100 figures, one row per stage kind."""
    s, pub = stage_summary(res), PUBLISHED_LENET_300_100
    kept = 1 - s.pruned["sparsity"]

    def ours(row: dict) -> str:
        return f"{row['bytes'] / 1024:.1f} KB ({row['ratio']:.1f}×), {1 - row['test_acc']:.2%} error"

    return [
        {"stage": "dense float32", "this run (measured)": ours(s.dense),
         "Han et al. (published)": f"{pub['dense_kb']} KB (1×), {pub['dense_error']:.2f} % error"},
        {"stage": "pruned", "this run (measured)": f"{kept:.1%} of weights kept; CSR " + ours(s.pruned),
         "Han et al. (published)": f"{pub['pruned_kept']:.0%} of weights kept ({pub['pruned_ratio']}× fewer)"},
        {"stage": "shared / quantized", "this run (measured)": ours(s.shared) if s.shared else "–",
         "Han et al. (published)": "–"},
        {"stage": s.final["stage"], "this run (measured)": ours(s.final),
         "Han et al. (published)": f"{pub['final_kb']} KB ({pub['ratio']}×), {pub['final_error']:.2f} % error"},
    ]
