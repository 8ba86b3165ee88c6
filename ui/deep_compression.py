"""Cached Deep compression runs: one per (baseline, settings), shared by all sessions; read, never change."""
from __future__ import annotations

from compress_core.deep_compression import PipelineConfig, PipelineResult, run_pipeline

from . import jobs
from .memo import Memo

RUNS = Memo(32)


def pipeline(sel, baseline, ds, cfg: PipelineConfig) -> PipelineResult | None:
    """``run_pipeline`` once per setting, on the heavy-run pool with its progress and a Cancel button; None if
    this session cancelled it."""
    return jobs.run(RUNS, (sel.key, cfg.to_json()), lambda report: run_pipeline(baseline, ds, cfg, progress=report),
                    "Prune, fine-tune and share weights", "dc_cancel")
