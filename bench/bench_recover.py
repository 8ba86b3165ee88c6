"""Issue 26's benchmark in one run: the accuracy-budget search, the post-training fixes and distillation.

Over ``--seeds`` (≥ 3) on digits·cnn and mnist1d·cnn, it calls the measuring functions of the two focused benches
(nothing is measured twice or re-implemented here):

- ``bench_recover_budget.budget_run`` per (pair, seed, budget 0.5 and 1 point): ``quant_budget_search`` from
  every layer at ``--bits`` weight bits (8-bit activations), the narrowest uniform width within the same budget, and
  ``prune_budget_search`` from ``--sparsity`` per layer; searched on the validation split, scored on the test split.
- ``bench_recover_fixes.one`` per (pair, seed): AdaRound at 3 bits and equalization + bias correction at 4 bits
  against plain PTQ at the same bits, distillation after 80 % pruning against no fine-tuning and its same-epochs
  control.

The last line is one JSON object with the issue's keys:

- ``budget_met_fraction``: the share of quantization-search runs (both budgets) whose test-split loss is **not
  measurably beyond the budget** — the honest-comparison rule, ``stats.compare_accuracies`` against the float model
  with the budget as tolerance, does not say "worse". ``budget_met_point_fraction``: the share whose test loss is
  within the budget as a point estimate (lost·100 ≤ budget·n): stricter, since it counts test-set noise as loss.
  Both per budget too (``…_0.5``, ``…_1``), and the same two for the pruning search (``prune_…``).
- ``budget_bytes_vs_uniform``: the search's bytes / the narrowest uniform width's meeting the same budget on
  validation (< 1: smaller), mean ± s.e. over runs; ``prune_ratio_vs_float``: the pruning search's float / its bytes.
- ``adaround_w3_gain_pts``, ``cle_bc_w4_gain_pts``, ``distill_gain_pts``, ``distill_control_gain_pts`` (and
  ``distill_vs_control_pts``): test accuracy points paired by seed, mean ± s.e., per pair and over all runs.

Usage: python bench/bench_recover.py [--seeds 0 1 2] [--bits 2] [--sparsity 0.95] [--epochs 2] [--iterations 1000]
                                     [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_recover_budget import BUDGETS, PAIRS, budget_run, emit  # noqa: E402
from bench_recover_fixes import FIGURES, mean_se, one  # noqa: E402

from compress_core.quant import QuantConfig  # noqa: E402


def fraction(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--bits", type=int, default=2, help="the weight bits every layer starts at (budget search)")
    ap.add_argument("--sparsity", type=float, default=0.95, help="the pruning search's starting rate")
    ap.add_argument("--epochs", type=int, default=2, help="Distill (and control) epochs after pruning")
    ap.add_argument("--iterations", type=int, default=1000, help="AdaRound's Adam steps per layer")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if len(args.seeds) < 3:
        ap.error("the issue's figures are over at least 3 seeds")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg = QuantConfig(target="both", weight_bits=args.bits, act_bits=8)
    budget_rows, fix_rows = [], []
    for d, m in PAIRS:
        for seed in args.seeds:
            for budget in BUDGETS:
                row = budget_run(d, m, seed, budget, cfg, sparsity=args.sparsity)
                emit(dict(row, kind="budget"))
                budget_rows.append(row)
            row = one(d, m, seed, args.epochs, args.iterations)
            emit({"kind": "fixes", **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}})
            fix_rows.append(row)

    summary = {"seeds": args.seeds, "pairs": [f"{d}/{m}" for d, m in PAIRS], "budgets_pts": list(BUDGETS),
               "budget_config": cfg.to_dict(), "prune_start_sparsity": args.sparsity, "distill_epochs": args.epochs,
               "adaround_iterations": args.iterations, "threads": torch.get_num_threads()}
    for tag, group in [("", budget_rows)] + [(f"_{b:g}", [r for r in budget_rows if r["budget_pts"] == b])
                                              for b in BUDGETS]:
        summary[f"budget_met_fraction{tag}"] = fraction([r["quant_outcome"] != "worse" for r in group])
        summary[f"budget_met_point_fraction{tag}"] = fraction([r["quant_met_test"] for r in group])
        summary[f"prune_budget_met_fraction{tag}"] = fraction([r["prune_outcome"] != "worse" for r in group])
        summary[f"prune_budget_met_point_fraction{tag}"] = fraction([r["prune_met_test"] for r in group])
    summary["budget_bytes_vs_uniform"] = mean_se([r["bytes_vs_uniform"] for r in budget_rows])
    summary["prune_ratio_vs_float"] = mean_se([r["prune_ratio"] for r in budget_rows])
    for fig in FIGURES:
        per = {f"{d}/{m}": mean_se([r[fig] for r in fix_rows if r["pair"] == f"{d}/{m}"]) for d, m in PAIRS}
        summary[fig] = {**per, "all": mean_se([r[fig] for r in fix_rows])}
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    emit(summary)


if __name__ == "__main__":
    main()
