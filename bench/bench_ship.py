"""Benchmark: what ships. The compressed file of Deep Compression on digits·mlp (issue 13).

1. Deep Compression (Han, Mao & Dally 2016) with ``HAN_SETTINGS`` on digits·mlp (LeNet-300-100 on 8×8 digits)
   for seeds 0, 1, 2, each from its own baseline and data split: the .clab file's length, its ratio to the
   float32 parameters (the "float32 file", 4 bytes a parameter), the accuracy drop in points of the network loaded
   back from the file, and the bytes of every stage. Target: mean ratio ≥ 50× with the mean drop within 1 point.

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
from compress_core.data import load_dataset  # noqa: E402
from compress_core.deep_compression import HAN_SETTINGS, run_pipeline  # noqa: E402
from compress_core.export import han_format  # noqa: E402
from compress_core.train import evaluate  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated baseline seeds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one: as the app and the tests)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    summary: dict = {"threads": torch.get_num_threads()}
    for section in (deep_compression,):
        summary.update(section(seeds))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
