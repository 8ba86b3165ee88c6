"""Cached integer programs for the Integer inference page.

The quantized model comes from ``ui.quant`` (the Quantization page's own PTQ/QAT caches, so both pages share
one model per setting); this module converts it with ``compress_core.integer.to_integer`` and keeps the
program and its whole-test-set comparison. Results are shared across sessions: never change them in place.
"""
from __future__ import annotations

from compress_core.integer import compare_models, layer_summary, model_bytes, to_integer

from . import quant as qcache
from .loaders import baseline_of, dataset
from .memo import Memo

_PROGRAMS = Memo(48)


def integer_model(key: tuple, cfg_json: str, calib_size: int, mode: str, epochs: int = 3, lsq: bool = True,
                  progress=None) -> dict:
    """The quantized model, its integer program, per-layer summary, bytes and test-set comparison.

    Args:
        key: ``Selection.key``.
        cfg_json: a ``QuantConfig`` as sorted JSON.
        calib_size: calibration examples (the first of the training split).
        mode: "ptq" or "qat" (fine-tuning ``epochs`` epochs, LSQ when ``lsq``).
        progress: ``progress(fraction, text)`` while QAT trains.

    Raises ValueError (``ConversionError`` included) with a message naming the layer.
    """
    def compute() -> dict:
        if mode == "qat":
            res = qcache.qat(key, cfg_json, calib_size, epochs, lsq, progress=progress)
        else:
            res = qcache.ptq(key, cfg_json, calib_size)
        qmodel, ds = res["model"], dataset(key[0], key[2])
        program = to_integer(qmodel, ds.input_shape)
        return {"qmodel": qmodel, "program": program, "summary": layer_summary(program),
                "bytes": model_bytes(program),
                "compare": compare_models(baseline_of(key).model, qmodel, program, ds.x_test, ds.y_test)}

    return _PROGRAMS.get((key, cfg_json, calib_size, mode, epochs if mode == "qat" else 0,
                          lsq if mode == "qat" else False), compute)
