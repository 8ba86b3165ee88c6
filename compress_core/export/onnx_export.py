"""ONNX export of quantized models in QDQ format, run by ONNX Runtime, checked against our integer program.

ONNX represents a quantized network in the "QDQ" (Quantize/DeQuantize) format: every quantized tensor is a
``QuantizeLinear`` node followed by a ``DequantizeLinear`` node, y = saturate(round(x / S) + Z) and
x̂ = (y − Z)·S, and the float operators in between (Conv, Gemm, MaxPool, ...) are left as they are. A runtime
that recognises the patterns "DQ → op → Q" replaces them with integer kernels
(ONNX operator spec: https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html, ONNX Runtime's QDQ format:
https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html#onnx-quantization-representation-format).

``to_onnx`` writes that graph with OUR scales and zero points -- the ones ``quant.quantize_model`` (PTQ) or QAT
calibrated and ``integer.to_integer`` runs -- not a calibration of ONNX Runtime's own:

- input: ``QuantizeLinear`` with the first layer's input (S, Z), then ``DequantizeLinear``;
- weights: the integer program's weight codes as an int8 initializer (int16 above 8 bits) with a
  ``DequantizeLinear`` whose scale and zero point are ours, per tensor or per output channel (axis 0);
- biases: the program's int32 codes q_b = round(b / (S_w·S_x)) with a ``DequantizeLinear`` of scale S_x·S_w and
  zero point 0, ONNX Runtime's QDQ convention for bias (its integer kernels add the int32 codes directly);
- Linear → ``Gemm`` (transB = 1), Conv1d/Conv2d → ``Conv``; the ReLU that follows a layer → ``Relu``, then a
  Q/DQ pair with the layer's output (S, Z) -- calibrated after the ReLU, as in Jacob et al. 2018, so Z is the
  lowest code and ONNX Runtime folds the Relu into the Q's saturation;
- max-pool and flatten → ``MaxPool`` / ``Flatten`` between Q/DQ pairs of the same (S, Z) (they commute with
  quantization: ONNX Runtime drops those pairs and pools the 8-bit codes);
- output: the last layer's Q/DQ, so the graph returns the dequantized logits S_y·(q_y − Z_y).

Bit widths. ONNX Runtime's integer kernels take 8-bit tensors: activations uint8 (our unsigned, affine
activations, 0..255 with our Z) or int8 (signed, symmetric), weights int8. Codes of fewer bits (1..7) still fit
these types, so they are stored there unchanged, with our scales; ``QuantizeLinear`` saturates at the type's
range (0..255), not ours (0..15 at 4 bits), so where our range [qmin, qmax] is narrower than the type's -- or a
fused ReLU clamps at a zero point that is not the type's minimum (symmetric activations, Z = 0 in int8) -- the Q
node is followed by DQ → ``Clip`` to S·(lo − Z)..S·(qmax − Z) → Q: the same codes as ours, a clamp ONNX Runtime
runs in float between its integer kernels. (ONNX opset 21 also has int4/uint4 tensors; ONNX Runtime 1.32's CPU
provider only fuses 4-bit weights into ``MatMulNBits``, which multiplies in float, so int8 storage is what keeps
integer kernels.) Above 8 bits (up to 16) tensors are int16/uint16 (opset ≥ 21): ONNX Runtime runs Q/DQ on them
but has no 16-bit integer Conv/Gemm on CPU, so those layers run in float on dequantized values -- still exactly
our codes at every Q node.

Rounding. ONNX Runtime's QGemm / QLinearConv rescale each int32 accumulator in float -- one rounding of
acc·(S_x·S_w/S_y) -- while our integer program by default rescales as TFLite does, with a fixed-point
multiplier M0·2^−n and two roundings (``integer.to_integer``); at near-halfway points the two differ by one
code, which the next layers can carry on (on the built-in models at 8 bits: at most 1 output step apart, and
≥ 99.6 % equal predictions). ``to_integer(qmodel, headroom=True)`` makes ours a single rounding too: its logits
then equal ONNX Runtime's bit for bit on the built-in models, bar a few codes where float32 and float64
multipliers part. ``compare_with_integer`` measures both agreements.

Usage::

    from compress_core.export.onnx_export import to_onnx, ort_session, ort_predict, compare_with_integer
    qmodel = quantize_model(b.model, QuantConfig(), ds.x_train[:512])
    program = to_integer(qmodel)
    model_bytes = to_onnx(qmodel, ds.input_shape)          # serialized onnx.ModelProto
    Path("model.onnx").write_bytes(model_bytes)
    logits = ort_predict(ort_session(model_bytes), ds.x_test)
    compare_with_integer(qmodel, program, ds.x_test, ds.y_test)   # accuracy, agreement, largest step difference
    ort_fused_ops(model_bytes)                              # {'QLinearConv': 2, 'QGemm': 3, ...}
    time_runtimes(b.model, qmodel, program, ds.x_test[:1024], repeats=20)
"""
from __future__ import annotations

import copy
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..integer import IntegerProgram, to_integer
from ..quant import QParams, quantize

__all__ = ["DEFAULT_OPSET", "compare_with_integer", "ort_codes", "ort_fused_ops", "ort_predict", "ort_session",
           "time_runtimes", "to_onnx", "to_onnx_float"]

DEFAULT_OPSET = 21  # int16/uint16 (and int4) Q/DQ tensors; per-channel DQ (axis) since opset 13
MIN_OPSET = 13


# --- Graph building ------------------------------------------------------------------------------------

@dataclass
class _Graph:
    """Nodes and initializers of one ONNX graph, with unique names."""

    opset: int
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    _count: Counter = field(default_factory=Counter)

    def name(self, base: str) -> str:
        self._count[base] += 1
        return base if self._count[base] == 1 else f"{base}_{self._count[base] - 1}"

    def const(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        from onnx import helper
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _numpy_dtype(qp: QParams, opset: int, what: str) -> np.dtype:
    """The ONNX integer type holding ``qp``'s codes unchanged: (u)int8 up to 8 bits, (u)int16 up to 16."""
    for dt in ((np.int8, np.int16) if qp.signed or qp.qmin < 0 else (np.uint8, np.uint16)):
        info = np.iinfo(dt)
        if info.min <= qp.qmin and qp.qmax <= info.max:
            if info.bits > 8 and opset < 21:
                raise ValueError(f"{what}: {qp.bits}-bit codes need 16-bit QuantizeLinear/DequantizeLinear, "
                                 f"which ONNX has from opset 21 (asked for opset {opset}).")
            return np.dtype(dt)
    raise ValueError(f"{what}: {qp.bits}-bit codes do not fit a 16-bit ONNX integer type.")


@dataclass
class _ActQ:
    """One activation quantizer in the graph: its scale and zero-point initializers, their ONNX type, our QParams."""

    scale: str
    zero: str
    dtype: np.dtype
    qp: QParams


def _act_quantizer(g: _Graph, qp: QParams, base: str) -> _ActQ:
    dt = _numpy_dtype(qp, g.opset, base)
    scale = g.const(f"{base}_scale", qp.scale.detach().cpu().to(torch.float32).reshape(()).numpy())
    zero = g.const(f"{base}_zero_point", np.asarray(int(qp.zero_point.reshape(-1)[0]), dtype=dt).reshape(()))
    return _ActQ(scale, zero, dt, qp)


def _qdq(g: _Graph, x: str, q: _ActQ, base: str, relu: bool = False, clamp: bool = True) -> str:
    """x (float) → QuantizeLinear → [clamp to our range] → DequantizeLinear; returns the dequantized tensor.

    A ReLU (``relu``) is a ``Relu`` before Q when it clamps exactly at the type's minimum (Z = qmin = the type's
    lowest value: ONNX Runtime folds it into the Q's saturation); otherwise it joins the clamp after Q.
    ``clamp=False`` (after max-pool and flatten, whose inputs are already in range) emits Q → DQ only.
    """
    info = np.iinfo(q.dtype)
    qmin, qmax, z = q.qp.qmin, q.qp.qmax, int(q.qp.zero_point.reshape(-1)[0])
    lo = max(qmin, z) if relu else qmin
    if relu and lo == info.min:
        x = g.node("Relu", [x], f"{base}_relu")
        relu = False
    y = g.node("QuantizeLinear", [x, q.scale, q.zero], f"{base}_q")
    if clamp and (lo > info.min or qmax < info.max):
        # our range is narrower than the ONNX type's: DQ → Clip at the real values of the end codes → Q
        d = g.node("DequantizeLinear", [y, q.scale, q.zero], f"{base}_dq_clamp")
        s = q.qp.scale.detach().cpu().to(torch.float32).reshape(())
        lo_r = g.const(f"{base}_clip_min", (s * float(lo - z)).numpy())
        hi_r = g.const(f"{base}_clip_max", (s * float(qmax - z)).numpy())
        c = g.node("Clip", [d, lo_r, hi_r], f"{base}_clip")
        y = g.node("QuantizeLinear", [c, q.scale, q.zero], f"{base}_q_clamped")
    return g.node("DequantizeLinear", [y, q.scale, q.zero], f"{base}_dq")


def _weight_dq(g: _Graph, layer, module: nn.Module, base: str) -> tuple[str, str]:
    """DequantizeLinear of the weight codes and of the int32 bias codes (scale S_x·S_w, zero point 0)."""
    w_qp: QParams = layer.w_qp
    dt = _numpy_dtype(w_qp, g.opset, f"Layer {layer.name} weights")
    codes = getattr(layer, "weight_codes", None)  # the program's codes, in the layer's weight shape
    if codes is None:
        codes = quantize(module.weight.detach().cpu(), w_qp)  # the same codes, as to_integer computes them
    codes = codes.detach().cpu().to(torch.int64).numpy()
    if codes.min() < w_qp.qmin or codes.max() > w_qp.qmax:
        raise ValueError(f"Layer {layer.name}: weight codes outside [{w_qp.qmin}, {w_qp.qmax}].")
    s_w = w_qp.scale.detach().cpu().to(torch.float32)
    z_w = w_qp.zero_point.detach().cpu().to(torch.int64)
    per_channel = w_qp.per_channel and s_w.numel() > 1
    s_x = float(layer.x.qp.scale.reshape(()))
    if per_channel:
        w_scale, w_zero = s_w.reshape(-1).numpy(), z_w.reshape(-1).numpy().astype(dt)
        axis = {"axis": 0}
    else:
        w_scale, w_zero = s_w.reshape(()).numpy(), np.asarray(int(z_w.reshape(-1)[0]), dtype=dt)
        axis = {}
    wq = g.const(f"{base}_weight_quantized", codes.astype(dt))
    ws = g.const(f"{base}_weight_scale", w_scale)
    wz = g.const(f"{base}_weight_zero_point", w_zero)
    w = g.node("DequantizeLinear", [wq, ws, wz], f"{base}_weight", **axis)
    b_scale = (w_scale.astype(np.float64) * s_x).astype(np.float32)
    bq = g.const(f"{base}_bias_quantized", layer.bias.detach().cpu().to(torch.int32).numpy())
    bs = g.const(f"{base}_bias_scale", b_scale)
    bz = g.const(f"{base}_bias_zero_point", np.zeros(b_scale.shape, dtype=np.int32))
    b = g.node("DequantizeLinear", [bq, bs, bz], f"{base}_bias", **axis)
    return w, b


def _pair(v, d: int) -> list[int]:
    return [int(t) for t in v] if isinstance(v, (tuple, list)) else [int(v)] * d


def _conv_attrs(kind: str, kernel: tuple[int, ...], stride, padding) -> dict:
    d = 1 if kind == "conv1d" else 2
    pads = _pair(padding, d)
    return dict(kernel_shape=[int(k) for k in kernel], strides=_pair(stride, d), pads=pads + pads,
                dilations=[1] * d, group=1)


def _pool_attrs(m: nn.Module) -> dict:
    d = 1 if isinstance(m, nn.MaxPool1d) else 2
    k = _pair(m.kernel_size, d)
    s = _pair(m.stride if m.stride is not None else m.kernel_size, d)
    return dict(kernel_shape=k, strides=s, pads=[0] * (2 * d))


def _model_proto(g: _Graph, x: str, y: str, input_shape: tuple[int, ...], classes: int, name: str) -> bytes:
    import onnx
    from onnx import TensorProto, helper
    inp = helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", *[int(d) for d in input_shape]])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", int(classes)])
    graph = helper.make_graph(g.nodes, name, [inp], [out], initializer=g.inits)
    opsets = [helper.make_opsetid("", g.opset)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets),
                              producer_name="compress_core.export.onnx_export")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _check_opset(opset: int) -> int:
    import onnx
    top = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= top:
        raise ValueError(f"opset must be a whole number from {MIN_OPSET} (per-channel DequantizeLinear) to {top}; "
                         f"got {opset!r}.")
    return opset


def _children(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise ValueError("Only nn.Sequential models (as built by compress_core.models) can be exported.")
    return list(model.named_children())


# --- Export --------------------------------------------------------------------------------------------

def to_onnx(qmodel: nn.Module, input_shape: tuple[int, ...], *, opset: int = DEFAULT_OPSET) -> bytes:
    """A quantized model as a serialized ONNX ``ModelProto`` in QDQ format, with our scales and zero points.

    Args:
        qmodel: a fake-quantized ``nn.Sequential`` (``quant.quantize_model`` or QAT) that ``integer.to_integer``
            accepts: weights and activations quantized, per tensor or per channel, symmetric or affine, 1–16 bits.
        input_shape: the shape of one example, e.g. (1, 8, 8); the batch dimension stays dynamic.
        opset: ONNX opset (13 to the installed onnx's newest); 16-bit codes need ≥ 21.

    The weight codes, bias codes and weight scales are the integer program's (``to_integer(qmodel)``): they are
    the model's own, except that a channel whose weights are all zero (pruned) has S_w = S_y/S_x, as the
    program gives it, so that its bias code fits int32. The graph's input is float (N, *input_shape) and its
    output the dequantized logits (N, classes). The model passes ``onnx.checker.check_model``.

    Raises ValueError (a plain one, whatever the reason) for a model the integer path refuses or an opset
    that cannot hold its codes.
    """
    opset = _check_opset(opset)
    try:
        program = to_integer(qmodel, tuple(input_shape))
    except ValueError as e:  # ConversionError: name the reason, as a plain ValueError
        raise ValueError(f"Cannot export this model to ONNX: {e}") from None
    layers = {op.name: op for op in program.layers}
    g = _Graph(opset)
    x_name = "input"
    act = _act_quantizer(g, program.input.qp, "input")
    h = _qdq(g, x_name, act, "input")
    children = _children(qmodel)
    for name, m in children:
        if name in layers:
            layer = layers[name]
            w, b = _weight_dq(g, layer, m, name)
            m_last = m
            if layer.kind == "linear":
                h = g.node("Gemm", [h, w, b], name, transB=1)
            else:
                h = g.node("Conv", [h, w, b], name,
                           **_conv_attrs(layer.kind, tuple(m.weight.shape[2:]), layer.stride, layer.padding))
            act = _act_quantizer(g, layer.y.qp, f"{name}_output")
            h = _qdq(g, h, act, f"{name}_output", relu=layer.relu)
        elif isinstance(m, nn.ReLU):
            continue  # fused into the previous layer's output quantizer (to_integer checked it follows one)
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            h = _qdq(g, g.node("MaxPool", [h], name, **_pool_attrs(m)), act, name, clamp=False)
        elif isinstance(m, nn.Flatten):
            h = _qdq(g, g.node("Flatten", [h], name, axis=1), act, name, clamp=False)
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:  # to_integer accepted the model, so this should not happen
            raise ValueError(f"Layer {name}: {type(m).__name__} cannot be exported.")
    h = g.node("Identity", [h], "logits")
    return _model_proto(g, x_name, h, tuple(input_shape), int(m_last.weight.shape[0]), "quantized")


def to_onnx_float(model: nn.Module, input_shape: tuple[int, ...], *, opset: int = DEFAULT_OPSET) -> bytes:
    """The float network as a serialized ONNX ``ModelProto`` (Gemm, Conv, Relu, MaxPool, Flatten).

    ``model`` is a float ``nn.Sequential`` of the registry (``compress_core.models``); a fake-quantized model's
    ``QuantLayer``s are exported with their float weights (its quantizers are ignored).
    """
    opset = _check_opset(opset)
    g = _Graph(opset)
    h = x_name = "input"
    classes = None
    for name, m in _children(model):
        weight = getattr(m, "weight", None)
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) or hasattr(m, "linear_op"):
            kind = getattr(m, "kind", None) or {nn.Linear: "linear", nn.Conv1d: "conv1d",
                                                nn.Conv2d: "conv2d"}[type(m)]
            w = g.const(f"{name}_weight", weight.detach().cpu().to(torch.float32).numpy())
            bias = m.bias if m.bias is not None else torch.zeros(weight.shape[0])
            b = g.const(f"{name}_bias", bias.detach().cpu().to(torch.float32).numpy())
            classes = int(weight.shape[0])
            if kind == "linear":
                h = g.node("Gemm", [h, w, b], name, transB=1)
            else:
                if any(d != 1 for d in _pair(m.dilation, len(weight.shape) - 2)) or m.groups != 1:
                    raise ValueError(f"Layer {name}: dilated or grouped convolutions are not supported.")
                if isinstance(m.padding, str):
                    raise ValueError(f"Layer {name}: string padding is not supported.")
                h = g.node("Conv", [h, w, b], name,
                           **_conv_attrs(kind, tuple(weight.shape[2:]), m.stride, m.padding))
        elif isinstance(m, nn.ReLU):
            h = g.node("Relu", [h], name)
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            if any(p != 0 for p in _pair(m.padding, 1 if isinstance(m, nn.MaxPool1d) else 2)) or m.ceil_mode \
                    or any(d != 1 for d in _pair(m.dilation, 1 if isinstance(m, nn.MaxPool1d) else 2)):
                raise ValueError(f"Layer {name}: only max-pooling without padding, dilation or ceil mode.")
            h = g.node("MaxPool", [h], name, **_pool_attrs(m))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"Layer {name}: only Flatten from dimension 1 to the end.")
            h = g.node("Flatten", [h], name, axis=1)
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            raise ValueError(f"Layer {name}: {type(m).__name__} cannot be exported (Linear, Conv1d/2d, ReLU, "
                             "max-pool, flatten, dropout only).")
    if classes is None:
        raise ValueError("The model has no Linear/Conv layer to export.")
    h = g.node("Identity", [h], "logits")
    return _model_proto(g, x_name, h, tuple(input_shape), classes, "float")


# --- ONNX Runtime --------------------------------------------------------------------------------------

def _session_options(threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


def ort_session(model_bytes: bytes, threads: int = 1):
    """An ONNX Runtime CPU ``InferenceSession`` of ``model_bytes`` with all graph optimizations (the QDQ
    fusions into integer kernels among them) and ``threads`` intra-op threads."""
    import onnxruntime as ort
    return ort.InferenceSession(model_bytes, sess_options=_session_options(threads),
                                providers=["CPUExecutionProvider"])


def ort_predict(session, x, batch_size: int = 4096) -> np.ndarray:
    """The session's float logits (N, classes) for inputs ``x`` (a tensor or an array of shape (N, ...))."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    name = session.get_inputs()[0].name
    if len(arr) <= batch_size:
        return session.run(None, {name: arr})[0]
    return np.concatenate([session.run(None, {name: arr[i:i + batch_size]})[0]
                           for i in range(0, len(arr), batch_size)])


def ort_fused_ops(model_bytes: bytes) -> dict[str, int]:
    """Op types (with counts) of the graph ONNX Runtime actually runs, after its optimizations: the session
    saves its optimized model (``SessionOptions.optimized_model_filepath``) and this reads it back.
    An 8-bit export shows integer kernels (``QLinearConv``, ``QGemm``, ...) and no float ``Conv``/``Gemm``."""
    import onnx
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "optimized.onnx")
        so = _session_options(1)
        so.optimized_model_filepath = path
        ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])
        model = onnx.load(path)
    return dict(Counter(n.op_type for n in model.graph.node))


# --- Comparison and timing -----------------------------------------------------------------------------

def ort_codes(logits: np.ndarray, program: IntegerProgram) -> np.ndarray:
    """ONNX Runtime's dequantized logits back to output codes q = round(r / S) + Z (exact: r = S·(q − Z))."""
    qp = program.output.qp
    s, z = float(qp.scale.reshape(())), int(qp.zero_point.reshape(-1)[0])
    return np.rint(logits.astype(np.float64) / s).astype(np.int64) + z


@torch.no_grad()
def compare_with_integer(qmodel: nn.Module, program: IntegerProgram, x: torch.Tensor, y: torch.Tensor, *,
                         model_bytes: bytes | None = None, session=None) -> dict:
    """ONNX Runtime (int8 QDQ export of ``qmodel``) against our integer program on the same inputs.

    Returns ``ort_accuracy``, ``integer_accuracy``, ``agreement`` (fraction of equal argmax predictions),
    ``max_step_diff`` (the largest |q_ort − q_ours| over all logits, in output quantization steps),
    ``mean_step_diff`` (the mean |q_ort − q_ours|), ``exact`` (fraction of logits with equal codes) and ``n``.
    ``model_bytes`` / ``session`` reuse an export or a session; by default ``qmodel`` is exported here.
    """
    if session is None:
        if model_bytes is None:
            model_bytes = to_onnx(qmodel, tuple(x.shape[1:]))
        session = ort_session(model_bytes)
    x, y = x.detach().cpu().float(), y.detach().cpu()
    q_ort = ort_codes(ort_predict(session, x), program)
    q_ours = program.codes(torch.cat([program(x[i:i + 4096]) for i in range(0, len(x), 4096)])).to(torch.int64)
    q_ours = q_ours.numpy()
    diff = np.abs(q_ort - q_ours)
    pred_ort, pred_ours = q_ort.argmax(1), q_ours.argmax(1)
    labels = y.numpy()
    return dict(ort_accuracy=float((pred_ort == labels).mean()),
                integer_accuracy=float((pred_ours == labels).mean()),
                agreement=float((pred_ort == pred_ours).mean()),
                max_step_diff=int(diff.max()), mean_step_diff=float(diff.mean()),
                exact=float((diff == 0).mean()), n=int(len(labels)))


@torch.no_grad()
def time_runtimes(float_model: nn.Module, qmodel: nn.Module, program: IntegerProgram, x: torch.Tensor,
                  repeats: int = 20) -> list[dict]:
    """Median (and p95, min) milliseconds of one forward pass over the batch ``x``, one thread each, in one run:
    PyTorch float, our integer program, ONNX Runtime float (``to_onnx_float``) and ONNX Runtime int8 (``to_onnx``).

    Returns one dict per runtime: ``runtime``, ``batch``, ``median_ms``, ``p95_ms``, ``min_ms``, ``repeats``.
    PyTorch's thread count is set to 1 for the measurement and restored afterwards.
    """
    from ..pruning.formats import time_call
    from ..train import torch_threads

    x = x.detach().cpu().float().contiguous()
    shape = tuple(x.shape[1:])
    arr = x.numpy()
    float_model = copy.deepcopy(float_model).eval() if float_model.training else float_model
    s_float = ort_session(to_onnx_float(float_model, shape), threads=1)
    s_int8 = ort_session(to_onnx(qmodel, shape), threads=1)
    name_f, name_q = s_float.get_inputs()[0].name, s_int8.get_inputs()[0].name
    runs = [("torch float", lambda: float_model(x)),
            ("our integer program", lambda: program(x)),
            ("ONNX Runtime float", lambda: s_float.run(None, {name_f: arr})),
            ("ONNX Runtime int8", lambda: s_int8.run(None, {name_q: arr}))]
    with torch_threads(1):
        return [dict(runtime=label, batch=len(x), **time_call(fn, repeats=repeats, warmup=3)) for label, fn in runs]
