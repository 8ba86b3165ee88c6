"""Compressing a language model: the modern half of the lab, on the tiny GPT (``compress_core.gpt``) trained on
pydoc's help texts (``compress_core.text``).

The algorithms live in their topic packages, named after their papers (GPTQ, AWQ, SmoothQuant and KV-cache
quantization in ``quant``; Wanda and SparseGPT in ``pruning``) and work on any Linear or Conv layer. This package
names their variants by short keys (``variants``), measures activation outliers (``outliers``) and scores many
variants on the same held-out windows with standard errors (``report``), for the Language models page and
``bench/bench_llm.py``.

Usage::

    from compress_core.lm import calibrate, scores
    calib = calibrate(model, ds)
    scores(model, ds, ["rtn_w3_g128", "gptq_w3_g128", "awq_w3_g128"], calib)
"""
from .outliers import OUTLIER_RATIO, channel_magnitudes, outlier_table
from .report import ALPHAS, BENCH_KEYS, alpha_curve, compare, layer_objectives, samples, scores, smoothing_view
from .variants import CALIB_WINDOWS, Calibration, Score, Variant, build, calibrate, fold_groups, label, parse, score

__all__ = ["ALPHAS", "BENCH_KEYS", "CALIB_WINDOWS", "Calibration", "OUTLIER_RATIO", "Score", "Variant",
           "alpha_curve", "build", "calibrate", "channel_magnitudes", "compare", "fold_groups", "label",
           "layer_objectives", "outlier_table", "parse", "samples", "score", "scores", "smoothing_view"]
