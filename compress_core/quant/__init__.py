"""Quantization: the affine scheme r = S·(q − Z), range setting, fake-quantized models, QAT and analysis.

- ``primitives``: ``QParams``, ``qrange``, ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize``
  (bit for bit as PyTorch's observers and fake-quantize kernels).
- ``calibration``: min-max, moving average, percentile, MSE-optimal and entropy (KL) ranges.
- ``model``: ``QuantConfig``, ``QuantLayer`` and ``quantize_model`` (post-training quantization).
- ``qat``: quantization-aware training (straight-through estimator; LSQ learned step sizes).
- ``analysis``: per-layer SQNR, sizes, bit-width sweeps, per-layer sensitivity and mixed precision.

Usage::

    from compress_core.quant import QuantConfig, quantize_model
    qmodel = quantize_model(model, QuantConfig(weight_bits=4), ds.x_train[:512])
"""
from .analysis import bits_sensitivity, bits_sweep, layer_report, model_size, sqnr_db, suggest_bits
from .calibration import METHOD_LABELS, METHODS, calibrate, kl_threshold, observe_range
from .model import (
           TARGETS,
           QuantConfig,
           QuantLayer,
           collect_activations,
           quant_layers,
           quantize_model,
           weight_qparams_for,
)
from .primitives import EPS, MAX_BITS, QParams, clip_mask, compute_qparams, dequantize, fake_quantize, qrange, quantize
from .qat import (
    float_control,
    fold_batchnorm,
    freeze,
    lsq_fake_quantize,
    lsq_grad_factor,
    quantization_aware_training,
)

__all__ = ["EPS", "MAX_BITS", "METHODS", "METHOD_LABELS", "QParams", "QuantConfig", "QuantLayer", "TARGETS",
           "bits_sensitivity", "bits_sweep", "calibrate", "clip_mask", "collect_activations", "compute_qparams",
           "dequantize", "fake_quantize", "float_control", "fold_batchnorm", "freeze", "kl_threshold", "layer_report",
           "lsq_fake_quantize", "lsq_grad_factor", "model_size", "observe_range", "qrange",
           "quant_layers", "quantization_aware_training", "quantize", "quantize_model", "sqnr_db", "suggest_bits",
           "weight_qparams_for"]
