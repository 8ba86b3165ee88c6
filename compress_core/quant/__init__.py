"""Quantization: the affine scheme r = S·(q − Z), range setting, fake-quantized models, QAT and analysis.

- ``primitives``: ``QParams``, ``qrange``, ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize``
  (bit for bit as PyTorch's observers and fake-quantize kernels).
- ``calibration``: min-max, moving average, percentile, MSE-optimal and entropy (KL) ranges.
- ``model``: ``QuantConfig``, ``QuantLayer`` and ``quantize_model`` (post-training quantization), of the classifiers'
  plain stacks and of nested models (the GPT: every Linear anywhere, its weight and its input).
- ``qat``: quantization-aware training (straight-through estimator; LSQ learned step sizes).
- ``analysis``: per-layer SQNR, sizes, bit-width sweeps, per-layer sensitivity and mixed precision.
- ``groupwise``: weight-only round-to-nearest with per-tensor, per-channel or group-wise grids; the layer-wise
  objective; storage cost. ``gptq`` (Frantar et al. 2023), ``awq`` (Lin et al. 2024) and ``weight_only``
  (``quantize_weights``, ``layer_errors``, ``weight_storage``) build on it.
- ``smoothquant`` (Xiao et al. 2023): W8A8 with activation outliers migrated into the weights; ``scaling``: the
  exact per-input-channel rescaling (a dividing layer, or a fold into a LayerNorm) it and AWQ share.
- ``kv_cache``: KIVI-style key/value quantization (keys per channel, values per token) for attention's ``kv_hook``.

Usage::

    from compress_core.quant import QuantConfig, quantize_model
    qmodel = quantize_model(model, QuantConfig(weight_bits=4), ds.x_train[:512])
"""
from .analysis import bits_sensitivity, bits_sweep, layer_report, model_size, sqnr_db, suggest_bits
from .awq import AWQResult, awq, awq_model
from .calibration import METHOD_LABELS, METHODS, calibrate, kl_threshold, observe_range
from .gptq import gptq
from .groupwise import layer_objective, rtn, storage_bits
from .kv_cache import kv_cache_bits, kv_quantizer, quantize_kv
from .model import (
           TARGETS,
           QuantConfig,
           QuantLayer,
           collect_activations,
           collect_layer_inputs,
           is_nested,
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
from .smoothquant import activation_range_ratio, smooth_scale, smoothquant
from .weight_only import WEIGHT_METHODS, layer_errors, quantize_weights, weight_storage

__all__ = ["AWQResult", "EPS", "MAX_BITS", "METHODS", "METHOD_LABELS", "QParams", "QuantConfig", "QuantLayer",
           "TARGETS", "WEIGHT_METHODS", "activation_range_ratio", "awq", "awq_model", "bits_sensitivity", "bits_sweep",
           "calibrate", "clip_mask", "collect_activations", "collect_layer_inputs", "compute_qparams", "dequantize",
           "fake_quantize", "float_control", "fold_batchnorm", "freeze", "gptq", "is_nested", "kl_threshold",
           "kv_cache_bits", "kv_quantizer",
           "layer_errors", "layer_objective", "layer_report", "lsq_fake_quantize", "lsq_grad_factor", "model_size",
           "observe_range", "qrange", "quant_layers", "quantization_aware_training", "quantize", "quantize_kv",
           "quantize_model", "quantize_weights", "rtn", "smooth_scale", "smoothquant", "sqnr_db", "storage_bits",
           "suggest_bits", "weight_qparams_for", "weight_storage"]
