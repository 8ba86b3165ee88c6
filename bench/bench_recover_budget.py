"""Benchmark the accuracy-budget search (issue 26, item 2) over seeds on digits·cnn and mnist1d·cnn.

For each (data set, seed) and budget (0.5 and 1 point), ``recover.quant_budget_search`` starts from every layer
at ``--bits`` weight bits (activations at ``--act-bits`` with ``--target both``) and searches on the validation
split; the result is then scored on the test split, which the search never saw.

- ``budget_met_fraction``: the share of runs whose **test** loss against the float model is within the budget
  (counted in examples: lost·100 ≤ budget·n). The validation share (``val_met_fraction``) is 1 by construction;
  the gap between the two is the search overfitting a small validation split (180 images on digits).
  ``not_measurably_beyond_fraction``: the share whose test verdict (``stats.compare_accuracies`` with the budget
  as tolerance) is not "worse", i.e. no measurable loss beyond the budget.
- ``budget_bytes_vs_uniform``: bytes of the search's result / bytes of the narrowest UNIFORM weight width
  (2…8 bits, same scheme) that meets the same budget on the validation split (float when none does); < 1: the
  search wins. Mean over runs, with the per-pair means.
- The pruning search (``prune_budget_search``, start at ``--sparsity`` per layer) is reported beside it:
  its met fractions and its size against the float model.
- ``--margin m``: both searches (and the uniform reference) hold themselves to budget − m on validation (m is
  capped at the budget), trading size for a better chance of meeting the budget on the test split.
- ``--count broken``: charge the budget with every validation example the float model gets right and a candidate
  gets wrong (gains not subtracted), instead of the net loss.

- ``--gpt``: the same on the built-in GPT (pydoc·gpt), with budgets in **bits per character** (0.02 and 0.05 added to
  the float model's, the mean over the validation windows, paired window by window; ``unit="bits"``), starting from
  ``--bits`` (3 by default there) and, for pruning, 70 % per layer. The verdict pairs the test windows
  (``stats.compare_bits``). No debugger timing (the Quantization page's bench has the GPT's).

- The drop debugger's cost on the test split (seed 0, every layer at ``--bits``): building it, its per-layer
  table, its flipped examples, and one per-layer revert toggle (``revert_ms_median``), the call a page makes.

Prints one JSON line per debugger timing and per run, and a last line with the summary.

Usage: python bench/bench_recover_budget.py [--seeds 0 1 2] [--bits 2] [--target both] [--margin 0] [--count net]
                                            [--threads 1] [--gpt]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import load_dataset  # noqa: E402
from compress_core.quant import QuantConfig, quantize_model  # noqa: E402
from compress_core.recover import DropDebugger, prune_budget_search, quant_budget_search  # noqa: E402
from compress_core.recover.budget import uniform_quant_bytes  # noqa: E402

PAIRS = (("digits", "cnn"), ("mnist1d", "cnn"))
BUDGETS = (0.5, 1.0)
GPT_PAIRS, GPT_BUDGETS = (("pydoc", "gpt"),), (0.02, 0.05)  # bits per character


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def mean(xs) -> float:
    return round(statistics.fmean(xs), 4) if xs else float("nan")


def debugger_timing(d: str, m: str, cfg: QuantConfig, repeats: int = 20) -> dict:
    """What the page's calls cost on the test split (seed 0, every layer at the starting bits): building the
    debugger, its per-layer table, its flipped examples, and one per-layer revert toggle (median over layers and
    repeats)."""
    b, ds = get_baseline(d, m), load_dataset(d)
    q = quantize_model(b.model, cfg, ds.x_train[:256])
    t0 = time.perf_counter()
    dbg = DropDebugger(b.model, q, ds.x_test, ds.y_test)
    t1 = time.perf_counter()
    dbg.layers()
    t2 = time.perf_counter()
    flips = dbg.flips()
    t3 = time.perf_counter()
    dbg.revert([])  # fills the activation cache once
    reverts = []
    for _ in range(repeats):
        for layer in dbg.units:
            t = time.perf_counter()
            dbg.revert([layer])
            reverts.append(1000 * (time.perf_counter() - t))
    return {"pair": f"{d}/{m}", "n_test": dbg.n, "init_ms": round(1000 * (t1 - t0), 1),
            "layers_ms": round(1000 * (t2 - t1), 1), "flips_ms": round(1000 * (t3 - t2), 1), "flips": len(flips),
            "revert_ms_median": round(statistics.median(reverts), 2),
            "revert_ms_p95": round(sorted(reverts)[int(0.95 * (len(reverts) - 1))], 2)}


def budget_run(d: str, m: str, seed: int, budget: float, cfg: QuantConfig, *, sparsity: float = 0.95,
               margin_pts: float = 0.0, count: str = "net", unit: str = "points") -> dict:
    """One (pair, seed, budget): the quantization search, the narrowest uniform width within the same budget, and
    the pruning search (starting at ``sparsity`` per layer); one flat dict of their figures (the bench's JSON
    row). ``margin_pts`` is capped at the budget; ``unit="bits"``: the budget is in bits per character."""
    b, ds = get_baseline(d, m, seed), load_dataset(d, seed)
    t0 = time.perf_counter()
    how = dict(margin_pts=min(margin_pts, budget), count=count, unit=unit)
    q = quant_budget_search(b.model, ds, cfg, budget, **how)
    t1 = time.perf_counter()
    u_bits, u_bytes = uniform_quant_bytes(b.model, ds, cfg, budget, **how)
    p = prune_budget_search(b.model, ds, sparsity=sparsity, budget_pts=budget, **how)
    t2 = time.perf_counter()
    return {"pair": f"{d}/{m}", "seed": seed, "budget_pts": budget,
            "float_val_acc": q.float_val_acc, "float_test_acc": q.float_test_acc,
            "quant_settings": dict(q.settings), "quant_bytes": q.bytes, "float_bytes": q.float_bytes,
            "uniform_bits": u_bits, "uniform_bytes": u_bytes, "bytes_vs_uniform": q.bytes / u_bytes,
            "quant_val_lost": q.val_lost, "quant_test_lost": q.test_lost, "n_val": q.n_val,
            "n_test": q.n_test, "quant_met_val": q.met_val, "quant_met_test": q.met_test,
            "quant_verdict": q.verdict(), "quant_outcome": q.test_comparison.outcome,
            "quant_steps": len(q.steps), "quant_s": round(t1 - t0, 2),
            "prune_rates": dict(p.settings), "prune_bytes": p.bytes, "prune_ratio": p.ratio,
            "prune_val_lost": p.val_lost, "prune_test_lost": p.test_lost, "prune_met_val": p.met_val,
            "prune_met_test": p.met_test, "prune_outcome": p.test_comparison.outcome,
            "prune_verdict": p.verdict(), "prune_s": round(t2 - t1, 2),
            **(added_bits(q, p) if unit == "bits" else {})}


def added_bits(q, p) -> dict:
    """A language model's bits per character: the float model's, and what each search's result adds to it."""
    return {"float_val_bpc": q.float_val_bpc, "float_test_bpc": q.float_test_bpc,
            "quant_val_added_bpc": q.val_bpc - q.float_val_bpc, "quant_test_added_bpc": q.test_bpc - q.float_test_bpc,
            "prune_val_added_bpc": p.val_bpc - p.float_val_bpc, "prune_test_added_bpc": p.test_bpc - p.float_test_bpc}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--bits", type=int, default=2, help="the weight bits every layer starts at")
    ap.add_argument("--act-bits", type=int, default=8)
    ap.add_argument("--target", default="both", choices=("weights", "both"))
    ap.add_argument("--margin", type=float, default=0.0,
                    help="safety margin, points: the searches hold themselves to budget − margin on validation")
    ap.add_argument("--count", default="net", choices=("net", "broken"),
                    help="examples charged to the budget on validation: net of gains, or every one broken")
    ap.add_argument("--sparsity", type=float, default=0.95, help="the pruning search's starting rate")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the app uses 1; 0 = default)")
    ap.add_argument("--gpt", action="store_true", help="the built-in GPT with budgets in bits per character")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs, budgets, unit = (GPT_PAIRS, GPT_BUDGETS, "bits") if args.gpt else (PAIRS, BUDGETS, "points")
    bits = 3 if args.gpt and args.bits == ap.get_default("bits") else args.bits
    sparsity = 0.7 if args.gpt and args.sparsity == ap.get_default("sparsity") else args.sparsity
    cfg = QuantConfig(target=args.target, weight_bits=bits, act_bits=args.act_bits)
    timings = [] if args.gpt else [debugger_timing(d, m, cfg) for d, m in PAIRS]
    for t in timings:
        emit(dict(t, kind="debugger timing"))
    runs = []
    for d, m in pairs:
        for seed in args.seeds:
            for budget in budgets:
                row = budget_run(d, m, seed, budget, cfg, sparsity=sparsity, margin_pts=args.margin,
                                 count=args.count, unit=unit)
                emit(row)
                runs.append(row)

    def frac(rows, key, want=True):
        return mean([float(r[key] == want) for r in rows])

    summary = {"config": cfg.to_dict(), "margin_pts": args.margin, "count": args.count, "seeds": args.seeds,
               "threads": torch.get_num_threads(), "unit": unit, "prune_start": sparsity}
    for budget in budgets:
        rows = [r for r in runs if r["budget_pts"] == budget]
        key = f"{budget:g}"
        summary[f"budget_met_fraction_{key}"] = frac(rows, "quant_met_test")
        summary[f"val_met_fraction_{key}"] = frac(rows, "quant_met_val")
        summary[f"not_measurably_beyond_fraction_{key}"] = mean([float(r["quant_outcome"] != "worse") for r in rows])
        summary[f"budget_bytes_vs_uniform_{key}"] = mean([r["bytes_vs_uniform"] for r in rows])
        summary[f"bytes_vs_uniform_by_pair_{key}"] = {
            f"{d}/{m}": mean([r["bytes_vs_uniform"] for r in rows if r["pair"] == f"{d}/{m}"]) for d, m in pairs}
        summary[f"prune_budget_met_fraction_{key}"] = frac(rows, "prune_met_test")
        summary[f"prune_val_met_fraction_{key}"] = frac(rows, "prune_met_val")
        summary[f"prune_not_measurably_beyond_fraction_{key}"] = mean(
            [float(r["prune_outcome"] != "worse") for r in rows])
        summary[f"prune_ratio_vs_float_{key}"] = mean([r["prune_ratio"] for r in rows])
        if unit == "bits":
            summary[f"quant_test_added_bpc_{key}"] = mean([r["quant_test_added_bpc"] for r in rows])
            summary[f"prune_test_added_bpc_{key}"] = mean([r["prune_test_added_bpc"] for r in rows])
            summary[f"quant_ratio_vs_float_{key}"] = mean([r["float_bytes"] / r["quant_bytes"] for r in rows])
    summary["budget_met_fraction"] = mean([float(r["quant_met_test"]) for r in runs])
    summary["budget_bytes_vs_uniform"] = mean([r["bytes_vs_uniform"] for r in runs])
    if timings:
        summary["revert_ms_median"] = {t["pair"]: t["revert_ms_median"] for t in timings}
    summary["quant_search_s_median"] = round(statistics.median(r["quant_s"] for r in runs), 2)
    emit(summary)


if __name__ == "__main__":
    main()
