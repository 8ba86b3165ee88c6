"""Cached loaders: data sets and trained baselines, shared across sessions and reruns.

Objects handed out here are shared by every session: never change them in place. Build a copy
(``baseline.model`` already returns a fresh one) before pruning or quantizing.
"""
from __future__ import annotations

import json

import streamlit as st
import torch

from compress_core.baselines import Baseline, get_baseline
from compress_core.data import Dataset, is_uploaded, load_dataset
from compress_core.train import TrainConfig
from ui.memo import Memo
from ui.sidebar import Selection

# One server process serves every session (a class of 30-100 students) and the models are tiny: one
# intra-op thread per op avoids thread-pool contention between sessions; a slider move measured several
# times faster on a busy machine (bench/bench_pruning.py), training time is unchanged. Set here, where every
# page that computes gets its data and baseline (app.py imports no PyTorch).
torch.set_num_threads(1)


def dataset(name: str, seed: int) -> Dataset:
    """The data set split by ``seed``: cached for every session, except an upload, which is split afresh (from
    the session's own copy, while the session lasts) and never kept in a process-wide cache."""
    if is_uploaded(name):
        return load_dataset(name, seed=seed)
    return _builtin(name, seed)


@st.cache_resource(show_spinner=False, max_entries=16)
def _builtin(name: str, seed: int) -> Dataset:
    return load_dataset(name, seed=seed)


# Baselines report training progress to the page that asked for them: a Memo, not st.cache_resource.
_BASELINES = Memo(32)


def baseline_of(sel: Selection | tuple, callback=None) -> Baseline:
    """The selection's baseline (trained once per process, even when two sessions ask together), memoized
    under ``sel.key``. Pass the ``Selection``; a bare ``Selection.key`` is still read (by its field order,
    in this one place) until every caller hands over the selection itself."""
    if not isinstance(sel, Selection):
        name, model, seed, train_json, weights = sel
        sel = Selection(name, model, seed, TrainConfig.from_dict(json.loads(train_json)), weights)
    return _BASELINES.get(sel.key, lambda: get_baseline(sel.dataset, sel.model, seed=sel.seed, train_config=sel.train,
                                                        callback=callback, weights=sel.weights))


def baseline(sel: Selection) -> Baseline:
    """The selection's trained baseline; shows a progress bar while it trains (first time only)."""
    key = sel.key
    if st.session_state.get("_baseline_ready") == key:
        return baseline_of(sel)
    status = st.status(f"Preparing the {sel.model} baseline on {sel.dataset}…", expanded=False)
    bar = status.progress(0.0, text="Loading the cache, or training if this setting is new")

    def progress(rec: dict) -> None:
        frac = min(1.0, rec["iteration"] / max(1, rec["total_iterations"]))
        bar.progress(frac, text=f"Training: epoch {rec['epoch']:.0f}/{rec['epochs']} · "
                                f"validation accuracy {rec['val_acc']:.1%}")

    b = baseline_of(sel, callback=progress)
    status.update(label=f"Baseline ready: test accuracy {b.test_metrics.accuracy:.1%}"
                        + (" (from cache)" if b.from_cache else f" (trained in {b.history.seconds:.1f} s)"),
                  state="complete")
    st.session_state["_baseline_ready"] = key
    return b
