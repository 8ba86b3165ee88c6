"""Benchmark the foundation: training time and test accuracy of every (data set, model) pair, and the
app's start-up time in headless Chromium, cold (empty cache: the default baseline is trained) and warm
(disk cache filled: the baseline is loaded).

Start-up is measured from launching `streamlit run app.py` to the first finished script run seen in the
browser (metrics on screen, no running indicator). Prints one JSON line per measurement; the last line
is one JSON object: {"pairs": [...], "cold_start_s": ..., "warm_start_s": ...}.

Usage: python bench/bench_baselines.py [--skip-browser]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress_core.baselines import get_baseline  # noqa: E402
from compress_core.data import list_datasets  # noqa: E402
from compress_core.models import list_models  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS, chromium_path, free_port, start_server, wait_for_app  # noqa: E402


def bench_pairs() -> list[dict]:
    rows = []
    for ds in list_datasets():
        for model in list_models(ds):
            t0 = time.perf_counter()
            b = get_baseline(ds, model, seed=0, use_cache=False)
            row = {"dataset": ds, "model": model, "test_acc": round(b.test_metrics.accuracy, 4),
                   "train_s": round(time.perf_counter() - t0, 2), "epochs": b.config.train.epochs}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def time_start(cache_dir: str, browser) -> float:
    """Seconds from `streamlit run` to the first finished run of the home page in Chromium."""
    port = free_port()
    t0 = time.perf_counter()
    proc = start_server(port, env={"COMPRESS_LAB_CACHE": cache_dir})
    try:
        page = browser.new_page()
        deadline = time.time() + 120
        while True:  # the server is not listening yet: retry until it answers
            try:
                page.goto(f"http://127.0.0.1:{port}/", timeout=5_000)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        wait_for_app(page, timeout=120_000)
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=120_000)
        elapsed = time.perf_counter() - t0
        page.close()
        return elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-browser", action="store_true", help="only the training table")
    args = ap.parse_args()
    pairs = bench_pairs()
    result = {"pairs": pairs, "cold_start_s": None, "warm_start_s": None}
    if not args.skip_browser:
        from playwright.sync_api import sync_playwright

        with tempfile.TemporaryDirectory() as cache, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
            result["cold_start_s"] = round(time_start(cache, browser), 2)
            print(json.dumps({"cold_start_s": result["cold_start_s"]}), flush=True)
            result["warm_start_s"] = round(time_start(cache, browser), 2)
            print(json.dumps({"warm_start_s": result["warm_start_s"]}), flush=True)
            browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
