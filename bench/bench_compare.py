"""Benchmark the Compare page's sweeps (compress_core.experiments): a sparsity × bit-width grid, in this process and
on a local Ray, with the same numbers both ways.

The grid: digits·mlp, 6 sparsities × 6 weight bit widths; each recipe prunes (magnitude, per layer, one-shot)
with ``--finetune-epochs`` of fine-tuning, then quantizes post-training (per-channel symmetric weights, 8-bit
activations). Every run computes (``use_cache=False``); the baseline is loaded (or trained once) beforehand, so
neither timing includes it.

1. The 36 runs one after the other in this process (``sweep(..., executor="local")``): wall time.
2. A local Ray on ``--cpus`` cores: its start-up time, then the same grid as one Ray task per recipe (cold: the
   workers start and import torch inside this time), then once more on the warm workers.
3. Whether every run's ``Result.comparable()`` (everything but measured times) is identical between the local and
   the Ray runs, and the number of points on the Pareto front of test accuracy vs stored bytes.

Prints the accuracy and size tables (sparsity rows × bits columns), a JSON line per phase, and last one JSON object
with ``grid_6x6_s``, ``grid_6x6_ray_s``, ``grid_6x6_ray_warm_s``, ``ray_start_s``, ``runs_identical``,
``pareto_points``, ``cpus``, ``torch_threads`` and ``date``.

4. The GPT part (``--gpt``, or alone with ``--gpt-only``): every GPT preset (``experiments.GPT_PRESETS``) on the
   built-in GPT (pydoc, seed 0; its baseline loaded or trained beforehand, outside the timings), each computed
   (``use_cache=False``): bits per character on the test windows with its standard error, the paired change from
   the float baseline with its s.e., stored bytes, the ratio to float32 and the run's seconds; then the presets on
   the Pareto front of bits per character (minimised) against bytes. Its JSON line (``"phase": "gpt"``) comes
   before the last one, and ``gpt`` in the last one holds the same figures.

Usage: python bench/bench_compare.py [--cpus N] [--finetune-epochs 1] [--threads 1] [--gpt | --gpt-only]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compress_core.baselines import cache_root, get_baseline  # noqa: E402
from compress_core.experiments import (  # noqa: E402,E501
    GPT_PRESETS,
    Prune,
    Quantize,
    Recipe,
    grid,
    pareto_front,
    run,
    sweep,
)

SPARSITIES = [0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
BITS = [8, 6, 5, 4, 3, 2]


def table(title: str, results, value) -> None:
    """Rows: sparsity; columns: weight bits (results in grid order, sparsity slowest)."""
    print(f"\n{title}")
    print("sparsity " + "".join(f"{f'w{b}':>9}" for b in BITS))
    for i, s in enumerate(SPARSITIES):
        cells = results[i * len(BITS):(i + 1) * len(BITS)]
        print(f"{s:>8.0%} " + "".join(f"{value(r):>9}" for r in cells))
    print(flush=True)


def gpt_part(model: str = "gpt") -> dict:
    """Every GPT preset on ``model`` (pydoc, seed 0), computed: bits/char ± s.e., paired change, bytes, seconds."""
    get_baseline("pydoc", model, 0)  # outside the timings
    rows = {}
    results = []
    for name, make in GPT_PRESETS.items():
        t0 = time.perf_counter()
        r = run(make("pydoc", model, 0), use_cache=False)
        results.append(r)
        rows[name] = {"bpc": round(r.bpc, 4), "bpc_se": round(r.bpc_se, 4), "diff": round(r.bpc_diff, 4),
                      "diff_se": round(r.bpc_diff_se, 4), "bytes": r.bytes, "ratio": round(r.ratio, 2),
                      "seconds": round(time.perf_counter() - t0, 2)}
    print(f"\nGPT presets on pydoc·{model} (float baseline {results[0].baseline_bpc:.3f} bits/char, "
          f"{results[0].n_test:,} test characters; {results[0].float32_bytes / 1000:.1f} KB in float32)")
    print(f"{'preset':<32}{'bits/char':>10}{'± s.e.':>8}{'Δ':>8}{'± Δ':>7}{'bytes':>9}{'×':>6}{'s':>7}")
    for name, v in rows.items():
        print(f"{name:<32}{v['bpc']:>10.3f}{v['bpc_se']:>8.3f}{v['diff']:>+8.3f}{v['diff_se']:>7.3f}{v['bytes']:>9}"
              f"{v['ratio']:>6.1f}{v['seconds']:>7.1f}")
    front = [list(rows)[i] for i in pareto_front([(r.bytes, r.bpc) for r in results], lower_is_better=True)]
    print(f"Pareto front (bits/char vs bytes, both minimised): {', '.join(front)}\n", flush=True)
    out = {"phase": "gpt", "model": model, "baseline_bpc": round(results[0].baseline_bpc, 4),
           "test_chars": results[0].n_test, "presets": rows, "pareto": front}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="cores the local Ray may use (default: all)")
    ap.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning epochs after pruning (≥ 1)")
    ap.add_argument("--threads", type=int, default=1,
                    help="this process's torch threads (every run computes on one thread whatever this says)")
    ap.add_argument("--gpt", action="store_true", help="also run the GPT presets on the built-in GPT")
    ap.add_argument("--gpt-only", action="store_true", help="only the GPT part (no digits grid, no Ray)")
    ap.add_argument("--gpt-model", default="gpt", help="the GPT to run the presets on (default: the built-in one)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.gpt_only:
        gpt = gpt_part(args.gpt_model)
        print(json.dumps({"gpt": gpt, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "date": datetime.datetime.now().isoformat(timespec="seconds")}))
        return
    gpt = gpt_part(args.gpt_model) if args.gpt else None
    base = Recipe("digits", "mlp", 0, steps=(Prune(finetune_epochs=args.finetune_epochs),
                                             Quantize(mode="ptq", act_bits=8)))
    recipes = grid(base, {"prune.sparsity": SPARSITIES, "quantize.weight_bits": BITS})
    assert len(recipes) == 36
    get_baseline("digits", "mlp", 0)  # trained (or loaded) here, outside the timings; the Ray workers read it

    t0 = time.perf_counter()
    local = sweep(recipes, use_cache=False)
    local_s = time.perf_counter() - t0
    print(json.dumps({"phase": "local", "runs": len(local), "seconds": round(local_s, 3),
                      "per_run_ms": round(1000 * local_s / len(local), 1)}), flush=True)

    import ray

    t0 = time.perf_counter()
    # the workers need this checkout on their path (this script may run from anywhere) and the same cache
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "COMPRESS_LAB_CACHE": str(cache_root())}
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    ray_start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        remote = sweep(recipes, executor="ray", use_cache=False)
        ray_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        remote_warm = sweep(recipes, executor="ray", use_cache=False)
        ray_warm_s = time.perf_counter() - t0
    finally:
        ray.shutdown()
    print(json.dumps({"phase": "ray", "cpus": args.cpus, "start_s": round(ray_start_s, 3),
                      "grid_cold_s": round(ray_s, 3), "grid_warm_s": round(ray_warm_s, 3)}), flush=True)

    differ = [r.title for r, a, b in zip(recipes, local, remote) if a.comparable() != b.comparable()]
    differ_warm = [r.title for r, a, b in zip(recipes, local, remote_warm) if a.comparable() != b.comparable()]
    identical = not differ and not differ_warm
    front = pareto_front([(r.bytes, r.test_acc) for r in local])

    se = max(r.test_acc_se for r in local)
    table(f"Test accuracy (%), digits·mlp ({local[0].n_test} test examples, s.e. ≤ ±{100 * se:.1f}), float "
          f"baseline {100 * local[0].baseline_acc:.1f} %; prune + {args.finetune_epochs} ep fine-tune → PTQ a8",
          local, lambda r: f"{100 * r.test_acc:.1f}")
    table(f"Stored bytes (KB; float32 network {local[0].float32_bytes / 1000:.1f} KB)", local,
          lambda r: f"{r.bytes / 1000:.1f}")
    table("Integer-only accuracy (%)", local,
          lambda r: "-" if r.integer_acc is None else f"{100 * r.integer_acc:.1f}")
    print("Pareto front (accuracy vs stored bytes):")
    for i in front:
        r = local[i]
        print(f"  {r.bytes:>7} B  {100 * r.test_acc:5.1f} %  ×{r.ratio:5.1f}  {r.describe}")
    if differ or differ_warm:
        print(f"Runs that differ between local and Ray: {sorted(set(differ + differ_warm))}")
    print(flush=True)

    print(json.dumps({
        "grid_6x6_s": round(local_s, 3), "grid_6x6_ray_s": round(ray_s, 3), "grid_6x6_ray_warm_s": round(ray_warm_s, 3),
        "ray_start_s": round(ray_start_s, 3), "runs_identical": identical, "runs": len(recipes),
        "pareto_points": len(front), "finetune_epochs": args.finetune_epochs, "cpus": args.cpus, "gpt": gpt,
        "torch_threads": torch.get_num_threads(), "ray": ray.__version__, "torch": torch.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds")}))


if __name__ == "__main__":
    main()
