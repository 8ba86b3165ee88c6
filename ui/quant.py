"""Cached quantization work for the Quantization page: PTQ/QAT models, sweeps and sensitivity scans.

Everything is keyed by plain values (the sidebar selection as strings, a QuantConfig as JSON), so Streamlit
can hash it; results are shared across sessions and must never be changed in place.
"""
from __future__ import annotations

import json
from dataclasses import replace

import streamlit as st

from compress_core.quant import QuantConfig, bits_sensitivity, bits_sweep, layer_report, model_size, quantize_model
from compress_core.train import TrainConfig, evaluate

from .loaders import baseline_of, dataset
from .memo import Memo

CURVE_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 16)
QAT_CURVE_BITS = (2, 3, 4, 6, 8)
SCAN_BITS = (2, 3, 4, 6, 8)
QAT_CURVE_EPOCHS = 3


def _parts(key: tuple, calib_size: int):
    b = baseline_of(key)
    ds = dataset(key[0], key[2])
    return b, ds, ds.x_train[:calib_size]


def qat_schedule(key: tuple, epochs: int) -> TrainConfig:
    """Fine-tuning recipe: the baseline's batch size, a few epochs, half its learning rate."""
    base = TrainConfig.from_dict(json.loads(key[3]))
    return TrainConfig(epochs=epochs, lr=base.lr / 2, batch_size=base.batch_size, optimizer=base.optimizer)


@st.cache_resource(show_spinner=False, max_entries=64)
def ptq(key: tuple, cfg_json: str, calib_size: int) -> dict:
    """Post-training quantization of the selection's baseline: model, accuracy, size and per-layer report."""
    b, ds, calib = _parts(key, calib_size)
    cfg = QuantConfig.from_dict(json.loads(cfg_json))
    q = quantize_model(b.model, cfg, calib)
    return _summarise(q, ds, calib)


def _summarise(q, ds, calib) -> dict:
    return {"model": q, "metrics": evaluate(q, ds.x_test, ds.y_test), "size": model_size(q),
            "report": layer_report(q, calib)}


_QAT, _CURVES = Memo(64), Memo(64)  # fine-tuning runs and sweeps report progress to their page


def qat(key: tuple, cfg_json: str, calib_size: int, epochs: int, lsq: bool, progress=None) -> dict:
    """Quantization-aware fine-tuning of the baseline (cached per setting); ``progress(fraction, text)``."""
    from compress_core.quant import quantization_aware_training

    def compute() -> dict:
        b, ds, calib = _parts(key, calib_size)
        cfg = QuantConfig.from_dict(json.loads(cfg_json))

        def cb(rec):
            if progress:
                progress(min(1.0, rec["iteration"] / max(rec["total_iterations"], 1)),
                         f"QAT epoch {rec['epoch']:.0f}/{epochs}: validation accuracy {rec['val_acc']:.1%}")

        q, hist = quantization_aware_training(b.model, cfg, ds, qat_schedule(key, epochs), calibration_data=calib,
                                              lsq=lsq, seed=key[2], callback=cb)
        return {**_summarise(q, ds, calib), "history": hist}

    return _QAT.get((key, cfg_json, calib_size, epochs, lsq), compute)


def curve(key: tuple, cfg_json: str, calib_size: int, kind: str, act_bits: int | None, epochs: int = 3,
          lsq: bool = True, progress=None) -> list[dict]:
    """Accuracy and size vs bit width: kind "ptq_tensor", "ptq_channel" or "qat" (cached per setting)."""
    def compute() -> list[dict]:
        b, ds, calib = _parts(key, calib_size)
        cfg = replace(QuantConfig.from_dict(json.loads(cfg_json)), per_channel=kind != "ptq_tensor")
        bits = QAT_CURVE_BITS if kind == "qat" else CURVE_BITS
        return bits_sweep(b.model, ds, cfg, bits, calib, qat=qat_schedule(key, epochs) if kind == "qat" else None,
                          lsq=lsq, act_bits=act_bits, seed=key[2], callback=progress)

    return _CURVES.get((key, cfg_json, calib_size, kind, act_bits, epochs, lsq), compute)


@st.cache_resource(show_spinner=False, max_entries=16)
def scan(key: tuple, cfg_json: str, calib_size: int) -> list[dict]:
    """Per-layer sensitivity: validation accuracy with one layer's weights at each bit width."""
    b, ds, calib = _parts(key, calib_size)
    cfg = QuantConfig.from_dict(json.loads(cfg_json))
    return bits_sensitivity(b.model, ds, cfg, SCAN_BITS, calib)


@st.cache_resource(show_spinner=False, max_entries=16)
def float_summary(key: tuple) -> dict:
    b = baseline_of(key)
    ds = dataset(key[0], key[2])
    m = b.model
    return {"metrics": evaluate(m, ds.x_test, ds.y_test), "size": model_size(m)}

