"""Pruning: which weights or neurons to remove, how, when, and what it buys.

- ``masks``: the ``Mask`` (parameter name → 0/1 tensor) and the pure functions that make one
  (``prune``, ``prune_to``, ``nm_prune``) or apply it (``apply_mask``).
- ``structured``: surgery that removes dead neurons/channels and returns a smaller dense model (``shrink``).
- ``gpt_structured``: the GPT's MLP neurons and attention heads, scored and cut out (``gpt_prune``, ``shrink_gpt``;
  Michel et al. 2019).
- ``schedules``: one-shot, iterative and cubic (Zhu & Gupta 2017) targets, and ``run_schedule``.
- ``sweeps``: accuracy against sparsity, and per-layer sensitivity.
- ``formats``: honest stored sizes (dense, CSR, bitmask, shrunk) and measured latency.
- ``outcome``: one pruning setting applied end to end (prune, optionally fine-tune, measure).
- ``wanda``, ``sparsegpt``: one-shot pruning from calibration inputs (Sun et al. 2024; Frantar & Alistarh 2023),
  on any Linear or Conv layer, unstructured or N:M; ``layerwise`` holds what they share (targets, selection,
  importance criteria as objects, the layer-by-layer loop).

Usage::

    from compress_core.pruning import prune, apply_mask, shrink
    mask = prune(model, 0.9, scope="global")
    small = shrink(model, prune(model, 0.5, granularity="neuron"))
    mask = wanda_prune(model, capture_inputs(model, x_calib), nm=(2, 4))
    small = shrink_gpt(gpt, gpt_prune(gpt, 0.5, unit="head"))   # 2 of 4 attention heads per block cut out
"""
from .formats import (
                      SparseLinear,
                      bitmask_bytes,
                      csr_bytes,
                      latency_report,
                      semi_structured_benchmark,
                      size_report,
                      structured_bytes,
                      time_call,
                      time_calls,
                      to_sparse_model,
                      torch_csr_bytes,
                      torch_csr_layout_bytes,
                      uint_bytes,
)
from .gpt_structured import GPT_CRITERIA, gpt_prune, gpt_summary, shrink_gpt, unit_scores
from .gradual import GradualResult, GradualSchedule, gradual_prune
from .layerwise import COMPARISONS, MagnitudeScore, calibrated_mask, select_mask
from .masks import (
    CRITERIA,
    GRANULARITIES,
    SCOPES,
    Mask,
    apply_mask,
    is_nm_sparse,
    nm_keep,
    nm_prune,
    prune,
    prune_to,
    threshold,
)
from .outcome import (
    SCHEDULES,
    PruneOutcome,
    PruneSettings,
    extra_training_control,
    prune_with,
    ranking_for,
    weight_values,
)
from .ranking import Ranking
from .report import PruneReport, prune_report
from .schedules import ScheduleResult, cubic, iterative, one_shot, rounds_rate, run_schedule
from .sparsegpt import inverse_hessian_factor, sparsegpt_layer, sparsegpt_prune
from .structured import kept_units, shrink, structure_summary
from .sweeps import accuracy_curves, sparsity_sensitivity
from .wanda import WandaScore, wanda_mask, wanda_prune, wanda_scores

__all__ = ["GPT_CRITERIA", "gpt_prune", "gpt_summary", "shrink_gpt", "unit_scores",
           "GradualResult", "GradualSchedule", "PruneReport", "Ranking", "gradual_prune", "prune_report",
           "SparseLinear", "structured_bytes", "time_call", "time_calls", "to_sparse_model", "torch_csr_bytes",
           "torch_csr_layout_bytes", "uint_bytes", "CRITERIA", "GRANULARITIES", "SCHEDULES", "SCOPES", "Mask",
           "PruneOutcome", "PruneSettings", "extra_training_control",
           "ScheduleResult", "accuracy_curves", "apply_mask", "bitmask_bytes", "csr_bytes", "cubic", "is_nm_sparse",
           "iterative", "kept_units", "latency_report", "nm_prune", "one_shot", "prune", "prune_to", "prune_with",
           "ranking_for", "rounds_rate", "run_schedule", "semi_structured_benchmark", "shrink", "size_report",
           "sparsity_sensitivity", "structure_summary", "threshold", "weight_values",
           "COMPARISONS", "MagnitudeScore", "WandaScore", "calibrated_mask", "inverse_hessian_factor", "nm_keep",
           "select_mask", "sparsegpt_layer", "sparsegpt_prune", "wanda_mask", "wanda_prune", "wanda_scores"]
