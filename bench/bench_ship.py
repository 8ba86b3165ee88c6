"""Benchmark: what ships. The compressed file of Deep Compression on digits·mlp (issue 13).

1. Deep Compression (Han, Mao & Dally 2016) with ``HAN_SETTINGS`` on digits·mlp (LeNet-300-100 on 8×8 digits)
   for seeds 0, 1, 2, each from its own baseline and data split: the .clab file's length, its ratio to the
   float32 parameters (the "float32 file", 4 bytes a parameter), the accuracy drop in points of the network loaded
   back from the file, and the bytes of every stage. Target: mean ratio ≥ 50× with the mean drop within 1 point.

2. ONNX Runtime: every built-in (data set, model) pair quantized at 8 bits (per channel, the default QuantConfig),
   exported with our scales and zero points (``export.onnx_export.to_onnx``): argmax agreement with our integer
   program on the test split and the largest logit difference in output steps (target: agreement ≥ 99.5 %).
3. Speed at batch 1,024, one thread, in one interleaved run with glibc told to keep its memory (as
   bench_integer.py): torch float, our integer program, ONNX Runtime float and int8 on digits·mlp and digits·cnn.

Prints one JSON line per seed (and per stage), then, as its LAST line, one JSON object merging every section's
summary: ``dc_ratio_mean``, ``dc_acc_drop_pts_mean``, ``dc_seeds`` and the details. Each section is a function
returning its dict; ``main`` merges them, so another section (ONNX, integer speed) adds one function and one line.

Usage: python bench/bench_ship.py [--seeds 0,1,2] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import DATASETS, list_datasets, load_dataset  # noqa: E402
from compress_core.deep_compression import HAN_SETTINGS, run_pipeline  # noqa: E402
from compress_core.export import compare_with_integer, han_format, ort_session, to_onnx, to_onnx_float  # noqa: E402
from compress_core.integer import to_integer  # noqa: E402
from compress_core.models import list_models  # noqa: E402
from compress_core.quant import QuantConfig, quantize_model  # noqa: E402
from compress_core.train import evaluate  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from bench_integer import interleaved_stats, keep_allocator_memory  # noqa: E402


def emit(**row) -> None:
    print(json.dumps({"bench": "ship", **row}), flush=True)


def deep_compression(seeds: list[int], dataset: str = "digits", model: str = "mlp") -> dict:
    """Deep Compression with ``HAN_SETTINGS`` per seed; the ``dc_*`` summary (means over the seeds)."""
    ratios, drops, sizes = [], [], []
    for seed in seeds:
        b, ds = get_baseline(dataset, model, seed=seed), load_dataset(dataset, seed=seed)
        t = time.perf_counter()
        res = run_pipeline(b, ds, replace(HAN_SETTINGS, seed=seed))
        seconds = time.perf_counter() - t
        dense, final = res.stages[0], res.stages[-1]
        loaded = evaluate(han_format.load(res.file), ds.x_test, ds.y_test).accuracy  # from the bytes, again
        assert final["bytes"] == len(res.file) and loaded == final["test_acc"], "the file stage is not the file"
        for row in res.stages:
            emit(section="dc", seed=seed, stage=row["stage"], bytes=row["bytes"], ratio=round(row["ratio"], 2),
                 test_acc=round(100 * row["test_acc"], 2))
        drop = 100 * (dense["test_acc"] - final["test_acc"])
        emit(section="dc", seed=seed, file_bytes=len(res.file), float32_bytes=dense["bytes"],
             ratio=round(final["ratio"], 2), float_acc=round(100 * dense["test_acc"], 2),
             file_acc=round(100 * final["test_acc"], 2), acc_drop_pts=round(drop, 2), seconds=round(seconds, 1),
             index_bits=[p.index_bits for p in han_format.read(res.file).layers],
             file_parts={p["part"] + (f" {p['layer']}" if p["layer"] else ""): p["bytes"] for p in res.file_parts})
        ratios.append(final["ratio"])
        drops.append(drop)
        sizes.append(len(res.file))
    return {"dc_ratio_mean": round(statistics.mean(ratios), 2),
            "dc_acc_drop_pts_mean": round(statistics.mean(drops), 2), "dc_seeds": seeds,
            "dc_ratio_min": round(min(ratios), 2), "dc_acc_drop_pts_max": round(max(drops), 2),
            "dc_file_bytes": sizes, "dc_pair": f"{dataset}·{model}", "dc_settings": HAN_SETTINGS.to_dict(),
            "dc_target_met": statistics.mean(ratios) >= 50 and statistics.mean(drops) <= 1.0}


def onnx_runtime(seeds: list[int]) -> dict:
    """Agreement of ONNX Runtime's int8 run with our integer program, every built-in pair, 8 bits."""
    agreements, steps = {}, {}
    for dataset in (d for d in list_datasets() if DATASETS[d].kind != "text"):  # (the GPT has no integer program)
        ds = load_dataset(dataset)
        for model in list_models(dataset):
            qm = quantize_model(get_baseline(dataset, model, seed=0).model, QuantConfig(), ds.x_train[:256])
            c = compare_with_integer(qm, to_integer(qm, ds.input_shape), ds.x_test, ds.y_test)
            emit(section="onnx", pair=f"{dataset}·{model}", **{k: round(v, 4) if isinstance(v, float) else v
                                                               for k, v in c.items()})
            agreements[f"{dataset}·{model}"], steps[f"{dataset}·{model}"] = c["agreement"], c["max_step_diff"]
    return {"ort_argmax_agreement_min": round(min(agreements.values()), 4), "ort_agreement": agreements,
            "ort_max_step_diff": steps}


def speed(seeds: list[int], batch: int = 1024, repeats: int = 40) -> dict:
    """Median ms of the four runtimes on one batch, interleaved, one thread; ratios to torch float."""
    allocator = "kept" if keep_allocator_memory() else "default"
    out = {}
    for dataset, model in (("digits", "mlp"), ("digits", "cnn")):
        ds = load_dataset(dataset)
        fmodel = get_baseline(dataset, model, seed=0).model.eval()
        qm = quantize_model(fmodel, QuantConfig(), ds.x_train[:256])
        program = to_integer(qm, ds.input_shape)
        x = ds.x_test.repeat(-(-batch // len(ds.x_test)), *[1] * (ds.x_test.dim() - 1))[:batch].contiguous()
        arr = x.numpy()
        s_f = ort_session(to_onnx_float(fmodel, ds.input_shape), threads=1)
        s_q = ort_session(to_onnx(qm, ds.input_shape), threads=1)
        nf, nq = s_f.get_inputs()[0].name, s_q.get_inputs()[0].name
        ms = {k: v["ms"] for k, v in interleaved_stats({
            "torch_float": lambda: fmodel(x), "ours_int": lambda: program(x),
            "ort_float": lambda: s_f.run(None, {nf: arr}), "ort_int8": lambda: s_q.run(None, {nq: arr})},
            repeats).items()}
        emit(section="speed", pair=f"{dataset}·{model}", batch=batch, allocator=allocator,
             **{f"{k}_ms": round(v, 4) for k, v in ms.items()})
        out[model] = ms
    m, c = out["mlp"], out["cnn"]
    return {"int_over_float_time_mlp": round(m["ours_int"] / m["torch_float"], 3),
            "int_over_float_time_cnn": round(c["ours_int"] / c["torch_float"], 3),
            "int_over_ort_int8_time_mlp": round(m["ours_int"] / m["ort_int8"], 3),
            "int_over_ort_int8_time_cnn": round(c["ours_int"] / c["ort_int8"], 3),
            "ort_int8_over_float_time_mlp": round(m["ort_int8"] / m["torch_float"], 3),
            "speed_batch": batch, "allocator": allocator}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated baseline seeds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one: as the app and the tests)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    summary: dict = {"threads": torch.get_num_threads()}
    for section in (deep_compression, onnx_runtime, speed):
        summary.update(section(seeds))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
