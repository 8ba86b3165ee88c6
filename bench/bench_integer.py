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
4. Speed: torch float vs our integer program (input quantization included) on digits·mlp, digits·cnn and
   mnist1d·cnn at batch 1,024 and batch 1, medians interleaved call by call, their ratio, and the minor page
   faults per call. Twice: with glibc's default allocator settings (as the app runs), whose large blocks
   are mapped afresh and page-faulted on every call in some process states -- torch float pays this too:
   2,800 faults and 2.5× its time on mnist1d·cnn in some runs --, then with the allocator told to keep its
   memory (``mallopt``: no mapping threshold, no trimming), where neither side faults: that second ratio
   compares the kernels, and is the one reported as ``int_over_float_time_*``.

Prints one JSON line per measurement; the last line is one JSON object with ``primitive_cases``,
``primitive_mismatches``, ``int_vs_fakequant_acc_diff_pts``, ``mlp_int_over_float_time``,
``cnn_int_over_float_time`` (section 3), ``int_over_float_time_mlp``, ``int_over_float_time_cnn``
(section 4, batch 1,024, one thread, allocator keeping its memory) and the details.

Usage: python bench/bench_integer.py [--cases 1000000] [--repeats 100] [--threads 1]
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import resource
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
SPEED_PAIRS = [("digits", "mlp"), ("digits", "cnn"), ("mnist1d", "cnn")]


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


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved_stats(fns: dict, repeats: int) -> dict[str, dict]:
    """``interleaved_ms`` plus the minor page faults per call of each ``fn``."""
    times = {k: [] for k in fns}
    faults = dict.fromkeys(fns, 0)
    with torch.no_grad():
        for fn in fns.values():  # warm-up
            fn()
            fn()
        for _ in range(repeats):
            for k, fn in fns.items():
                f0 = _faults()
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
                faults[k] += _faults() - f0
    return {k: {"ms": statistics.median(v) * 1e3, "faults": faults[k] / repeats} for k, v in times.items()}


def keep_allocator_memory() -> bool:
    """Tell glibc's malloc to serve every block below 32 MB from its heap and never give memory back, so that
    no call page-faults on fresh memory (either side). False where that is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError, TypeError):
        return False


def speed_models() -> dict:
    out = {}
    for dataset, model in SPEED_PAIRS:
        ds = load_dataset(dataset)
        fmodel = get_baseline(dataset, model, seed=0).model.cpu().eval()
        qm = quantize_model(fmodel, QuantConfig(), ds.x_train[:512]).cpu()
        out[f"{dataset}_{model}"] = (ds, fmodel, to_integer(qm, ds.input_shape))
    return out


def bench_speed(models: dict, repeats: int, allocator: str) -> dict:
    """Torch float vs our integer program at batch 1,024 and 1 (input quantization included)."""
    rows = {}
    for key, (ds, fmodel, program) in models.items():
        for batch, reps in ((1024, repeats), (1, 10 * repeats)):
            x = ds.x_test.repeat((batch // len(ds.x_test) + 1,) + (1,) * (ds.x_test.dim() - 1))[:batch].contiguous()
            st = interleaved_stats({"float": lambda: fmodel(x), "int": lambda: program(x)}, reps)
            f, i = st["float"], st["int"]
            row = {"what": "speed", "model": key.replace("_", "·"), "batch": batch, "allocator": allocator,
                   "torch_threads": torch.get_num_threads(), "float_ms": round(f["ms"], 4),
                   "int_ms": round(i["ms"], 4), "int_over_float_time": round(i["ms"] / f["ms"], 3),
                   "float_page_faults_per_call": round(f["faults"], 1),
                   "int_page_faults_per_call": round(i["faults"], 1)}
            print(json.dumps(row), flush=True)
            rows[f"{key}_b{batch}"] = row
    return rows


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
    models = speed_models()
    speed = {"default": bench_speed(models, args.repeats, "default")}
    kept = keep_allocator_memory()
    if kept:
        speed["kept"] = bench_speed(models, args.repeats, "kept")
    final = speed["kept" if kept else "default"]
    worst = max(rows.values(), key=lambda r: abs(r["int_vs_fq_pts"]))
    print(json.dumps({
        "primitive_cases": prim["cases"], "primitive_mismatches": prim["mismatches"],
        "int_vs_fakequant_acc_diff_pts": abs(worst["int_vs_fq_pts"]),
        "int_vs_fakequant_worst_pair": f"{worst['dataset']}·{worst['model']}",
        "mlp_int_over_float_time": rows["digits_mlp"]["int_over_float_time"],
        "cnn_int_over_float_time": rows["digits_cnn"]["int_over_float_time"],
        "int_over_float_time_mlp": final["digits_mlp_b1024"]["int_over_float_time"],
        "int_over_float_time_cnn": final["digits_cnn_b1024"]["int_over_float_time"],
        "speed_allocator": "kept" if kept else "default",
        "torch_threads": torch.get_num_threads(), "models": rows, "speed": speed}))


if __name__ == "__main__":
    main()
