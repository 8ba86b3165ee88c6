"""Cached loaders: data sets and trained baselines, shared across sessions and reruns.

Objects handed out here are shared by every session: never change them in place. Build a copy
(``baseline.model`` already returns a fresh one) before pruning or quantizing.
"""
from __future__ import annotations

import json
import threading

import streamlit as st

from compress_core.baselines import Baseline, get_baseline
from compress_core.data import Dataset, load_dataset
from compress_core.train import TrainConfig

from .sidebar import Selection


@st.cache_resource(show_spinner=False, max_entries=16)
def dataset(name: str, seed: int) -> Dataset:
    return load_dataset(name, seed=seed)


# Baselines are kept in a process-wide dict rather than st.cache_resource: training reports progress to
# the page that asked for it, and Streamlit's caches would try to replay those progress elements later.
_BASELINES: dict[tuple, Baseline] = {}
_LOCKS: dict[tuple, threading.Lock] = {}
_GUARD = threading.Lock()
MAX_BASELINES = 32


def _baseline(name: str, model: str, seed: int, train_json: str, _callback=None) -> Baseline:
    key = (name, model, seed, train_json)
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:  # two sessions asking for the same new baseline train it once
        if key not in _BASELINES:
            cfg = TrainConfig.from_dict(json.loads(train_json))
            b = get_baseline(name, model, seed=seed, train_config=cfg, callback=_callback)
            with _GUARD:
                while len(_BASELINES) >= MAX_BASELINES:
                    _BASELINES.pop(next(iter(_BASELINES)))
                _BASELINES[key] = b
        return _BASELINES[key]


def baseline(sel: Selection) -> Baseline:
    """The selection's trained baseline; shows a progress bar while it trains (first time only)."""
    key = (sel.dataset, sel.model, sel.seed, json.dumps(sel.train.to_dict(), sort_keys=True))
    if st.session_state.get("_baseline_ready") == key:
        return _baseline(*key)
    status = st.status(f"Preparing the {sel.model} baseline on {sel.dataset}…", expanded=False)
    bar = status.progress(0.0, text="Loading the cache, or training if this setting is new")

    def progress(rec: dict) -> None:
        frac = min(1.0, rec["iteration"] / max(1, rec["total_iterations"]))
        bar.progress(frac, text=f"Training: epoch {rec['epoch']:.0f}/{rec['epochs']} · "
                                f"validation accuracy {rec['val_acc']:.1%}")

    b = _baseline(*key, _callback=progress)
    status.update(label=f"Baseline ready: test accuracy {b.test_metrics.accuracy:.1%}"
                        + (" (from cache)" if b.from_cache else f" (trained in {b.history.seconds:.1f} s)"),
                  state="complete")
    st.session_state["_baseline_ready"] = key
    return b
