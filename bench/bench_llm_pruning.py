"""Benchmark Wanda and SparseGPT: the time of one layer (SparseGPT on 128×512, the issue's yardstick; Wanda's mask
beside it), and on the digits MLP and CNN baselines the layer-wise output error and test accuracy of magnitude
(per row), Wanda and SparseGPT at 50 % and 2:4, calibrated on 512 training images.

Prints one JSON line per measurement. Usage: python bench/bench_llm_pruning.py [--threads 1]
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
    sparsegpt_layer,
    sparsegpt_prune,
    wanda_mask,
    wanda_prune,
)
from compress_core.train import evaluate  # noqa: E402


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_layer()
    for arch in ("mlp", "cnn"):
        bench_model("digits", arch)
