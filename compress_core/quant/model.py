"""Fake-quantized copies of whole models: ``QuantConfig``, ``QuantLayer`` and ``quantize_model``.

Every Linear/Conv layer of an ``nn.Sequential`` becomes a ``QuantLayer`` holding its float weight and bias,
``weight_qparams``, ``input_qparams`` and ``output_qparams`` (after the ReLU that follows, if any: the ReLU
is fused as a clamp, as in Jacob et al. 2018). Ranges come from ``quant.calibration``; the arithmetic from
``quant.primitives``.

Usage::

    qmodel = quantize_model(model, QuantConfig(weight_bits=4), ds.x_train[:256])
    evaluate(qmodel, ds.x_test, ds.y_test).accuracy
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, param
from ..models import WEIGHTED
from .calibration import METHODS, calibrate
from .primitives import QParams, fake_quantize, qrange

TARGETS = ("weights", "activations", "both")
PASS_THROUGH = (nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)  # commute with fq


@dataclass(frozen=True)
class QuantConfig(Config, label="quantization", unknown="ignore"):
    """How to quantize a model (post-training, or as the starting point of QAT).

    Weights are signed; activations are unsigned when asymmetric (like quint8) and signed with Z = 0
    when symmetric. ``layer_bits`` gives some layers their own weight bit width (mixed precision).
    The output layer's activations (the logits) are always calibrated with min-max (or the moving
    average): a clipping method there would saturate the largest logits and turn the prediction into a tie.
    """

    target: str = param("both", "what to quantize: 'weights', 'activations' or 'both'")
    weight_bits: int = param(8, "bits per weight (signed)")
    act_bits: int = param(8, "bits per activation")
    weight_symmetric: bool = param(True, "weights: symmetric range, zero point Z = 0")
    act_symmetric: bool = param(False, "activations: symmetric and signed with Z = 0 (else unsigned, affine)")
    per_channel: bool = param(True, "weights: one (S, Z) per output channel (else one per tensor)")
    narrow_range: bool = param(False, "weights: drop the lowest code, so the range is symmetric")
    weight_method: str = param("minmax", "weight range calibration, see compress_core.quant.calibration.METHODS")
    act_method: str = param("minmax", "activation range calibration, see compress_core.quant.calibration.METHODS")
    percentile: float = param(99.99, "method 'percentile': range from the p-th and (100 − p)-th percentiles")
    averaging_constant: float = param(0.01, "weight of each new batch, for calibration method 'moving_average'")
    calib_batch_size: int = param(32, "batch size the calibration data is fed in (moving average)")
    layer_bits: tuple[tuple[str, int], ...] = param((), "(layer, weight bits) overrides: mixed precision")

    def problems(self):
        if self.target not in TARGETS:
            yield f"what to quantize must be one of {', '.join(TARGETS)}"
        for label, b in [("weight", self.weight_bits), ("activation", self.act_bits),
                         *[(f"layer {n}", b) for n, b in self.layer_bits]]:
            try:
                qrange(b, True, self.narrow_range if label != "activation" else False)
            except ValueError as e:
                yield f"{label} bits: {e}"
        for label, m in (("weight", self.weight_method), ("activation", self.act_method)):
            if m not in METHODS:
                yield f"{label} calibration method must be one of {', '.join(METHODS)}"
        if not 50.0 < self.percentile <= 100.0:
            yield "percentile must be in (50, 100]"
        if not 0.0 < self.averaging_constant <= 1.0:
            yield "averaging constant must be in (0, 1]"
        if self.calib_batch_size < 1:
            yield "calibration batch size must be ≥ 1"

    @property
    def quantize_weights(self) -> bool:
        return self.target in ("weights", "both")

    @property
    def quantize_activations(self) -> bool:
        return self.target in ("activations", "both")

    def bits_for(self, layer: str) -> int:
        return dict(self.layer_bits).get(layer, self.weight_bits)


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
