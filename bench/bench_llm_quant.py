"""Benchmark the LLM-era post-training quantizers: the time of one 128×512 layer (the issue's yardstick) for RTN,
GPTQ and AWQ (4 bits, per channel and g = 128), SmoothQuant's W8A8 and the KV quantizer; and on the digits MLP and
CNN baselines the layer-wise output error and test accuracy of RTN, GPTQ and AWQ at 2, 3 and 4 bits, calibrated on
512 training images.

Prints one JSON line per measurement. Usage: python bench/bench_llm_quant.py [--threads 1]
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
from torch import nn  # noqa: E402

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import load_dataset  # noqa: E402
from compress_core.layer_inputs import capture_inputs, input_stats  # noqa: E402
from compress_core.quant import (  # noqa: E402
    awq,
    gptq,
    kv_quantizer,
    layer_errors,
    quantize_weights,
    rtn,
    smoothquant,
)
from compress_core.train import evaluate  # noqa: E402


def bench_layer() -> None:
    x, w = yardstick_layer()
    stats = input_stats(x)
    for group in ("channel", 128, 32):
        print(json.dumps({
            "layer": "128x512", "bits": 4, "group": group,
            "rtn_ms": best_ms(lambda: rtn(w, 4, group)),
            "gptq_ms": best_ms(lambda: gptq(w, stats.gram, 4, group)),
            "gptq_act_order_ms": best_ms(lambda: gptq(w, stats.gram, 4, group, act_order=True)),
            "awq_no_clip_ms": best_ms(lambda: awq(w, stats.gram, stats.absmean, 4, group, clip=False), 3),
            "awq_ms": best_ms(lambda: awq(w, stats.gram, stats.absmean, 4, group), 3)}), flush=True)
    lin = nn.Linear(512, 128)
    lin.weight.data.copy_(w)
    model = nn.Sequential(lin)
    inputs = {"0": x}
    k = torch.randn(1, 8, 1024, 64, generator=torch.Generator().manual_seed(1))
    print(json.dumps({"layer": "128x512", "input_stats_ms (4096 rows)": best_ms(lambda: input_stats(x)),
                      "smoothquant_w8a8_ms": best_ms(lambda: smoothquant(model, inputs)),
                      "kv_quantizer_2bit_ms (1×8×1024×64 k and v)": best_ms(lambda: kv_quantizer(2)(k, k))}),
          flush=True)


def bench_model(dataset: str, arch: str) -> None:
    model, ds = get_baseline(dataset, arch).model, load_dataset(dataset)
    x = ds.x_train[:512]
    inputs = capture_inputs(model, x)
    dense = evaluate(model, ds.x_test, ds.y_test).accuracy
    for bits, group in [(2, "channel"), (3, "channel"), (3, 32), (4, 32)]:
        errors = {r["layer"]: {m: round(r[m], 4) for m in ("rtn", "gptq", "awq")}
                  for r in layer_errors(model, inputs, bits, group)}
        acc, ms = {}, {}
        for method in ("rtn", "gptq", "awq"):
            t0 = time.perf_counter()
            q = quantize_weights(model, bits, group, method=method, calibration=inputs)
            ms[method] = round((time.perf_counter() - t0) * 1000, 1)
            acc[method] = round(evaluate(q, ds.x_test, ds.y_test).accuracy, 4)
        print(json.dumps({"model": f"{dataset}·{arch}", "bits": bits, "group": group, "dense_acc": round(dense, 4),
                          "test_acc": acc, "layer_error": errors, "quantize_ms": ms}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_layer()
    for arch in ("mlp", "cnn"):
        bench_model("digits", arch)
