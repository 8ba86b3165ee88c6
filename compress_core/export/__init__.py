"""Exporting compressed models to files other tools read.

- ``onnx_export``: a quantized model as an ONNX graph in QDQ format (QuantizeLinear / DequantizeLinear with our
  scales and zero points), run by ONNX Runtime's integer kernels, and compared with our integer program.
"""
from .onnx_export import (
    compare_with_integer,
    ort_fused_ops,
    ort_predict,
    ort_session,
    time_runtimes,
    to_onnx,
    to_onnx_float,
)

__all__ = ["compare_with_integer", "ort_fused_ops", "ort_predict", "ort_session", "time_runtimes", "to_onnx",
           "to_onnx_float"]
