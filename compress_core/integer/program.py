"""Integer-only inference: a fake-quantized model turned into a program of integer tensor operations.

Jacob et al. 2018 ("Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", sections 2.2–2.4): with r = S(q − Z) for inputs x, weights w and outputs y of a layer,

    q_y = Z_y + M · Σ_k (q_x,k − Z_x)(q_w,k − Z_w)  +  M · q_b,     M = S_w·S_x / S_y,

where the bias is stored as int32 with scale S_w·S_x and zero point 0. The sum runs on int8 operands into
an int32 accumulator; the zero-point terms that depend only on the weights are folded into the bias at
conversion time (eq. 7–8); M < 1 becomes M0 · 2^−n (``fixed_point.quantize_multiplier``) so the rescale is
an integer multiply and a rounding shift -- by default TFLite's ``MultiplyByQuantizedMultiplier`` bit for bit,
including its left shift when M ≥ 1; a ReLU that follows is a clamp at Z_y (the output range was
calibrated after it); max-pool and flatten act on the integers directly (q ↦ r is increasing). A channel
whose weights are all zero (pruned) gets S_w = S_y/S_x (M = 1) instead of the observer's eps, so its bias
code fits int32; its weights are exactly zero under any scale.

Between ``IntegerProgram.quantize_input`` (the one float → int step) and the integer logits, every
tensor is an integer tensor; ``tests/test_integer.py`` checks each op's output dtype under a dispatch mode.
Activations and weights are stored as int8 whenever their codes fit (uint8 activations 0..255 are stored
as q − 128 with Z − 128, which leaves every q − Z unchanged), so the products can use PyTorch's int8 matrix
kernel ``torch._int_mm``; wider codes (more than 8 bits) fall back to int32 matrix products.

Usage::

    qmodel = quantize_model(b.model, QuantConfig(), ds.x_train[:512])
    program = to_integer(qmodel)
    codes = program(ds.x_test)                     # int8 logits codes (stored form)
    accuracy = integer_accuracy(program, ds.x_test, ds.y_test)
    layer_summary(program)                         # integer_report: dtypes, S, Z, M, M0, n, bytes
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..models import WEIGHTED
from ..quant import QParams, QuantLayer, dequantize, quantize
from .fixed_point import INT32_MAX, quantize_multiplier
from .ops import (
    IntChannelsLast,
    IntFlatten,
    IntLayer,
    IntMaxPool,
    Scratch,
    Stored,
    code_offset,
    store_dtype,
)

__all__ = ["ConversionError", "IntegerProgram", "fake_quant_codes", "integer_accuracy", "to_integer"]

POOLS = (nn.MaxPool1d, nn.MaxPool2d)
SKIPPED = (nn.Dropout, nn.Identity)
_SCRATCH = Scratch()  # the fast path's temporaries, per thread
SCRATCH_FROM_BATCH = 32  # batches from this size on take the fast path's temporaries from the scratch


class ConversionError(ValueError):
    """The model cannot become an integer program; the message names the layer and says why."""


@dataclass(eq=False)
class IntegerProgram:
    """The converted model: ``ops`` run in order on stored integer codes."""

    ops: list
    input: Stored
    output: Stored
    input_shape: tuple[int, ...] = ()
    _cached_plan: tuple | None = field(default=None, repr=False)
    _inv_scale: torch.Tensor | None = field(default=None, repr=False)

    @property
    def layers(self) -> list[IntLayer]:
        return [op for op in self.ops if isinstance(op, IntLayer)]

    def layer(self, name: str) -> IntLayer:
        for op in self.layers:
            if op.name == name:
                return op
        raise KeyError(f"No weighted layer named {name!r}; layers: {', '.join(o.name for o in self.layers)}.")

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """The float → integer boundary: q = clamp(round(x/S) + Z), stored as q − offset."""
        return (quantize(x, self.input.qp) - self.input.offset).to(self.input.dtype)

    def quantize_input_batch_last(self, x: torch.Tensor) -> torch.Tensor:
        """``quantize_input(x).movedim(0, -1)``, contiguous, in fewer passes: the same float32 ops as
        ``quant.quantize`` (x·(1/S), round half to even), the offset folded into the zero point and the clamp
        (round(x/S) + Z − offset is exact in float32 below 2^24, and beyond it both forms clamp alike), the NaN
        check on the clamped values (a sum of finite codes is NaN only if one of them is), then the int8 codes
        transposed."""
        st = self.input
        if self._inv_scale is None:
            self._inv_scale = 1.0 / st.qp.scale  # float32, as quant.quantize computes it
        t = torch.mul(x.detach().to(torch.float32), self._inv_scale).round_().add_(st.zero).clamp_(st.lo, st.hi)
        if torch.isnan(t.sum()):
            raise ValueError("Cannot quantize NaN values.")
        return t.to(st.dtype).movedim(0, -1).contiguous()

    def forward_int(self, q: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """Run the ops on stored input codes (N, ...) and return the output codes.

        Without ``trace``: the fast path (``forward_batch_last``). With ``trace`` a list: op by op in the
        readable layout (``forward_steps``), appending (name, output, steps) per op, every stage of every
        layer recorded. Both give the same codes (``tests/test_integer_fast.py``).
        """
        if trace is None:
            return self.forward_batch_last(q)
        return self.forward_steps(q, trace)

    def forward_steps(self, q: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """Op by op, batch first and convolutions channels-last; with ``trace``, record every stage."""
        for op in self.ops:
            steps = {} if trace is not None else None
            q = op(q, steps)
            if trace is not None:
                trace.append((op.name, q, steps))
        return q

    def forward_batch_last(self, q: torch.Tensor) -> torch.Tensor:
        """The fast path: one transpose to batch-last codes (features..., N), each op's ``batch_last`` (a
        convolution and the max-pool after it as one step, pooling its int32 accumulators), and one
        transpose back to the layout ``forward_steps`` returns."""
        return self._from_batch_last(self._run_batch_last(q.movedim(0, -1).contiguous()))

    def _run_batch_last(self, h: torch.Tensor) -> torch.Tensor:
        plan, _ = self._plan()
        # large batches take their temporaries from this thread's scratch (no page faults); small ones let
        # each op allocate its result (fewer calls, and blocks too small for the kernel to map afresh)
        scratch = _SCRATCH if h.shape[-1] >= SCRATCH_FROM_BATCH else None
        j = 0
        for op, pool in plan:
            if isinstance(op, IntLayer):  # layer outputs alternate between two slots: never over its own input
                h = op.batch_last(h, pool, scratch, f"out{j % 2}")
                j += 1
            else:
                h = op.batch_last(h)
        return h

    def _from_batch_last(self, h: torch.Tensor) -> torch.Tensor:
        out = h.movedim(-1, 0)
        if self._plan()[1] and out.dim() > 2:
            out = out.movedim(1, -1)
        return out.clone(memory_format=torch.contiguous_format)  # a tensor of its own, never the scratch

    def _plan(self) -> tuple[list[tuple], bool]:
        """The fast path's steps, worked out once per list of ops: (op, the max-pool merged into it or None)
        in order -- a convolution followed by a max-pool is one step --, and whether ``forward_steps`` ends
        channels-last (a conv / pool output not flattened since)."""
        key = tuple(map(id, self.ops))
        if self._cached_plan is not None and self._cached_plan[0] == key:
            return self._cached_plan[1]
        plan, ops, i = [], self.ops, 0
        while i < len(ops):
            op = ops[i]
            merge = isinstance(op, IntLayer) and op.kind != "linear" and i + 1 < len(ops) and isinstance(
                ops[i + 1], IntMaxPool)
            plan.append((op, ops[i + 1] if merge else None))
            i += 2 if merge else 1
        layouts = [isinstance(op, IntChannelsLast) for op in ops if isinstance(op, (IntChannelsLast, IntFlatten))]
        self._cached_plan = (key, (plan, bool(layouts) and layouts[-1]))
        return self._cached_plan[1]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Output codes of float inputs ``x`` (N, ...): quantize, then the fast path."""
        return self._from_batch_last(self._run_batch_last(self.quantize_input_batch_last(x)))

    def codes(self, q: torch.Tensor, stored: Stored | None = None) -> torch.Tensor:
        """Stored values back to the quantizer's codes q (int32), e.g. 0..255 for uint8."""
        return q.to(torch.int32) + (stored or self.output).offset

    def dequantize(self, q: torch.Tensor, stored: Stored | None = None) -> torch.Tensor:
        """The real values S·(q − Z) that stored codes stand for (float: for display, outside the program)."""
        st = stored or self.output
        return dequantize(self.codes(q, st), st.qp)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Predicted classes: argmax of the integer logits (S > 0, so the order of the codes is that of r)."""
        return torch.cat([self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


# --- Conversion ----------------------------------------------------------------------------------------

def _tuple(v, d: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * d


def _per_channel(t: torch.Tensor, out: int) -> torch.Tensor:
    return t.reshape(-1).expand(out) if t.numel() == 1 else t.reshape(-1)


def _with_scales(qp: QParams, scales: torch.Tensor, changed: torch.Tensor) -> QParams:
    """``qp`` with the scales of the ``changed`` channels replaced (per tensor: the whole tensor changed)."""
    if qp.per_channel:
        scale = qp.scale.clone()
        scale[changed] = scales[changed].to(scale.dtype)
    else:
        scale = scales[0].to(qp.scale.dtype).reshape(qp.scale.shape)
    return QParams(scale, qp.zero_point, qp.bits, qp.signed, qp.symmetric, qp.narrow_range, qp.axis)


def _convert_layer(name: str, m: QuantLayer, relu: bool, headroom: bool) -> IntLayer:
    if m.weight_qparams is None:
        raise ConversionError(f"Layer {name}: its weights are not quantized (float weights). Quantize weights "
                              "and activations (target 'both') before converting to integers.")
    if m.input_qparams is None or m.output_qparams is None:
        raise ConversionError(f"Layer {name}: it has no activation scale and zero point — the model was not "
                              "calibrated for activations. Quantize with target 'both' and calibration data.")
    if m.kind != "linear" and (any(d != 1 for d in m.dilation) or m.groups != 1):
        raise ConversionError(f"Layer {name}: dilated or grouped convolutions are not supported by the integer path.")
    w_qp, x_qp, y_qp = m.weight_qparams, m.input_qparams, m.output_qparams
    for label, qp in (("input", x_qp), ("output", y_qp)):
        if qp.per_channel:
            raise ConversionError(f"Layer {name}: per-channel {label} activation parameters are not supported.")
    out = m.weight.shape[0]
    x, y = Stored.of(x_qp), Stored.of(y_qp)
    wq = quantize(m.weight.detach().cpu(), w_qp)  # int32 codes, the layer's weight shape
    w_off = code_offset(w_qp)
    w_dtype = store_dtype(w_qp.qmin - w_off, w_qp.qmax - w_off)
    # (out, K) stored values; conv weights flattened as (k1[, k2], C_in) to match channels-last patches
    w2 = (wq - w_off).movedim(1, -1).reshape(out, -1)
    w_zero = _per_channel(w_qp.zero_point.to(torch.int64), out) - w_off
    S_x = float(x_qp.scale)
    S_w = _per_channel(w_qp.scale.to(torch.float64), out).clone()
    S_y = float(y_qp.scale)
    b = m.bias.detach().cpu().to(torch.float64) if m.bias is not None else torch.zeros(out, dtype=torch.float64)
    wc = w2 - w_zero[:, None]  # q_w − Z_w
    # A channel whose weights are all zero (pruned) was given S_w = eps by the observer, and its bias code
    # b/(S_w·S_x) would overflow int32. Its weight terms vanish whatever S_w is, so give it S_w = S_y/S_x:
    # M = 1, q_b = round(b/S_y), and the channel outputs round(b/S_y) + Z_y, a single rounding of its bias.
    empty = ~(wc != 0).any(1)
    if not w_qp.per_channel and not bool(empty.all()):
        empty = torch.zeros_like(empty)  # one shared scale, set by the channels that have weights: finite
    if bool(empty.any()):
        S_w[empty] = S_y / S_x
        w_qp = _with_scales(w_qp, S_w, empty)
    M = S_w * S_x / S_y  # double precision, as TFLite does it
    pairs = [quantize_multiplier(float(v)) for v in M]  # M ≥ 1 gives shift > 0: a left shift, as in TFLite
    M0 = torch.tensor([p[0] for p in pairs], dtype=torch.int64)
    shift = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
    bias64 = torch.round(b / (S_w * S_x)).to(torch.int64)  # scale S_w·S_x, zero point 0
    K = w2.shape[1]
    # Σ_k (q_x − Z_x)(q_w − Z_w) = Σ q_x q_w − Z_w Σ q_x − Z_x Σ q_w + K Z_x Z_w: fold the weight-only terms
    folded = bias64 - x.zero * w2.sum(1) + K * x.zero * w_zero
    x_span = max(x.hi - x.zero, x.zero - x.lo)
    x_abs = max(abs(x.lo), abs(x.hi))
    acc_c = wc.abs().sum(1) * x_span + bias64.abs()  # per channel: the largest |acc| any input gives
    acc_bound = int(acc_c.max())
    raw_c = w2.abs().sum(1) * x_abs + folded.abs()  # the int32 product sum before the folded bias, per channel
    if max(acc_bound, int(raw_c.max()), int(bias64.abs().max())) > INT32_MAX:
        raise ConversionError(f"Layer {name}: accumulator overflow risk — Σ|q_x − Z_x|·|q_w − Z_w| + |q_b| can "
                              f"reach {max(acc_bound, int(raw_c.max())):,}, beyond the int32 limit {INT32_MAX:,} "
                              f"({K} products of {x_qp.bits}-bit activations and {w_qp.bits}-bit weights). "
                              "Use fewer bits.")
    # M ≥ 1: TFLite shifts the accumulator left by `shift` before the high multiply; the result must fit int32
    left_c = shift.clamp(min=0)
    too_big = ((left_c > 31) | ((acc_c << left_c.clamp(max=31)) > INT32_MAX)).nonzero().flatten().tolist()
    if too_big:
        c = too_big[0]
        raise ConversionError(f"Layer {name}: the multiplier M = S_w·S_x/S_out = {float(M[c]):.4g} (channel {c}) "
                              f"needs a left shift by {int(shift[c])}, and an accumulator of up to "
                              f"{int(acc_c[c]):,} times 2^{int(shift[c])} leaves int32. The output scale is too "
                              "small for this layer (a badly calibrated range, or more activation bits than "
                              "weight bits).")
    # headroom (optional): scale the accumulator by 2^L first (as TFLite's quantized ADD does with its inputs),
    # so the high multiply's rounding is 2^L times finer and the result is the single rounding of acc·M almost
    # always -- but no longer TFLite's conv rescale bit for bit. Channel c is shifted left by max(L, shift_c)
    # and right by the rest. The fused ReLU rescale adds the raw products, the folded bias and (Z_y + 1)·2^n
    # before one shift: keeping their sum below 2^31 (scaled) keeps every int64 term below 2^62.
    zw_c = w_zero.abs() * K * x_abs
    right_c = (-shift).clamp(min=0)
    n_max = int(right_c.max())
    L = 0
    if headroom:
        fused_bound = int((raw_c + zw_c).max()) + (abs(y.zero) + 1) * (1 << n_max)
        L = max(0, min(31 - n_max, (INT32_MAX // max(acc_bound, fused_bound, 1)).bit_length() - 1))
    pre_c = shift.clamp(min=L)  # left shift of each channel's accumulator (folded into M0)
    fused_c = ((raw_c + zw_c) << pre_c) + (abs(y.zero) + 1) * (torch.ones_like(pre_c) << (pre_c - shift))
    # the fused route is a speed-up, not a requirement: where its int64 terms could overflow, the layer keeps
    # the stage-by-stage rescale (bit for bit the same codes)
    one_pass = int(fused_c.max()) <= INT32_MAX
    fused = relu and one_pass
    d = {"linear": 0, "conv1d": 1, "conv2d": 2}[m.kind]
    kw = {}
    if d:
        kw = dict(stride=_tuple(m.stride, d), padding=_tuple(m.padding, d), kernel_size=tuple(m.weight.shape[2:]))
    return IntLayer(name=name, kind=m.kind, weight_t=w2.t().contiguous().to(w_dtype), weight_codes=wq,
                    w_zero=w_zero.to(torch.int32), bias=bias64.to(torch.int32), folded_bias=folded.to(torch.int32),
                    M=M, M0=M0, shift=shift, x=x, y=y, w_qp=w_qp, relu=relu, acc_bound=acc_bound, headroom=L,
                    fused=fused, one_pass=one_pass, **kw)


def to_integer(qmodel: nn.Module, input_shape: tuple[int, ...] = (), headroom: bool = False) -> IntegerProgram:
    """Convert a fake-quantized ``nn.Sequential`` (``quant.quantize_model``, PTQ or QAT) to an integer program.

    Args:
        qmodel: the quantized model; it is only read.
        input_shape: shape of one example, kept for display.
        headroom: False (default): TFLite's conv rescale ``MultiplyByQuantizedMultiplier(acc, M0, shift)``
            bit for bit. True: a refinement -- scale each accumulator by the largest 2^L that cannot overflow
            before the high multiply (folded into the multiplier, free at run time), so the two roundings
            almost always equal one rounding of acc·M; it differs from TFLite by ±1 in a few codes.

    Raises:
        ConversionError (a ValueError) naming the layer: uncalibrated activations, float weights, an
        unsupported layer type, a multiplier M ≥ 1 whose left shift would overflow int32, or an accumulator
        that could overflow int32.
    """
    children = list(qmodel.named_children()) if isinstance(qmodel, nn.Sequential) else []
    if not children:
        raise ConversionError("Only nn.Sequential models (as built by compress_core.models) can be converted.")
    ops: list = []
    first: QuantLayer | None = None
    prev_out: QParams | None = None
    channels_last = False  # convolutions and pools work channels-last; flatten restores PyTorch's order

    def need_channels_last() -> None:
        nonlocal channels_last
        if not channels_last:
            ops.append(IntChannelsLast())
            channels_last = True

    for i, (name, m) in enumerate(children):
        if isinstance(m, QuantLayer) and m.kind != "linear":
            need_channels_last()
        elif isinstance(m, QuantLayer) and channels_last:
            raise ConversionError(f"Layer {name}: a Linear layer on an unflattened convolution output is not "
                                  "supported.")
        if isinstance(m, QuantLayer):
            relu = i + 1 < len(children) and isinstance(children[i + 1][1], nn.ReLU)
            if first is None:
                first = m
            elif prev_out is not None and m.input_qparams is not None and not (
                    torch.equal(m.input_qparams.scale, prev_out.scale)
                    and torch.equal(m.input_qparams.zero_point, prev_out.zero_point)):
                raise ConversionError(f"Layer {name}: its input scale differs from the previous layer's output "
                                      "scale; the integer path needs them shared.")
            ops.append(_convert_layer(name, m, relu and m.relu, headroom))
            prev_out = m.output_qparams
        elif isinstance(m, nn.ReLU):
            if not (ops and isinstance(ops[-1], IntLayer) and ops[-1].relu):
                raise ConversionError(f"Layer {name}: a ReLU that does not follow a quantized layer cannot be fused.")
        elif isinstance(m, POOLS):
            d = 1 if isinstance(m, nn.MaxPool1d) else 2
            if _tuple(m.padding, d) != (0,) * d or _tuple(m.dilation, d) != (1,) * d or m.ceil_mode:
                raise ConversionError(f"Layer {name}: only max-pooling without padding, dilation or ceil mode.")
            need_channels_last()
            ops.append(IntMaxPool(name, _tuple(m.kernel_size, d), _tuple(m.stride or m.kernel_size, d)))
        elif isinstance(m, nn.Flatten):
            ops.append(IntFlatten(name, channels_last))
            channels_last = False
        elif isinstance(m, SKIPPED):
            continue
        elif isinstance(m, WEIGHTED):
            raise ConversionError(f"Layer {name}: a float {type(m).__name__} — the model is not quantized. "
                                  "Run quantize_model first.")
        else:
            raise ConversionError(f"Layer {name}: {type(m).__name__} is not supported by the integer path "
                                  "(Linear, Conv1d/2d, ReLU, max-pool, flatten, dropout only).")
    if first is None:
        raise ConversionError("The model has no quantized Linear/Conv layer: run quantize_model first.")
    layers = [op for op in ops if isinstance(op, IntLayer)]
    return IntegerProgram(ops, layers[0].x, layers[-1].y, tuple(input_shape))


@torch.no_grad()
def integer_accuracy(program: IntegerProgram, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` whose integer-only prediction equals ``y``."""
    return int((program.predict(x.cpu()) == y.cpu()).sum()) / len(y)


@torch.no_grad()
def fake_quant_codes(qmodel: nn.Module, program: IntegerProgram, x: torch.Tensor) -> torch.Tensor:
    """The fake-quantized model's output as stored codes, comparable with ``program(x)``."""
    dev = next(qmodel.parameters()).device
    return quantize(qmodel.eval()(x.to(dev)).cpu(), program.output.qp) - program.output.offset
