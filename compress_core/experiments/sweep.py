"""Sweeps: many independent ``run`` calls, in this process or fanned out over a Ray cluster; the Pareto front.

A sweep is a list of recipes (``recipe.grid`` builds one from axes such as sparsity × bit width). Each recipe
runs on its own, so the list can be split across workers however they come:

- ``executor="local"``: one after the other in this process (the default; no extra dependency).
- ``executor="ray"``: one Ray task per recipe. Ray is optional (``pip install -r requirements-ray.txt``; the
  app's own requirements leave it out): without it this executor says so in plain words. ``ray.init()`` joins
  the cluster named by ``$RAY_ADDRESS``, or starts a local one on this machine's cores; on a cluster the tasks
  spread over every machine it has. Each task returns the result as JSON-ready values, so nothing but plain data
  crosses the wire. Every run computes on one thread (``run.RUN_THREADS``), so a recipe gives the same numbers on
  every worker (tested against local runs).

Usage::

    recipes = grid(Recipe("digits", "mlp", steps=(Prune(), Quantize())),
                   {"prune.sparsity": [0.5, 0.9], "quantize.weight_bits": [8, 4]})
    results = sweep(recipes, executor="ray")
    front = pareto_front([(r.bytes, r.test_acc) for r in results])
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from .recipe import Recipe
from .run import Result, retitled, run

__all__ = ["EXECUTORS", "pareto_front", "result_front", "sweep"]

EXECUTORS = ("local", "ray")


def pareto_front(points: Sequence[tuple[float, float]], *, lower_is_better: bool = False) -> list[int]:
    """Indices of the points (cost, value) that no other point beats: none has cost ≤ and value ≥ with one of
    them strictly (value ≤ with ``lower_is_better``: bits per character, a loss). Sorted by cost. Of exactly
    equal points, the first is kept.

    >>> pareto_front([(10, 0.9), (5, 0.8), (20, 0.85), (5, 0.7)])
    [1, 0]
    >>> pareto_front([(10, 2.1), (5, 2.4), (20, 2.2), (5, 2.6)], lower_is_better=True)
    [1, 0]
    """
    sign = -1.0 if lower_is_better else 1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1], i))
    front, best = [], None
    for i in order:
        v = sign * points[i][1]
        if best is None or v > best:
            front.append(i)
            best = v
    return front


def result_front(results: Sequence[Result]) -> list[int]:
    """``pareto_front`` of results over (stored bytes, score): accuracy maximised, or a language model's bits per
    character minimised."""
    lm = any(r.is_lm for r in results)
    return pareto_front([(r.bytes, r.score) for r in results], lower_is_better=lm)


RAY_MISSING = ("The Ray executor needs Ray, which the app's requirements leave out: install it with "
               "`pip install -r requirements-ray.txt`, or run the sweep in this process (executor \"local\").")


def _import_ray():
    """The ``ray`` module, imported only when asked for (the app and local sweeps never need it); a
    ModuleNotFoundError in plain words when it is not installed."""
    try:
        import ray
    except ModuleNotFoundError as e:
        if e.name != "ray":  # Ray is there but broken: its own message says more
            raise
        raise ModuleNotFoundError(RAY_MISSING, name="ray") from e
    return ray


def _ray_run(recipe_json: str, cache_dir: str | None, use_cache: bool) -> dict:
    """One recipe on a Ray worker; plain values back."""
    return run(Recipe.from_json(recipe_json), use_cache=use_cache, cache_dir=cache_dir).to_dict()


def sweep(recipes: Sequence[Recipe], *, executor: str = "local", progress: Callable[[float, str], None] | None = None,
          use_cache: bool = True, cache_dir: str | None = None, address: str | None = None) -> list[Result]:
    """The results of ``recipes``, in their order.

    Args:
        executor: "local" (this process, one run after another) or "ray" (one task per recipe).
        progress: ``progress(fraction, text)`` after each finished run.
        use_cache: read and write the run cache (a worker on another machine uses its own disk).
        cache_dir: the cache root for every run (default ``$COMPRESS_LAB_CACHE`` or ~/.cache/compression-lab).
        address: the Ray cluster to join (default ``$RAY_ADDRESS``; neither = start a local Ray).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"Unknown executor {executor!r}: use one of {', '.join(EXECUTORS)}.")
    say = progress or (lambda f, t: None)
    total = len(recipes)
    if executor == "local":
        out = []
        for i, r in enumerate(recipes):
            out.append(run(r, use_cache=use_cache, cache_dir=cache_dir))
            say((i + 1) / total, f"{i + 1}/{total} runs done")
        return out
    ray = _import_ray()

    if not ray.is_initialized():
        # workers import compress_core from this checkout (it is not an installed package), whatever the cwd
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        env = {"PYTHONPATH": path, **{k: os.environ[k] for k in ("COMPRESS_LAB_CACHE",) if k in os.environ}}
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
    task = ray.remote(num_cpus=1)(_ray_run)
    pending = {task.remote(r.to_json(), str(cache_dir) if cache_dir else None, use_cache): i
               for i, r in enumerate(recipes)}
    results: dict[int, Result] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            results[i] = retitled(Result.from_dict(ray.get(ref)), recipes[i])
        say(len(results) / total, f"{len(results)}/{total} runs done on Ray")
    return [results[i] for i in range(total)]

