"""Benchmark Wanda and SparseGPT: the time of one layer (SparseGPT on 128×512, the issue's yardstick; Wanda's mask
beside it), and on the digits MLP and CNN baselines the layer-wise output error and test accuracy of magnitude
(per row), Wanda and SparseGPT at 50 % and 2:4, calibrated on 512 training images.

``--gpt``: structured pruning of the default GPT's MLP neurons and attention heads (``pruning.gpt_structured``) at
25 / 50 % of each block's units, for every criterion: test bits per character of the shrunk GPT (checked against the
masked one), after one epoch of fine-tuning for magnitude, parameters, and the forward time of the shrunk GPT against
the dense one (median and fastest of 50 calls each, batch 64 × 64 tokens, the two timed in interleaved rounds).

Prints one JSON line per measurement. Usage: python bench/bench_llm_pruning.py [--threads 1] [--gpt | --gpt-only]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from layer_timing import best_ms, yardstick_layer  # noqa: E402

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import load_dataset  # noqa: E402
from compress_core.layer_inputs import capture_inputs, input_stats, layers_of, output_error, weight_matrix  # noqa: E402
from compress_core.pruning import (  # noqa: E402
    MagnitudeScore,
    apply_mask,
    calibrated_mask,
    gpt_prune,
    gpt_summary,
    shrink_gpt,
    sparsegpt_layer,
    sparsegpt_prune,
    time_calls,
    wanda_mask,
    wanda_prune,
)
from compress_core.text import lm_metrics  # noqa: E402
from compress_core.train import TrainConfig, evaluate, train  # noqa: E402

# one epoch of the GPT's training split (about half its baseline's two), Adam at a quarter of its peak rate
GPT_FINETUNE = TrainConfig(epochs=1, lr=5e-4, batch_size=16, optimizer="adam")


def bench_layer() -> None:
    x, w = yardstick_layer()
    stats = input_stats(x)
    for name, target in [("50%", dict(sparsity=0.5)), ("2:4", dict(nm=(2, 4)))]:
        print(json.dumps({"layer": "128x512", "target": name,
                          "sparsegpt_ms": best_ms(lambda: sparsegpt_layer(w, stats.gram, **target)),
                          "wanda_ms": best_ms(lambda: wanda_mask(w, stats.norm, **target)),
                          "input_stats_ms (4096 rows)": best_ms(lambda: input_stats(x))}), flush=True)


def bench_model(dataset: str, arch: str) -> None:
    baseline, ds = get_baseline(dataset, arch), load_dataset(dataset)
    model = baseline.model
    x = ds.x_train[:512]
    t0 = time.perf_counter()
    inputs = capture_inputs(model, x)
    capture_ms = (time.perf_counter() - t0) * 1000
    dense = evaluate(model, ds.x_test, ds.y_test).accuracy
    for name, target in [("50%", dict(sparsity=0.5)), ("2:4", dict(nm=(2, 4)))]:
        t0 = time.perf_counter()
        sgpt, _ = sparsegpt_prune(model, inputs, **target)
        sgpt_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        wanda = apply_mask(model, wanda_prune(model, inputs, **target))
        wanda_ms = (time.perf_counter() - t0) * 1000
        magnitude = apply_mask(model, calibrated_mask(model, inputs, MagnitudeScore(), **target))
        seq, _ = sparsegpt_prune(model, x, **target, sequential=True)
        errors = {}
        for layer, module in layers_of(model):
            gram = input_stats(inputs[layer]).gram
            w = weight_matrix(module)
            errors[layer] = {k: round(output_error(w, weight_matrix(dict(layers_of(m))[layer]), gram), 4)
                             for k, m in (("magnitude", magnitude), ("wanda", wanda), ("sparsegpt", sgpt))}
        acc = {k: round(evaluate(m, ds.x_test, ds.y_test).accuracy, 4)
               for k, m in (("magnitude", magnitude), ("wanda", wanda), ("sparsegpt", sgpt),
                            ("sparsegpt_sequential", seq))}
        print(json.dumps({"model": f"{dataset}·{arch}", "target": name, "dense_acc": round(dense, 4),
                          "test_acc": acc, "layer_error": errors, "capture_ms": round(capture_ms, 1),
                          "sparsegpt_ms": round(sgpt_ms, 1), "wanda_ms": round(wanda_ms, 1)}), flush=True)


def bench_gpt_structured(finetune: bool = True) -> None:
    baseline, ds = get_baseline("pydoc", "gpt"), load_dataset("pydoc")
    model = baseline.model.eval()
    calib = (ds.x_train[:64], ds.y_train[:64])
    x = torch.randint(0, ds.num_classes, (64, ds.input_shape[0]), generator=torch.Generator().manual_seed(0))
    dense_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"gpt": "dense", "test_bpc": round(lm_metrics(model, ds).bpc, 4), "params": dense_params}),
          flush=True)
    settings = [("neuron", 0.25), ("neuron", 0.5), ("head", 0.25), ("head", 0.5)]
    for unit, rate in settings + [("both", 0.5)]:
        crits = ("magnitude", "activation", "random") + (("ablation",) if unit == "head" else ())
        for crit in crits if unit != "both" else ("magnitude",):
            t0 = time.perf_counter()
            if unit == "both":  # half the heads and half the MLP neurons of every block
                mask = gpt_prune(model, rate, unit="neuron", criterion=crit)
                mask = gpt_prune(model, rate, unit="head", criterion=crit, mask=mask)
            else:
                mask = gpt_prune(model, rate, unit=unit, criterion=crit, calibration=calib)
            score_ms = (time.perf_counter() - t0) * 1000
            small = shrink_gpt(model, mask).eval()
            with torch.no_grad():
                gap = float((small(x[:4]) - apply_mask(model, mask)(x[:4])).abs().max())
            with torch.inference_mode():
                t = time_calls({"dense": lambda: model(x), "shrunk": lambda: small(x)}, repeats=50)  # interleaved
            dense_t, small_t = t["dense"], t["shrunk"]
            row = {"gpt": unit, "rate": rate, "criterion": crit,
                   "kept": [(r["kept_heads"], r["kept_neurons"]) for r in gpt_summary(model, mask)],
                   "test_bpc": round(lm_metrics(small, ds).bpc, 4), "max_abs_logit_gap_vs_masked": gap,
                   "params": sum(p.numel() for p in small.parameters()), "params_vs_dense": None,
                   "dense_ms": round(dense_t["median_ms"], 2), "shrunk_ms": round(small_t["median_ms"], 2),
                   "score_ms": round(score_ms, 1)}
            row["params_vs_dense"] = round(row["params"] / dense_params, 4)
            row["latency_vs_dense"] = round(small_t["median_ms"] / dense_t["median_ms"], 3)
            row["min_ms_vs_dense"] = round(small_t["min_ms"] / dense_t["min_ms"], 3)  # the least disturbed call
            if finetune and crit == "magnitude":
                t0 = time.perf_counter()
                tuned = shrink_gpt(model, mask)  # the smaller dense GPT trains as it is: no mask to enforce
                train(tuned, ds, GPT_FINETUNE, seed=0, device=torch.device("cpu"))
                row["finetuned_bpc"] = round(lm_metrics(tuned.eval(), ds).bpc, 4)
                row["finetune_s"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(row), flush=True)
    if finetune:  # the fair reference: the dense GPT given the same extra epoch
        import copy
        tuned = copy.deepcopy(model)
        train(tuned, ds, GPT_FINETUNE, seed=0, device=torch.device("cpu"))
        print(json.dumps({"gpt": "dense + same fine-tune", "test_bpc": round(lm_metrics(tuned.eval(), ds).bpc, 4)}),
              flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpt", action="store_true", help="also structured pruning of the GPT's heads and neurons")
    parser.add_argument("--gpt-only", action="store_true", help="only the GPT's structured pruning")
    parser.add_argument("--no-finetune", action="store_true", help="skip the GPT's fine-tuning runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.gpt_only:
        bench_layer()
        for arch in ("mlp", "cnn"):
            bench_model("digits", arch)
    if args.gpt or args.gpt_only:
        bench_gpt_structured(finetune=not args.no_finetune)
