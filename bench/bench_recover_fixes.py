"""Benchmark the post-training fixes and distillation (issue 26, items 3 and 4) over several seeds.

For each (data set, model) in digits·cnn and mnist1d·cnn and each seed (its own baseline, data split and
calibration set):

1. ``adaround_w3_gain_pts``: AdaRound (Nagel et al. 2020) against round-to-nearest at 3-bit weights (per channel,
   symmetric, min-max grid; activations float), both on the same grid, 1,024 training examples for calibration,
   each layer fitted on the float network's inputs; ``adaround_w3_quantized_inputs_gain_pts`` the same fitted on
   the inputs of the network whose earlier layers are already rounded (the paper's asymmetric reconstruction).
2. ``cle_bc_w4_gain_pts``: cross-layer equalization + bias correction (Nagel et al. 2019) against plain PTQ at 4-bit
   *per-tensor* weights, the setting the paper targets (one grid for a whole layer is what an outlying channel
   spoils); ``cle_bc_w4_per_channel_gain_pts`` the same with per-channel grids, where equalization has little to fix.
3. ``distill_gain_pts``: after magnitude pruning to 80 % (per layer, one-shot, no fine-tuning), a Distill step
   (teacher: the float baseline, T = 4, α = 0.9, ``--epochs`` epochs) against the pruned network untouched;
   ``distill_control_gain_pts`` the same-epochs control (α = 0: the student trained as long on the labels alone),
   and ``distill_vs_control_pts`` their difference, the part the teacher adds.

Every gain is in accuracy points on the test split, paired by seed: the mean over seeds with its standard error
(sample standard deviation / √n). Prints one JSON line per (pair, seed) and, last, one JSON object with every
figure per pair ("digits/cnn") and over all runs ("all").

Usage: python bench/bench_recover_fixes.py [--seeds 0 1 2] [--epochs 2] [--iterations 1000] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import load_dataset  # noqa: E402
from compress_core.experiments import Distill, Prune, Recipe, run  # noqa: E402
from compress_core.quant import QuantConfig, quantize_model  # noqa: E402
from compress_core.recover.adaround import AdaRoundConfig, adaround_model  # noqa: E402
from compress_core.recover.equalize import correct_bias, equalize  # noqa: E402
from compress_core.train import evaluate  # noqa: E402

PAIRS = (("digits", "cnn"), ("mnist1d", "cnn"))
CALIB = 1024
SPARSITY = 0.8
FIGURES = ("adaround_w3_gain_pts", "adaround_w3_quantized_inputs_gain_pts", "cle_bc_w4_gain_pts",
           "cle_bc_w4_per_channel_gain_pts", "distill_gain_pts", "distill_control_gain_pts", "distill_vs_control_pts")


def pts(model, ds) -> float:
    return 100.0 * evaluate(model, ds.x_test, ds.y_test).accuracy


def one(dataset: str, model_name: str, seed: int, epochs: int, iterations: int) -> dict:
    ds = load_dataset(dataset, seed=seed)
    base = get_baseline(dataset, model_name, seed=seed)
    model = base.model.eval()
    calib = ds.x_train[:CALIB]
    row = {"pair": f"{dataset}/{model_name}", "seed": seed, "float_pts": pts(model, ds)}
    t0 = time.perf_counter()

    w3 = QuantConfig(target="weights", weight_bits=3)
    row["ptq_w3_pts"] = pts(quantize_model(model, w3, calib), ds)
    ada = adaround_model(model, w3, calib, AdaRoundConfig(iterations=iterations))
    row["adaround_w3_pts"] = pts(ada.model, ds)
    row["adaround_w3_gain_pts"] = row["adaround_w3_pts"] - row["ptq_w3_pts"]
    row["adaround_objective_ratio"] = sum(r["objective"] for r in ada.layers) / sum(
        r["objective_nearest"] for r in ada.layers)
    row["adaround_s"] = time.perf_counter() - t0
    asym = adaround_model(model, w3, calib, AdaRoundConfig(iterations=iterations, inputs="quantized"))
    row["adaround_w3_quantized_inputs_pts"] = pts(asym.model, ds)
    row["adaround_w3_quantized_inputs_gain_pts"] = row["adaround_w3_quantized_inputs_pts"] - row["ptq_w3_pts"]

    eq = equalize(model)
    for tag, per_channel in (("", False), ("_per_channel", True)):
        w4 = QuantConfig(target="weights", weight_bits=4, per_channel=per_channel)
        ptq = pts(quantize_model(model, w4, calib), ds)
        fixed = pts(correct_bias(quantize_model(eq, w4, calib), eq, calib), ds)
        row[f"ptq_w4{tag}_pts"], row[f"cle_bc_w4{tag}_pts"] = ptq, fixed
        row[f"cle_bc_w4{tag}_gain_pts"] = fixed - ptq

    prune = Prune(sparsity=SPARSITY, finetune_epochs=0)
    kd = Recipe(dataset, model_name, seed, steps=(prune, Distill(T=4.0, alpha=0.9, epochs=epochs)))
    pruned = run(Recipe(dataset, model_name, seed, steps=(prune,)), use_cache=False).test_acc * 100
    distilled = run(kd, use_cache=False).test_acc * 100
    control = run(kd.distill_control(), use_cache=False).test_acc * 100
    row.update(pruned_pts=pruned, distilled_pts=distilled, control_pts=control, distill_gain_pts=distilled - pruned,
               distill_control_gain_pts=control - pruned, distill_vs_control_pts=distilled - control,
               seconds=time.perf_counter() - t0)
    return row


def mean_se(values: list[float]) -> dict:
    n = len(values)
    se = statistics.stdev(values) / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": round(statistics.fmean(values), 3), "se": round(se, 3), "n": n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=2, help="Distill (and control) epochs after pruning")
    p.add_argument("--iterations", type=int, default=1000, help="AdaRound's Adam steps per layer")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for dataset, model_name in PAIRS:
        for seed in args.seeds:
            row = one(dataset, model_name, seed, args.epochs, args.iterations)
            rows.append(row)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    summary = {"seeds": args.seeds, "distill_epochs": args.epochs, "sparsity": SPARSITY,
               "adaround_iterations": args.iterations, "calibration": CALIB, "threads": args.threads}
    for fig in FIGURES:
        per = {f"{d}/{m}": mean_se([r[fig] for r in rows if r["pair"] == f"{d}/{m}"]) for d, m in PAIRS}
        summary[fig] = {**per, "all": mean_se([r[fig] for r in rows])}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
