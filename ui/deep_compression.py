"""Cached Deep compression runs: one per (baseline, settings), shared by all sessions; read, never change."""
from __future__ import annotations

from compress_core.deep_compression import PipelineConfig, PipelineResult, run_pipeline

from .memo import Memo

RUNS = Memo(32)


def pipeline(sel, baseline, ds, cfg: PipelineConfig, progress=None) -> PipelineResult:
    """``run_pipeline`` once per setting; ``progress(fraction, text)`` only when it really runs."""
    return RUNS.get((sel.key, cfg.to_json()), lambda: run_pipeline(baseline, ds, cfg, progress=progress))
