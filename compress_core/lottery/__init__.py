"""The lottery ticket hypothesis (Frankle & Carbin 2019): iterative magnitude pruning with rewinding.

- ``results``: the frozen ``LotteryConfig``, per-round results (``ArmRound``, ``LotteryRun``), summaries,
  mask overlap and the computed verdict.
- ``imp``: the runner: train, prune p % of the survivors, rewind them to θ0 (or θk), repeat; and the
  controls (random re-initialization, random mask with the same per-layer sparsity, one-shot).

Usage::

    from compress_core.lottery import LotteryConfig, run_lottery, verdict
    run = run_lottery(LotteryConfig(dataset="mnist1d", model="mlp", rounds=10))
"""
from .imp import (
                      Progress,
                      cache_paths,
                      check,
                      expected_remaining,
                      jaccard,
                      load_run,
                      matched_mask,
                      overlap_matrix,
                      rate_for_target,
                      rewound,
                      run_lottery,
                      run_seeds,
                      total_iterations,
)
from .results import (
                      ARM_LABELS,
                      ARMS,
                      CONTROLS,
                      MEASURES,
                      ArmRound,
                      LotteryConfig,
                      LotteryRun,
                      Verdict,
                      summarize,
                      ticket_train_config,
                      verdict,
)

__all__ = ["ARMS", "ARM_LABELS", "CONTROLS", "MEASURES", "ArmRound", "LotteryConfig", "LotteryRun", "Progress",
           "Verdict", "cache_paths", "check", "expected_remaining", "jaccard", "load_run", "matched_mask",
           "overlap_matrix", "rate_for_target", "rewound", "run_lottery", "run_seeds", "summarize",
           "ticket_train_config", "total_iterations", "verdict"]
