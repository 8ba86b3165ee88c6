"""The transformer track's benchmark: train the tiny GPT on pydoc's help texts, then score every modern method.

For each seed (the split, θ0 and the batch order), on one torch thread: train the default GPT (timed, into a fresh
cache folder unless --cache is given), capture the calibration rows once, and score every variant of
``compress_core.lm.BENCH_KEYS`` on the held-out test windows (bits per character, paired with float32). Then check
GPTQ's layer-wise objective against round-to-nearest's on every layer at 3 and 4 bits (group 128).

Prints one JSON line per seed, then as the last line the means over seeds::

    {"params", "train_s", "val_bpc_float", "test_bpc_float", "bpc": {key: mean}, "bpc_se": s.e. of float32's bpc
     (windows, mean over seeds), "diff_se": {key: paired s.e. vs float32}, "seeds", "threads": 1,
     "layer_objective_gptq_below_rtn": bool, "orderings": {...: bool}}

Usage: python bench/bench_llm.py [--seeds 0,1,2] [--model gpt] [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

torch.set_num_threads(1)

from compress_core import lm  # noqa: E402
from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import load_dataset  # noqa: E402
from compress_core.text import lm_metrics  # noqa: E402


def one_seed(seed: int, model_name: str, cache: Path) -> dict:
    t0 = time.perf_counter()
    b = get_baseline("pydoc", model_name, seed=seed, cache_dir=cache)
    train_s = b.history.seconds if b.from_cache else time.perf_counter() - t0
    ds = load_dataset("pydoc", seed=seed)
    model = b.model.eval()
    calib = lm.calibrate(model, ds, seed=seed)
    t1 = time.perf_counter()
    res = lm.scores(model, ds, lm.BENCH_KEYS, calib)
    objective = {bits: lm.layer_objectives(model, calib, bits, 128) for bits in (3, 4)}
    return dict(seed=seed, params=sum(p.numel() for p in model.parameters()), train_s=round(train_s, 2),
                val_bpc_float=lm_metrics(model, ds, "val").bpc, test_bpc_float=res["float"].bpc,
                bpc_se=res["float"].se, bpc={k: res[k].bpc for k in lm.BENCH_KEYS},
                diff_se={k: res[k].diff_se for k in lm.BENCH_KEYS}, methods_s=round(time.perf_counter() - t1, 2),
                gptq_below_rtn={bits: all(r["gptq"] <= r["rtn"] * (1 + 1e-9) for r in rows)
                                for bits, rows in objective.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--cache", default=None, help="baseline cache folder (default: a fresh one, so training is timed)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache or os.environ.get("COMPRESS_LAB_BENCH_CACHE") or tmp)
        runs = []
        for s in seeds:
            r = one_seed(s, args.model, cache)
            print(json.dumps(r), flush=True)
            runs.append(r)

    def mean(f):
        return statistics.fmean(f(r) for r in runs)

    bpc = {k: mean(lambda r, k=k: r["bpc"][k]) for k in lm.BENCH_KEYS}
    diff_se = {k: mean(lambda r, k=k: r["diff_se"][k]) / len(runs) ** 0.5 for k in lm.BENCH_KEYS}

    def below(a: str, b: str, margin: float = 2.0) -> bool:
        """a's mean bpc below b's by more than ``margin`` combined paired standard errors."""
        return bpc[b] - bpc[a] > margin * (diff_se[a] ** 2 + diff_se[b] ** 2) ** 0.5

    def at_or_below(a: str, b: str) -> bool:
        return not below(b, a)

    out = dict(params=runs[0]["params"], train_s=mean(lambda r: r["train_s"]),
               val_bpc_float=mean(lambda r: r["val_bpc_float"]), test_bpc_float=mean(lambda r: r["test_bpc_float"]),
               bpc=bpc, bpc_se=mean(lambda r: r["bpc_se"]), diff_se=diff_se, seeds=seeds, threads=1,
               layer_objective_gptq_below_rtn=all(all(r["gptq_below_rtn"].values()) for r in runs),
               orderings={"gptq_w3_below_rtn_w3": below("gptq_w3_g128", "rtn_w3_g128"),
                          "awq_w3_below_rtn_w3": below("awq_w3_g128", "rtn_w3_g128"),
                          "awq_w4_below_rtn_w4": below("awq_w4_g128", "rtn_w4_g128"),
                          "gptq_w4_below_rtn_w4": below("gptq_w4_g128", "rtn_w4_g128"),
                          "wanda_50_at_or_below_magnitude": at_or_below("wanda_50", "magnitude_50"),
                          "wanda_2_4_at_or_below_magnitude": at_or_below("wanda_2_4", "magnitude_2_4"),
                          "smoothquant_at_or_below_w8a8": at_or_below("w8a8_smoothquant", "w8a8_per_tensor")})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
