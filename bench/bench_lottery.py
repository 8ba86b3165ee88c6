"""Benchmark: lottery tickets on MNIST-1D and digits (Frankle & Carbin 2019; Greydanus 2020).

Runs iterative magnitude pruning (20 % per round, output layer at 10 %, rewinding to θ0) with its controls,
from scratch (no cache), and prints one JSON line per (data set, round, arm) with mean accuracies over the
seeds, then one JSON object with the targets of issue 4:

- mnist1d·mlp at the round nearest 90 % sparsity: ticket vs random re-init (target: ≥ 5 points better) and
  vs the dense network (target: at least as accurate), means of the seeds;
- digits·mlp: the same table and the sparsest ticket that matches the dense network;
- the wall time of 10 rounds with both controls on mnist1d·mlp, one seed (target: ≤ 120 s on 2 cores).

Usage: ``python bench/bench_lottery.py [--seeds 3] [--rounds 10] [--threads 1]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from compress_core.lottery import LotteryConfig, run_lottery, summarize, verdict  # noqa: E402


def table(name: str, runs) -> list[dict]:
    rows = summarize(runs, "final_acc")
    for r in rows:
        print(json.dumps({"bench": "lottery", "pair": name, "round": r["round"], "arm": r["arm"],
                          "remaining_pct": round(r["remaining"], 2), "sparsity_pct": round(100 - r["remaining"], 2),
                          "final_acc": round(r["acc_mean"], 2), "acc_std": round(r["acc_std"], 2),
                          "early_stop_acc": round(r["early_stop_acc"], 2), "best_acc": round(r["best_acc"], 2),
                          "early_stop_iteration": r["early_stop_iteration"], "seeds": r["seeds"]}), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; one is fastest for these small MLPs, and immune to a busy machine")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds))
    cfg = LotteryConfig.default("mnist1d", "mlp", rounds=args.rounds, controls=("reinit", "random_mask"))
    runs, times = [], []
    for s in seeds:
        t = time.perf_counter()
        runs.append(run_lottery(cfg.with_seed(s), use_cache=False))
        times.append(time.perf_counter() - t)
        print(json.dumps({"bench": "lottery", "pair": "mnist1d·mlp", "seed": s, "seconds": round(times[-1], 1)}),
              flush=True)
    rows = table("mnist1d·mlp", runs)
    tickets = [r for r in rows if r["arm"] == "ticket"]
    at90 = min(tickets, key=lambda r: abs(r["remaining"] - 10.0))
    get = {(r["round"], r["arm"]): r["acc_mean"] for r in rows}
    v1 = verdict(runs)
    print(json.dumps({"bench": "lottery", "pair": "mnist1d·mlp", "verdict": v1.text}), flush=True)

    dcfg = LotteryConfig.default("digits", "mlp", rounds=args.rounds, controls=("reinit", "random_mask"))
    druns = [run_lottery(dcfg.with_seed(s), use_cache=False) for s in seeds]
    table("digits·mlp", druns)
    v2 = verdict(druns)
    print(json.dumps({"bench": "lottery", "pair": "digits·mlp", "verdict": v2.text}), flush=True)

    print(json.dumps({
        "mnist1d_round": at90["round"],
        "mnist1d_sparsity": round(100 - at90["remaining"], 2),
        "mnist1d_ticket_acc": round(at90["acc_mean"], 2),
        "mnist1d_reinit_acc": round(get[(at90["round"], "reinit")], 2),
        "mnist1d_random_mask_acc": round(get[(at90["round"], "random_mask")], 2),
        "mnist1d_dense_acc": round(rows[0]["acc_mean"], 2),
        "mnist1d_ticket_minus_reinit": round(at90["acc_mean"] - get[(at90["round"], "reinit")], 2),
        "mnist1d_ticket_minus_dense": round(at90["acc_mean"] - rows[0]["acc_mean"], 2),
        "mnist1d_10_rounds_s": round(times[0], 1),
        "mnist1d_rounds_s_median": round(sorted(times)[len(times) // 2], 1),
        "digits_sparsest_match_round": v2.matched_round,
        "digits_sparsest_match_remaining_pct": round(v2.remaining, 2),
        "digits_dense_acc": round(v2.dense_acc, 2),
        "digits_ticket_acc_at_match": round(v2.ticket_acc, 2),
        "seeds": len(seeds), "rounds": args.rounds, "accuracy": "final test accuracy, %",
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
