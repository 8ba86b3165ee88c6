"""The affine quantization scheme r = S·(q − Z), and fake-quantized copies of whole models.

Jacob et al. 2018 ("Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference") and Krishnamoorthi 2018 (the quantization whitepaper) define the scheme: a real value r is
stored as an integer q in [qmin, qmax] with a scale S > 0 and a zero point Z chosen so that real 0 is
exactly representable (q = Z). This module follows PyTorch's observers and fake-quantize kernels bit for
bit (tests/test_quant.py checks against ``torch.ao.quantization`` as the oracle):

- range: [min(min_val, 0), max(max_val, 0)]; asymmetric S = (max − min)/(qmax − qmin),
  Z = clamp(qmin − round(min/S)); symmetric S = max(|min|, |max|)/((qmax − qmin)/2), Z = 0 (signed)
  or 2^(b−1) (unsigned); S ≥ float32 eps, so never 0. ``round`` is round-half-to-even everywhere.
- quantize: q = clamp(round(x · (1/S)) + Z, qmin, qmax), with 1/S computed in float32 first, as the
  ATen kernels do (this matters at exact halfway points).
- fake quantize: S·(q − Z); its gradient is the straight-through estimator, passed where the unclamped
  q lies in [qmin, qmax] and zero where the value was clipped.

Model level: ``quantize_model`` returns a copy of an ``nn.Sequential`` in which every Linear/Conv layer
is a ``QuantLayer`` holding its float weight and bias, ``weight_qparams``, ``input_qparams`` and
``output_qparams`` (after the ReLU that follows, if any: the ReLU is fused as a clamp, as in Jacob 2018).

Usage::

    qp = compute_qparams(torch.tensor(-1.0), torch.tensor(3.0), bits=8)   # S = 4/255, Z = -64
    q = quantize(x, qp); x_hat = dequantize(q, qp)                         # |x − x_hat| ≤ S/2 in range
    qmodel = quantize_model(model, QuantConfig(weight_bits=4), ds.x_train[:256])
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .models import WEIGHTED

EPS = torch.finfo(torch.float32).eps  # PyTorch's observers floor the scale at this value
MAX_BITS = 16


def qrange(bits: int, signed: bool = True, narrow_range: bool = False) -> tuple[int, int]:
    """(qmin, qmax) of a ``bits``-bit integer; narrow range drops the lowest code (−127..127 at 8 bits)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"Bit width must be a whole number from 1 to {MAX_BITS}; got {bits!r}.")
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if narrow_range:
        qmin += 1
        if qmax <= qmin:
            raise ValueError(f"Narrow range needs at least 2 bits ({bits} bit leaves a single level).")
    return qmin, qmax


@dataclass(frozen=True, eq=False)
class QParams:
    """Scale and zero point of an affine quantizer, plus how they were defined.

    ``scale`` is a float32 tensor of shape () per tensor or (C,) per channel; ``zero_point`` an int32
    tensor of the same shape; ``axis`` the channel axis of the quantized tensor (None per tensor).
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    bits: int = 8
    signed: bool = True
    symmetric: bool = False
    narrow_range: bool = False
    axis: int | None = None

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.signed, self.narrow_range)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.signed, self.narrow_range)[1]

    @property
    def levels(self) -> int:
        """Number of representable values, qmax − qmin + 1."""
        return self.qmax - self.qmin + 1

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def range_min(self) -> torch.Tensor:
        """Smallest representable real value, S·(qmin − Z)."""
        return self.scale * (self.qmin - self.zero_point).float()

    @property
    def range_max(self) -> torch.Tensor:
        """Largest representable real value, S·(qmax − Z)."""
        return self.scale * (self.qmax - self.zero_point).float()

    def broadcast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero point shaped to broadcast against ``x`` (channels along ``axis``)."""
        s, z = self.scale.to(x.device), self.zero_point.to(x.device)
        if self.axis is None:
            return s, z
        if x.dim() == 0 or x.shape[self.axis] != s.numel():
            raise ValueError(f"Per-channel parameters for {s.numel()} channels along axis {self.axis} "
                             f"do not fit a tensor of shape {tuple(x.shape)}.")
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return s.reshape(shape), z.reshape(shape)

    def to(self, device) -> "QParams":
        return QParams(self.scale.to(device), self.zero_point.to(device), self.bits, self.signed, self.symmetric,
                       self.narrow_range, self.axis)

    def to_dict(self) -> dict:
        return {"scale": self.scale.tolist(), "zero_point": self.zero_point.tolist(), "bits": self.bits,
                "signed": self.signed, "symmetric": self.symmetric, "narrow_range": self.narrow_range,
                "axis": self.axis}


def _as_float32(v) -> torch.Tensor:
    t = v.detach() if isinstance(v, torch.Tensor) else torch.tensor(v)
    return t.to(torch.float32)


def compute_qparams(min_val, max_val, bits: int = 8, *, symmetric: bool = False, signed: bool = True,
                    narrow_range: bool = False, axis: int | None = None) -> QParams:
    """Scale and zero point for the range [min_val, max_val], exactly as PyTorch's observers compute them.

    Args:
        min_val, max_val: floats or tensors; 1-D tensors give per-channel parameters (channel axis
            ``axis``, 0 by default), 0-d tensors or floats give per-tensor parameters.
        bits: 1–16. signed: integer codes centred on 0 (int8) or from 0 (uint8).
        symmetric: Z fixed (0 signed, 2^(b−1) unsigned) and the range made symmetric around 0.
        narrow_range: drop the lowest code (qmin = −127 at 8 bits), so a symmetric grid is exactly symmetric.

    Raises ValueError for NaN/inf, min > max, mismatched shapes or an invalid bit width.

    Example::

        compute_qparams(-1.0, 3.0, bits=8)                      # S = 4/255, Z = −128 − round(−63.75) = −64
        compute_qparams(w.amin(1), w.amax(1), 4, symmetric=True) # per output channel
    """
    qmin, qmax = qrange(bits, signed, narrow_range)
    lo, hi = _as_float32(min_val), _as_float32(max_val)
    if lo.shape != hi.shape or lo.dim() > 1:
        raise ValueError(f"min and max must be scalars or 1-D tensors of the same length; got shapes "
                         f"{tuple(lo.shape)} and {tuple(hi.shape)}.")
    if lo.numel() == 0:
        raise ValueError("Cannot compute quantization parameters of an empty range.")
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("The range contains NaN or infinity: clean the tensor (or calibration data) first.")
    if (lo > hi).any():
        raise ValueError("The range minimum is larger than its maximum.")
    if lo.dim() == 1 and axis is None:
        axis = 0
    if lo.dim() == 0:
        axis = None
    lo = torch.minimum(lo, torch.zeros_like(lo))  # the range always includes real 0
    hi = torch.maximum(hi, torch.zeros_like(hi))
    eps = torch.tensor(EPS, dtype=torch.float32, device=lo.device)
    if symmetric:
        amax = torch.maximum(-lo, hi)
        scale = torch.maximum(amax / (float(qmax - qmin) / 2), eps)
        zero = torch.full_like(scale, 0 if signed else 1 << (bits - 1), dtype=torch.int32)
    else:
        scale = torch.maximum((hi - lo) / float(qmax - qmin), eps)
        zero = torch.clamp(qmin - torch.round(lo / scale).to(torch.int32), qmin, qmax).to(torch.int32)
    return QParams(scale, zero, bits, signed, symmetric, narrow_range, axis)


def _round_codes(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """round(x · (1/S)) + Z as float, before clamping (1/S in float32 first, as ATen does)."""
    s, z = qp.broadcast(x)
    return torch.round(x * (1.0 / s)) + z


def quantize(x: torch.Tensor, qp: QParams, dtype: torch.dtype = torch.int32) -> torch.Tensor:
    """Integer codes q = clamp(round(x/S) + Z, qmin, qmax) of ``x`` (int32 unless ``dtype`` says otherwise)."""
    x = x.detach().to(torch.float32)
    if torch.isnan(x).any():
        raise ValueError("Cannot quantize NaN values.")
    return torch.clamp(_round_codes(x, qp), qp.qmin, qp.qmax).to(dtype)


def dequantize(q: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Real values S·(q − Z) of integer codes ``q`` (float32)."""
    s, z = qp.broadcast(q)
    return (q.to(torch.int32) - z).to(torch.float32) * s


class _FakeQuantSTE(torch.autograd.Function):
    """Forward S·(clamp(round(x/S)+Z) − Z); backward: straight-through inside the range, 0 where clipped."""

    @staticmethod
    def forward(ctx, x, scale, zero, qmin, qmax):
        inv = 1.0 / scale
        q = torch.round(x * inv) + zero
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return (torch.clamp(q, qmin, qmax) - zero) * scale

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None, None, None


def fake_quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Quantize then dequantize in one float op, with the straight-through gradient (as
    ``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine``)."""
    s, z = qp.broadcast(x)
    return _FakeQuantSTE.apply(x, s, z.to(x.dtype), qp.qmin, qp.qmax)


def clip_mask(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """True where clamping, not rounding, decides ``x``'s error: x lies more than half a step outside
    the representable range [S·(qmin − Z), S·(qmax − Z)]. (A value just past the end, such as the
    maximum under a symmetric grid with S = max/127.5, rounds onto the last level like any other.)"""
    s, z = qp.broadcast(x)
    q = x.detach().float() / s + z
    return (q < qp.qmin - 0.5) | (q > qp.qmax + 0.5)


# --- Whole models --------------------------------------------------------------------------------------

TARGETS = ("weights", "activations", "both")
CALIBRATION_METHODS = ("minmax", "moving_average", "percentile", "mse", "kl")  # see compress_core.calibration
PASS_THROUGH = (nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)  # commute with fq


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize a model (post-training, or as the starting point of QAT).

    Weights are signed; activations are unsigned when asymmetric (like quint8) and signed with Z = 0
    when symmetric. ``layer_bits`` gives some layers their own weight bit width (mixed precision).
    The output layer's activations (the logits) are always calibrated with min-max (or the moving
    average): a clipping method there would saturate the largest logits and turn the prediction into a tie.
    """

    target: str = "both"  # "weights", "activations" or "both"
    weight_bits: int = 8
    act_bits: int = 8
    weight_symmetric: bool = True
    act_symmetric: bool = False
    per_channel: bool = True  # weights: one (S, Z) per output channel
    narrow_range: bool = False  # weights: drop the lowest code
    weight_method: str = "minmax"  # see compress_core.calibration.METHODS
    act_method: str = "minmax"
    percentile: float = 99.99  # for method "percentile"
    averaging_constant: float = 0.01  # for method "moving_average"
    calib_batch_size: int = 32  # batches the calibration data is fed in (moving average)
    layer_bits: tuple[tuple[str, int], ...] = field(default_factory=tuple)  # (layer, weight bits) overrides

    def __post_init__(self):
        problems = []
        if self.target not in TARGETS:
            problems.append(f"what to quantize must be one of {', '.join(TARGETS)}")
        for label, b in [("weight", self.weight_bits), ("activation", self.act_bits),
                         *[(f"layer {n}", b) for n, b in self.layer_bits]]:
            try:
                qrange(b, True, self.narrow_range if label != "activation" else False)
            except ValueError as e:
                problems.append(f"{label} bits: {e}")
        for label, m in (("weight", self.weight_method), ("activation", self.act_method)):
            if m not in CALIBRATION_METHODS:
                problems.append(f"{label} calibration method must be one of {', '.join(CALIBRATION_METHODS)}")
        if not 50.0 < self.percentile <= 100.0:
            problems.append("percentile must be in (50, 100]")
        if not 0.0 < self.averaging_constant <= 1.0:
            problems.append("averaging constant must be in (0, 1]")
        if self.calib_batch_size < 1:
            problems.append("calibration batch size must be ≥ 1")
        if problems:
            raise ValueError("Invalid quantization settings: " + "; ".join(problems) + ".")

    @property
    def quantize_weights(self) -> bool:
        return self.target in ("weights", "both")

    @property
    def quantize_activations(self) -> bool:
        return self.target in ("activations", "both")

    def bits_for(self, layer: str) -> int:
        return dict(self.layer_bits).get(layer, self.weight_bits)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layer_bits"] = [list(p) for p in self.layer_bits]
        return d

    def to_json(self) -> str:
        """Sorted JSON: the same settings always give the same string (a cache key, a download)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping) -> "QuantConfig":
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "layer_bits" in kw:
            kw["layer_bits"] = tuple((str(n), int(b)) for n, b in kw["layer_bits"])
        return cls(**kw)


class QuantLayer(nn.Module):
    """A Linear/Conv layer with fake quantization of its weight, its input and its output.

    Attributes (read by integer-only inference): ``weight`` and ``bias`` (float parameters),
    ``weight_qparams`` (per channel along axis 0, or per tensor; None when weights stay float),
    ``input_qparams`` and ``output_qparams`` (None when activations stay float), ``relu`` (a ReLU
    follows and ``output_qparams`` describe the post-ReLU tensor), ``kind`` ("linear", "conv1d",
    "conv2d") and ``stride``/``padding``/``dilation``/``groups`` for convolutions.
    The input is fake-quantized only when ``quantize_input`` is True (the first layer); later layers
    receive the previous layer's already quantized output, whose parameters are the same object.
    """

    def __init__(self, layer: nn.Module, name: str = "", relu: bool = False):
        super().__init__()
        self.name, self.relu = name, relu
        self.kind = {nn.Linear: "linear", nn.Conv1d: "conv1d", nn.Conv2d: "conv2d"}[type(layer)]
        self.weight = nn.Parameter(layer.weight.detach().clone())
        self.bias = nn.Parameter(layer.bias.detach().clone()) if layer.bias is not None else None
        if self.kind != "linear":
            if isinstance(layer.padding, str):
                raise ValueError(f"Layer {name}: string padding is not supported.")
            self.stride, self.padding = layer.stride, layer.padding
            self.dilation, self.groups = layer.dilation, layer.groups
        self.weight_qparams: QParams | None = None
        self.input_qparams: QParams | None = None
        self.output_qparams: QParams | None = None
        self.quantize_input = False

    def linear_op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x, w, b)
        conv = F.conv1d if self.kind == "conv1d" else F.conv2d
        return conv(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def quantized_weight(self) -> torch.Tensor:
        """The weight as the quantized model sees it (fake-quantized, or float)."""
        return fake_quantize(self.weight, self.weight_qparams) if self.weight_qparams is not None else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantize_input and self.input_qparams is not None:
            x = fake_quantize(x, self.input_qparams)
        y = self.linear_op(x, self.quantized_weight(), self.bias)
        if self.output_qparams is not None:
            y = fake_quantize(y, self.output_qparams)  # a post-ReLU range clamps negatives: ReLU fused
        return y

    def extra_repr(self) -> str:
        wb = self.weight_qparams.bits if self.weight_qparams is not None else "float"
        ab = self.output_qparams.bits if self.output_qparams is not None else "float"
        return f"{self.name}: {self.kind} {tuple(self.weight.shape)}, weights {wb}, activations {ab}, relu={self.relu}"


def quant_layers(model: nn.Module) -> list[tuple[str, QuantLayer]]:
    """(name, QuantLayer) of a quantized model, in forward order."""
    return [(n, m) for n, m in model.named_children() if isinstance(m, QuantLayer)]


def _check_sequential(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise ValueError("quantize_model works on nn.Sequential models (every model in the registry is one).")
    return list(model.named_children())


def weight_qparams_for(w: torch.Tensor, config: QuantConfig, bits: int) -> QParams:
    """Calibrated quantization parameters of one weight tensor (per output channel when configured)."""
    from .calibration import calibrate

    if not torch.isfinite(w).all():
        raise ValueError("The weights contain NaN or infinity: cannot quantize them.")
    return calibrate(w.detach(), config.weight_method, bits=bits, symmetric=config.weight_symmetric, signed=True,
                     narrow_range=config.narrow_range, axis=0 if config.per_channel else None,
                     percentile=config.percentile, averaging_constant=config.averaging_constant)


@torch.no_grad()
def collect_activations(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> dict[str, list[torch.Tensor]]:
    """Float activations at the quantization points of a Sequential model, batch by batch.

    Keys: ``"input"`` (the model input) and each weighted layer's name (its output, after the ReLU
    that follows it, if any). Values: lists of per-batch tensors.
    """
    children = _check_sequential(model)
    weighted = (nn.Linear, nn.Conv1d, nn.Conv2d, QuantLayer)
    acts: dict[str, list[torch.Tensor]] = {"input": []}
    for i in range(0, len(x), batch_size):
        h = x[i:i + batch_size]
        acts["input"].append(h)
        pending = None
        for name, m in children:
            if pending and not isinstance(m, nn.ReLU):
                acts.setdefault(pending, []).append(h)
                pending = None
            h = m.linear_op(h, m.weight, m.bias) if isinstance(m, QuantLayer) else m(h)
            if isinstance(m, weighted):
                pending = name
            elif pending:  # the ReLU right after a weighted layer
                acts.setdefault(pending, []).append(h)
                pending = None
        if pending:
            acts.setdefault(pending, []).append(h)
    return acts


def quantize_model(model: nn.Module, config: QuantConfig = QuantConfig(),
                   calibration_data: torch.Tensor | None = None) -> nn.Sequential:
    """A fake-quantized copy of ``model`` (the original is untouched); eval mode.

    Args:
        model: an ``nn.Sequential`` of Linear/Conv layers, ReLUs, pools and flattens.
        config: a ``QuantConfig``: what to quantize, bit widths, scheme, calibration methods.
        calibration_data: a batch of inputs (N, ...) for activation ranges; required unless weights only.

    Raises ValueError for invalid settings, missing/empty/non-finite calibration data or non-finite weights.

    Example::

        q = quantize_model(b.model, QuantConfig(weight_bits=4, act_bits=8), ds.x_train[:512])
        evaluate(q, ds.x_test, ds.y_test).accuracy
    """
    from .calibration import calibrate

    children = _check_sequential(model)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    acts = None
    if config.quantize_activations:
        if calibration_data is None or len(calibration_data) == 0:
            raise ValueError("Quantizing activations needs calibration data (at least one example).")
        calibration_data = calibration_data.to(device=device, dtype=torch.float32)
        if not torch.isfinite(calibration_data).all():
            raise ValueError("The calibration data contain NaN or infinity: remove those examples first.")
        acts = collect_activations(model, calibration_data, config.calib_batch_size)

    last = [n for n, m in children if isinstance(m, WEIGHTED)][-1]

    def act_qp(key: str) -> QParams:
        # logits keep their full range: clipping them would merge the top classes into ties at qmax
        method = config.act_method if key != last or config.act_method == "moving_average" else "minmax"
        return calibrate(acts[key], method, bits=config.act_bits, symmetric=config.act_symmetric,
                         signed=config.act_symmetric, percentile=config.percentile,
                         averaging_constant=config.averaging_constant)

    qmodel = copy.deepcopy(model).eval()
    prev_out: QParams | None = None  # the previous layer's output = this layer's input (pools commute)
    first = True
    for i, (name, m) in enumerate(children):
        if isinstance(m, QuantLayer):
            raise ValueError("This model is already quantized: quantize the float model instead.")
        if not isinstance(m, WEIGHTED):
            if not isinstance(m, PASS_THROUGH):
                raise ValueError(f"Layer {name} ({type(m).__name__}) is not supported: only Linear/Conv layers "
                                 "and ReLU, max-pool, flatten, dropout between them.")
            continue
        relu = i + 1 < len(children) and isinstance(children[i + 1][1], nn.ReLU)
        ql = QuantLayer(m, name, relu).to(device)
        if config.quantize_weights:
            ql.weight_qparams = weight_qparams_for(ql.weight, config, config.bits_for(name))
        if acts is not None:
            ql.quantize_input = first
            ql.input_qparams = act_qp("input") if first else prev_out
            ql.output_qparams = act_qp(name)
            prev_out = ql.output_qparams
        first = False
        setattr(qmodel, name, ql)
    unknown = set(dict(config.layer_bits)) - {n for n, _ in quant_layers(qmodel)}
    if unknown:
        raise ValueError(f"Mixed-precision bits name unknown layers: {', '.join(sorted(unknown))}.")
    return qmodel
