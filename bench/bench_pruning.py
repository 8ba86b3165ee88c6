"""Benchmark pruning on digits·mlp: accuracy after iterative pruning vs one-shot, the cost of one slider
move, and the measured speed of structured pruning.

1. Iterative pruning with fine-tuning to 95 % weight sparsity (global magnitude ranking, half of the
   survivors removed per round, 5 epochs of SGD fine-tuning after each) vs one-shot pruning to the same
   mask settings without fine-tuning; test accuracy drop in points, mean of seeds 0, 1, 2.
2. One slider move of the Pruning page on the default model: prune + evaluate + the figures' data and
   their JSON (what Streamlit sends), over the slider's positions; median and p95 in ms.
3. Structured pruning of 50 % of the hidden neurons, shrunk by surgery: forward latency at batch 512 as a
   ratio to the dense model (medians measured in the same run), plus the other variants for context.
4. A sparsity move on a 10 M-weight MLP: a fresh ``prune`` per move vs the page's path, a ``Ranking`` built
   once per setting and one comparison per weight per move (target: a move ≤ 50 ms).

Prints one JSON line per measurement; the last line is one JSON object with iterative_sparsity,
iterative_acc_drop_pts, oneshot_acc_drop_pts, slider_ms_median, slider_ms_p95, structured50_latency_ratio.

Usage: python bench/bench_pruning.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import load_dataset  # noqa: E402
from compress_core.pruning import (  # noqa: E402
    PruneSettings,
    accuracy_curves,
    apply_mask,
    iterative,
    latency_report,
    prune,
    prune_to,
    prune_with,
    run_schedule,
    size_report,
    threshold,
    weight_values,
)
from compress_core.train import TrainConfig, evaluate  # noqa: E402
from compress_core.viz import pruning as pviz  # noqa: E402

RECIPE = dict(scope="global", output_scale=1.0)
FINETUNE = TrainConfig(epochs=5, lr=0.03, optimizer="sgd")
TARGET = 0.95


def bench_iterative(seeds=(0, 1, 2)) -> dict:
    rows = []
    for seed in seeds:
        b = get_baseline("digits", "mlp", seed=seed)
        ds = load_dataset("digits", seed=seed)
        model = b.model
        t0 = time.perf_counter()
        res = run_schedule(model, ds, iterative(TARGET, rate=0.5), finetune=FINETUNE, seed=seed, **RECIPE)
        secs = time.perf_counter() - t0
        one = evaluate(apply_mask(model, prune_to(model, TARGET, **RECIPE)), ds.x_test, ds.y_test)
        one_ft = run_schedule(model, ds, [TARGET], finetune=FINETUNE, seed=seed, **RECIPE).rows[-1]["test_acc"]
        row = dict(seed=seed, baseline_acc=b.test_metrics.accuracy, sparsity=res.mask.sparsity(),
                   rounds=len(res.rows), iterative_acc=res.rows[-1]["test_acc"], oneshot_acc=one.accuracy,
                   oneshot_ft_acc=one_ft, iterative_s=round(secs, 2),
                   layer_sparsity={k: round(v, 4) for k, v in res.mask.layer_sparsity().items()})
        print(json.dumps(row), flush=True)
        rows.append(row)
    mean = lambda k: statistics.mean(100 * (r["baseline_acc"] - r[k]) for r in rows)  # noqa: E731
    out = dict(iterative_sparsity=min(r["sparsity"] for r in rows),
               iterative_acc_drop_pts=round(mean("iterative_acc"), 2),
               oneshot_acc_drop_pts=round(mean("oneshot_acc"), 2),
               oneshot_ft_acc_drop_pts=round(mean("oneshot_ft_acc"), 2))
    print(json.dumps(out), flush=True)
    return out


def bench_slider(repeats: int) -> dict:
    """What the page's fragment computes for one position of the default view (digits·mlp, fc1)."""
    b = get_baseline("digits", "mlp", seed=0)
    ds = load_dataset("digits", seed=0)
    model = b.model
    curves = accuracy_curves(model, ds, (0.5, 0.9, 0.99), finetune=TrainConfig(epochs=1), modes=("oneshot",))
    positions = [50.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.5, 99.9]
    times = []
    for _ in range(repeats):
        for pos in positions:
            t0 = time.perf_counter()
            s = PruneSettings(sparsity=pos / 100, output_scale=0.5)
            res = prune_with(model, ds, s)
            sizes = size_report(model, res.mask)
            figs = [pviz.weight_histogram(weight_values(model, "fc1").numpy(),
                                          res.mask["fc1.weight"].reshape(-1).numpy(),
                                          threshold(model, res.mask, "fc1"), "fc1"),
                    pviz.neuron_tiles(res.mask["fc1.weight"].numpy(), (8, 8), count=24, cols=6),
                    pviz.layer_bars(res.mask.layer_sparsity()),
                    pviz.curves_figure(curves, b.test_metrics.accuracy, res.mask.sparsity())]
            payload = sum(len(f.to_json()) for f in figs) + len(json.dumps(sizes))
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out = dict(slider_ms_median=round(statistics.median(times), 2),
               slider_ms_p95=round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
               slider_moves=len(times), payload_bytes=payload)
    print(json.dumps(out), flush=True)
    return out


def bench_structured(repeats: int) -> dict:
    b = get_baseline("digits", "mlp", seed=0)
    model = b.model
    mask = prune(model, 0.5, granularity="neuron")
    rows = latency_report(model, mask, (1, 8, 8), batch=512, repeats=repeats, device=torch.device("cpu"))
    for r in rows:
        print(json.dumps({"variant": r["variant"], "median_ms": round(r["median_ms"], 4),
                          "p95_ms": round(r["p95_ms"], 4), "vs_dense": round(r["vs_dense"], 3)}), flush=True)
    unstructured = latency_report(model, prune(model, 0.9), (1, 8, 8), batch=512, repeats=repeats,
                                  device=torch.device("cpu"))
    for r in unstructured:
        print(json.dumps({"unstructured90_variant": r["variant"], "median_ms": round(r["median_ms"], 4),
                          "vs_dense": round(r["vs_dense"], 3)}), flush=True)
    shrunk = next(r for r in rows if r["variant"].startswith("structured"))
    return dict(structured50_latency_ratio=round(shrunk["vs_dense"], 3),
                structured50_dense_ms=round(rows[0]["median_ms"], 4),
                structured50_shrunk_ms=round(shrunk["median_ms"], 4))


def bench_big_mask(moves: int) -> dict:
    """A sparsity move on a 10 M-weight MLP (784-3000-2520-10): a fresh magnitude ranking per move (``prune``)
    vs ``Ranking`` built once per setting, then one comparison per weight per move (the page's path)."""
    from torch import nn

    from compress_core.pruning.ranking import Ranking

    torch.manual_seed(0)
    big = nn.Sequential(nn.Linear(784, 3000), nn.ReLU(), nn.Linear(3000, 2520), nn.ReLU(), nn.Linear(2520, 10))
    weights = sum(m.weight.numel() for m in big if isinstance(m, nn.Linear))
    grid = [0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - t)

    fresh = [timed(lambda s=s: prune(big, s)) for s in grid[:max(3, moves // 4)]]
    t = time.perf_counter()
    ranking = Ranking(big)
    build_ms = 1000 * (time.perf_counter() - t)
    moved = [timed(lambda s=s: ranking.mask(s)) for _ in range(max(1, moves // len(grid))) for s in grid]
    out = dict(big_weights=weights, big_prune_ms_median=round(statistics.median(fresh), 1),
               big_ranking_build_ms=round(build_ms, 1), big_move_ms_median=round(statistics.median(moved), 1),
               big_move_ms_p95=round(sorted(moved)[int(0.95 * (len(moved) - 1))], 1))
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = ap.parse_args()
    torch.manual_seed(0)
    # The app runs torch with one intra-op thread (app.py: sessions share one server process), so the
    # slider figures are measured the same way; torch's default thread count is printed beside them.
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result = {"threads": 1}
    result.update(bench_iterative())
    result.update(bench_slider(repeats=2 if args.quick else 10))
    torch.set_num_threads(default_threads)
    many = bench_slider(repeats=2 if args.quick else 10)
    torch.set_num_threads(1)
    result.update({f"slider_ms_median_{default_threads}threads": many["slider_ms_median"],
                   f"slider_ms_p95_{default_threads}threads": many["slider_ms_p95"]})
    result.update(bench_structured(repeats=20 if args.quick else 200))
    result.update(bench_big_mask(moves=7 if args.quick else 35))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
