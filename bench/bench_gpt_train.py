"""Benchmark the language-model baseline: train the default GPT on the pydoc corpus with its recipe on one torch
thread (as the app trains), without the cache, and print one JSON line: parameters, training seconds, and bits per
character on the held-out validation and test text (± the standard error over their windows), with a sample of
what it writes.

Usage: python bench/bench_gpt_train.py [--model gpt] [--seed 0] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress_core.data import load_dataset  # noqa: E402
from compress_core.models import build_model  # noqa: E402
from compress_core.settings import default_train_config  # noqa: E402
from compress_core.text import generate, lm_metrics  # noqa: E402
from compress_core.train import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset("pydoc", seed=args.seed)
    cfg = default_train_config("pydoc", args.model)
    model = build_model(args.model, ds, seed=args.seed)
    t0 = time.perf_counter()
    hist = train(model, ds, cfg, seed=args.seed, device=torch.device("cpu"))
    train_s = time.perf_counter() - t0
    val, test = lm_metrics(model, ds, "val"), lm_metrics(model, ds, "test")
    print(json.dumps({
        "model": args.model, "params": sum(p.numel() for p in model.parameters()), "threads": args.threads,
        "seed": args.seed, "train_s": round(train_s, 1), "steps": hist.iterations,
        "best_iteration": hist.best_iteration,
        "val_bpc": round(val.bpc, 3), "val_bpc_se": round(val.bpc_se, 3), "test_bpc": round(test.bpc, 3),
        "test_bpc_se": round(test.bpc_se, 3), "test_char_acc": round(test.accuracy, 3),
        "val_bpc_curve": [round(r["val_loss"] / 0.6931471805599453, 3) for r in hist.records],
        "sample": generate(model, ds, 'The "for" statement\n', n_chars=160, temperature=0.8, seed=0),
        "config": cfg.to_dict()}))


if __name__ == "__main__":
    main()
