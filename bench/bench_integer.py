"""Benchmark integer-only inference (Jacob et al. 2018) on this machine.

1. Bit-exactness of the fixed-point primitives (gemmlowp's SaturatingRoundingDoublingHighMul and
   RoundingDivideByPOT, TFLite's MultiplyByQuantizedMultiplier) on ≥ 10^6 random and edge-case inputs
   (a third each), against the slow pure-Python references (Python ints, C-style truncating division).
2. Accuracy of the integer program vs the fake-quantized model vs float, on the test sets of the default
   baselines (8-bit, per-channel symmetric weights, asymmetric uint8 activations, min/max calibration on
   512 training examples), and how many integer logits differ from the fake-quant ones (in steps).
3. Forward time at batch 1,024 (the test set, tiled to 1,024 rows): the float model vs the integer program
   (input quantization included; "core" without it), medians of repeats interleaved call by call in one
   run, and their ratio. One torch thread by default.

Prints one JSON line per measurement; the last line is one JSON object with ``primitive_cases``,
``primitive_mismatches``, ``int_vs_fakequant_acc_diff_pts``, ``mlp_int_over_float_time``,
``cnn_int_over_float_time`` and the details.

Usage: python bench/bench_integer.py [--cases 1000000] [--repeats 100] [--threads 1]
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
from compress_core.integer import (  # noqa: E402
    compare_models,
    model_bytes,
    to_integer,  # noqa: E402
)
from compress_core.quant import QuantConfig, quantize_model  # noqa: E402
from compress_core.testing import count_mismatches, random_cases  # noqa: E402

PAIRS = [("digits", "mlp"), ("digits", "cnn"), ("mnist1d", "mlp"), ("mnist1d", "cnn")]


def bench_primitives(total: int) -> dict:
    per = -(-total // 3)  # three primitives share the cases
    t0 = time.perf_counter()
    cases, bad = count_mismatches(random_cases(per, seed=2018))
    row = {"what": "primitives", "cases": cases, "mismatches": bad, "seconds": round(time.perf_counter() - t0, 2)}
    print(json.dumps(row), flush=True)
    return row


def interleaved_ms(fns: dict, repeats: int) -> dict[str, float]:
    """Median milliseconds of each ``fn()``, calling them in turn every round so that changes in the
    machine's load hit all of them alike (this box is shared while the benches run)."""
    times = {k: [] for k in fns}
    with torch.no_grad():
        for fn in fns.values():  # warm-up
            fn()
        for _ in range(repeats):
            for k, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def bench_pair(dataset: str, model: str, repeats: int) -> dict:
    ds = load_dataset(dataset)
    b = get_baseline(dataset, model, seed=0)
    fmodel = b.model.cpu().eval()
    qm = quantize_model(fmodel, QuantConfig(), ds.x_train[:512]).cpu()
    program = to_integer(qm, ds.input_shape)
    cmp = compare_models(fmodel, qm, program, ds.x_test, ds.y_test)
    x = ds.x_test.repeat((1024 // len(ds.x_test) + 1,) + (1,) * (ds.x_test.dim() - 1))[:1024].contiguous()
    q = program.quantize_input(x)
    ms = interleaved_ms({"float": lambda: fmodel(x), "int": lambda: program(x),
                         "core": lambda: program.forward_int(q)}, repeats)
    f, i, c = ms["float"], ms["int"], ms["core"]
    mb = model_bytes(program)
    row = {"what": "model", "dataset": dataset, "model": model, "acc_float": round(cmp["float"], 4),
           "acc_fake_quant": round(cmp["fake_quant"], 4), "acc_integer": round(cmp["integer"], 4),
           "int_vs_fq_pts": round(100 * (cmp["integer"] - cmp["fake_quant"]), 3),
           "logits_equal_frac": round(cmp["frac_logits_equal"], 4), "max_step_diff": cmp["max_step_diff"],
           "float_ms_b1024": round(f, 3), "int_ms_b1024": round(i, 3), "int_core_ms_b1024": round(c, 3),
           "int_over_float_time": round(i / f, 3), "kernels": sorted({op.kernel for op in program.layers}),
           "bytes_float32": mb["float32"], "bytes_int8": mb["int8"], "bytes_packed4": mb["packed4"]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000, help="primitive test inputs in all (≥ 10^6)")
    ap.add_argument("--repeats", type=int, default=100, help="timed forward passes per model and path")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the ratio compares the kernels, not thread scheduling on a "
                         "shared machine; 0 leaves torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    prim = bench_primitives(args.cases)
    rows = {f"{d}_{m}": bench_pair(d, m, args.repeats) for d, m in PAIRS}
    worst = max(rows.values(), key=lambda r: abs(r["int_vs_fq_pts"]))
    print(json.dumps({
        "primitive_cases": prim["cases"], "primitive_mismatches": prim["mismatches"],
        "int_vs_fakequant_acc_diff_pts": abs(worst["int_vs_fq_pts"]),
        "int_vs_fakequant_worst_pair": f"{worst['dataset']}·{worst['model']}",
        "mlp_int_over_float_time": rows["digits_mlp"]["int_over_float_time"],
        "cnn_int_over_float_time": rows["digits_cnn"]["int_over_float_time"],
        "torch_threads": torch.get_num_threads(), "models": rows}))


if __name__ == "__main__":
    main()
