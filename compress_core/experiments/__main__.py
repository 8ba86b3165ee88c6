"""Run recipes and sweeps from a recipe JSON, without the UI.

    python -m compress_core.experiments recipes.json
    python -m compress_core.experiments recipes.json --grid prune.sparsity=0.5,0.8,0.9 \\
        --grid quantize.weight_bits=8,4,2 --executor ray --out runs.csv

``recipes.json`` is one recipe, a list of them, or the Compare page's download ({"recipes": [...]}). Each
``--grid path=v1,v2,…`` multiplies every recipe by one axis (paths as ``recipe.with_value``: ``seed``,
``prune.sparsity``, ``quantize.weight_bits``…). ``--executor ray`` fans the runs out over the Ray cluster named by
``--address`` or ``$RAY_ADDRESS`` (a local one if neither). The runs table is written as CSV (to ``--out`` or
standard output); the last line on standard error is a JSON summary.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

from .recipe import RECIPE_LIMITS, grid, loads
from .sweep import EXECUTORS, result_front, sweep


def _value(text: str):
    """A grid value as JSON when it parses (0.5, 4, true), else the string itself ('iterative')."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _axis(spec: str) -> tuple[str, list]:
    path, sep, values = spec.partition("=")
    if not sep or not path or not values:
        raise argparse.ArgumentTypeError(f"--grid needs path=v1,v2,… (got {spec!r})")
    return path.strip(), [_value(v.strip()) for v in values.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress_core.experiments", description=__doc__.split("\n\n")[0])
    p.add_argument("recipes", type=Path, help="a recipe JSON file (one recipe, a list, or {\"recipes\": [...]})")
    p.add_argument("--grid", type=_axis, action="append", default=[], metavar="PATH=V1,V2",
                   help="sweep one field over these values (repeatable; every combination runs)")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="where the runs compute")
    p.add_argument("--address", default=None, help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--out", type=Path, default=None, help="write the runs table here as CSV (default: stdout)")
    p.add_argument("--no-cache", action="store_true", help="compute every run, reading and writing no cache")
    args = p.parse_args(argv)
    try:
        with args.recipes.open(encoding="utf-8") as f:  # no more than the limit (and one) is read
            recipes = loads(f.read(RECIPE_LIMITS["chars"] + 1))
        axes = dict(args.grid)
        if axes:  # each grid point is its own variant: named by what it does, not after the recipe it came from
            recipes = [dataclasses.replace(g, name=g.describe()) for r in recipes for g in grid(r, axes)]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        results = sweep(recipes, executor=args.executor, use_cache=not args.no_cache, address=args.address,
                        progress=lambda f, t: print(t, file=sys.stderr))
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        print(f"error: {e}", file=sys.stderr)  # --executor ray without Ray installed: how to install it
        return 2
    seconds = time.perf_counter() - t0
    rows = [r.row() for r in results]
    out = args.out.open("w", newline="") if args.out else sys.stdout
    try:
        w = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))  # classifiers and GPTs
        w.writeheader()
        w.writerows(rows)
    finally:
        if args.out:
            out.close()
    front = result_front(results)
    print(json.dumps({"runs": len(results), "seconds": round(seconds, 3), "executor": args.executor,
                      "pareto": [results[i].title for i in front]}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
