"""Integer-only inference (Jacob et al. 2018): int8 codes, int32 accumulators, fixed-point rescales.

- ``fixed_point``: TFLite/gemmlowp's ``QuantizeMultiplier`` and ``MultiplyByQuantizedMultiplier``
  (M = M0 · 2^shift, a saturating rounding doubling high multiply, then a rounding right shift).
- ``ops``: the integer layers (``IntLayer``: matmul or conv on codes, bias, rescale, clamp; pools, flatten).
- ``program``: ``to_integer`` turns a fake-quantized model into an ``IntegerProgram`` with no float op.
- ``report``: bytes per layer, the step-by-step walk through one layer, model comparisons.

Usage::

    from compress_core.integer import to_integer, integer_accuracy
    program = to_integer(qmodel)
    integer_accuracy(program, ds.x_test, ds.y_test)
"""
from .fixed_point import (
                          INT32_MAX,
                          INT32_MIN,
                          multiplier_value,
                          multiply_by_quantized_multiplier,
                          quantize_multiplier,
                          rounding_divide_by_pot,
                          saturating_rounding_doubling_high_mul,
)
from .ops import IntChannelsLast, IntFlatten, IntLayer, IntMaxPool, Stored, channels_first, int_matmul, kernel_name
from .program import ConversionError, IntegerProgram, fake_quant_codes, integer_accuracy, to_integer
from .report import LayerWalk, compare_models, explain_multiplier, layer_bytes, layer_summary, model_bytes, walk_through

__all__ = ["ConversionError", "INT32_MAX", "INT32_MIN", "IntChannelsLast", "IntFlatten", "IntLayer", "IntMaxPool",
           "IntegerProgram", "LayerWalk", "Stored", "channels_first", "compare_models", "explain_multiplier",
           "fake_quant_codes", "int_matmul", "integer_accuracy", "kernel_name", "layer_bytes", "layer_summary",
           "model_bytes", "multiplier_value", "multiply_by_quantized_multiplier", "quantize_multiplier",
           "rounding_divide_by_pot", "saturating_rounding_doubling_high_mul", "to_integer", "walk_through"]
