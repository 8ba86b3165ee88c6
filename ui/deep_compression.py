"""Cached Deep compression runs: one per (baseline, settings), shared by all sessions; read, never change."""
from __future__ import annotations

from compress_core.deep_compression import PipelineConfig, PipelineResult, dense_control, run_pipeline

from . import jobs
from .memo import Memo

RUNS, CONTROLS = Memo(32), Memo(32)


def pipeline(sel, baseline, ds, cfg: PipelineConfig) -> PipelineResult | None:
    """``run_pipeline`` once per setting, on the heavy-run pool with its progress and a Cancel button; None if
    this session cancelled it."""
    return jobs.run(RUNS, (sel.key, cfg.to_json()), lambda report: run_pipeline(baseline, ds, cfg, progress=report),
                    "Prune, fine-tune and share weights", "dc_cancel")


def control(sel, baseline, ds, cfg: PipelineConfig):
    """``dense_control``: the dense network with the pipeline's extra training, cached per (baseline, fine-tuning);
    on the heavy-run pool. None without fine-tuning or if cancelled."""
    if cfg.epochs <= 0:
        return None
    key = (sel.key, cfg.epochs, cfg.lr, cfg.rounds, cfg.seed)
    return jobs.run(CONTROLS, key, lambda report: dense_control(baseline, ds, cfg),
                    "Control: the dense network, same extra training", "dc_cancel_control")
