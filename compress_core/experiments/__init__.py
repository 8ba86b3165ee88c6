"""What-if comparisons: compression recipes, their measured results, sweeps (in-process or on Ray), Pareto fronts.

- ``recipe``: ``Recipe`` and its steps (``Prune``, ``FineTune``, ``Distill``, ``Quantize``, ``Share``), JSON round trip,
  ``grid`` for sweeps, ``PRESETS`` (``GPT_PRESETS`` for the GPT; ``presets_for(model)`` picks).
- ``accounting``: stored bytes in a named format and an energy estimate per inference (Horowitz, ISSCC 2014).
- ``run``: ``run(recipe) -> Result``, cached by recipe (on the GPT: bits per character, paired with the float
  baseline); ``compressed(recipe)``: the compressed network itself, for the drop debugger.
- ``sweep``: ``sweep(recipes, executor="local" | "ray")`` and ``pareto_front``.
- ``python -m compress_core.experiments``: the same sweeps from a recipe JSON, without the UI.

Usage::

    from compress_core.experiments import PRESETS, run
    res = run(PRESETS["prune 90 % + int4"]("digits", "mlp"))
    print(res.test_acc, res.bytes, res.ratio)
"""
from .accounting import ENERGY_PJ, ENERGY_SOURCE, LEFT_OUT, layer_costs, summarize
from .recipe import (
    GPT_PRESETS,
    PRESETS,
    RECIPE_LIMITS,
    STEPS,
    Distill,
    FineTune,
    Prune,
    Quantize,
    Recipe,
    Share,
    Step,
    dumps,
    grid,
    loads,
    presets_for,
    with_value,
)
from .run import RESULT_VERSION, Result, cached, compressed, run, standard_error
from .sweep import EXECUTORS, pareto_front, sweep

__all__ = ["ENERGY_PJ", "ENERGY_SOURCE", "EXECUTORS", "GPT_PRESETS", "LEFT_OUT", "PRESETS", "RECIPE_LIMITS",
           "RESULT_VERSION", "STEPS", "Distill", "FineTune", "Prune", "Quantize", "Recipe", "Result", "Share", "Step",
           "cached", "compressed", "dumps", "grid", "layer_costs", "loads", "pareto_front", "presets_for", "run",
           "standard_error", "summarize", "sweep", "with_value"]
