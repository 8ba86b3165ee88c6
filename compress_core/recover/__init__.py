"""Getting accuracy back after compression: find which layer broke it, what to undo, and how to repair it.

- ``debugger``: ``DropDebugger``: per-layer errors (only this layer compressed against all of them), the weight
  error split into pruning, clipping and rounding, the flipped examples and where they diverge, per-layer reverts.
- ``text_flips``: ``changed_characters``: a language model's counterpart of flipped examples, the held-out
  characters whose top prediction changed.
- ``budget``: ``quant_budget_search`` and ``prune_budget_search``: the smallest model within a budget, in accuracy
  points or (a language model) in bits per character added.
- ``equalize``: cross-layer equalization and bias correction (Nagel et al. 2019, data-free quantization).
- ``adaround``: adaptive rounding of the weights, learned layer by layer (Nagel et al. 2020).
- ``distill``: knowledge distillation from the float baseline (Hinton et al. 2015), the recipes' ``Distill`` step.

Usage::

    from compress_core.recover import DropDebugger, quant_budget_search
    dbg = DropDebugger(b.model, qmodel, ds.x_val, ds.y_val)
    dbg.layers(), dbg.flips(), dbg.revert(["fc1"]).accuracy
    res = quant_budget_search(b.model, ds, QuantConfig(weight_bits=3), budget_pts=0.5)
    res = quant_budget_search(gpt, text, QuantConfig(weight_bits=3), budget_pts=0.05, unit="bits")
    from compress_core.recover.adaround import adaround_model   # the repairs: import from their modules
"""
from .budget import BudgetResult, prune_budget_search, quant_budget_search
from .debugger import DropDebugger, Reverted, swapped, weight_error

__all__ = ["BudgetResult", "DropDebugger", "Reverted", "prune_budget_search", "quant_budget_search", "swapped",
           "weight_error"]
