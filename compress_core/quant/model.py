"""Fake-quantized copies of whole models: ``QuantConfig``, ``QuantLayer`` and ``quantize_model``.

Two kinds of model, one API:

- A plain stack (the classifiers: an ``nn.Sequential`` whose Linear/Conv layers are its own children). Every
  Linear/Conv layer becomes a ``QuantLayer`` holding its float weight and bias, ``weight_qparams``,
  ``input_qparams`` and ``output_qparams`` (after the ReLU that follows, if any: the ReLU is fused as a clamp, as
  in Jacob et al. 2018); only the model input is quantized on the input side, each later layer reads the previous
  one's quantized output. This is the model the Integer inference page runs.
- A nested model (the GPT: Linear layers inside attention and MLP blocks, e.g. ``block1.attn.q``,
  ``block1.mlp.fc``). Every Linear/Conv layer anywhere in ``named_modules`` becomes a ``QuantLayer`` that
  fake-quantizes its weight and its *input* (input-side activation quantization: what a W8A8 matmul reads; the
  outputs feed residual additions, softmax and GELU, which stay float). Activations are signed here (no ReLU
  before a Linear): the default affine grid covers [min, max] with a zero point, a symmetric one is signed.
  Embeddings, LayerNorms, attention's softmax and the residual stream stay float; so does the GPT's tied output
  head, which reads the token embedding's matrix (it is not a Linear: GPTQ, AWQ and SmoothQuant leave embeddings
  and the head in float too, ``compress_core.lm``).

Ranges come from ``quant.calibration`` (on the float model's activations); the arithmetic from
``quant.primitives``.

Usage::

    qmodel = quantize_model(model, QuantConfig(weight_bits=4), ds.x_train[:256])
    evaluate(qmodel, ds.x_test, ds.y_test).accuracy
    [name for name, _ in quant_layers(quantize_model(gpt, QuantConfig(), ds.x_train[:64]))]  # block1.attn.q, …
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
    """(name, QuantLayer) of a quantized model, nested ones included (``block1.attn.q``), in registration order
    (a plain stack's forward order)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantLayer)]


def is_nested(model: nn.Module) -> bool:
    """True when some Linear/Conv (or ``QuantLayer``) of ``model`` is not a direct child of it: a transformer's
    layers inside its blocks, quantized on their inputs. False for the classifiers' plain stacks."""
    return any("." in n for n, m in model.named_modules() if isinstance(m, (*WEIGHTED, QuantLayer)))


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` at the dotted ``name`` of ``model`` (replacing what was there)."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


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


def _checked_calibration(calibration_data: torch.Tensor | None, device: torch.device,
                         as_float: bool = True) -> torch.Tensor:
    """The calibration inputs on ``device`` (float32, checked finite; a language model's token ids as they are when
    not ``as_float``). ValueError in plain words when missing, empty or not finite."""
    if calibration_data is None or len(calibration_data) == 0:
        raise ValueError("Quantizing activations needs calibration data (at least one example).")
    if as_float or calibration_data.is_floating_point():
        calibration_data = calibration_data.to(device=device, dtype=torch.float32)
        if not torch.isfinite(calibration_data).all():
            raise ValueError("The calibration data contain NaN or infinity: remove those examples first.")
        return calibration_data
    return calibration_data.to(device)  # token ids (a language model's windows)


@torch.no_grad()
def collect_layer_inputs(model: nn.Module, x: torch.Tensor, batch_size: int = 256, names=None,
                         extremes_only: bool = False) -> dict[str, list[torch.Tensor]]:
    """The float inputs each Linear/Conv layer (or ``QuantLayer``, read as float) of ``model`` sees, batch by batch.

    Keys: layer names (``named_modules``). With ``extremes_only`` each batch is kept as its [min, max] only: all
    that min-max and moving-average calibration read (``calibration._minmax``, ``_moving_average``), in two numbers
    instead of every activation. ``model`` is not changed (a ``QuantLayer`` model is read through a float copy).
    """
    float_model = copy.deepcopy(model)
    for _, ql in quant_layers(float_model):
        ql.weight_qparams = ql.input_qparams = ql.output_qparams = None
    wanted = [(n, m) for n, m in float_model.named_modules() if isinstance(m, (*WEIGHTED, QuantLayer))
              and (names is None or n in names)]
    seen: dict[str, list[torch.Tensor]] = {n: [] for n, _ in wanted}

    def hook(name):
        def fn(_mod, args):
            a = args[0].detach().float()
            seen[name].append(torch.stack([a.min(), a.max()]) if extremes_only else a)
        return fn

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in wanted]
    float_model.eval()
    try:
        for i in range(0, len(x), batch_size):
            float_model(x[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
    return seen


def _quantize_nested(model: nn.Module, config: QuantConfig, calibration_data: torch.Tensor | None) -> nn.Module:
    """``quantize_model`` of a nested model: every Linear/Conv anywhere, weights and inputs (module docstring)."""
    if any(isinstance(m, QuantLayer) for m in model.modules()):
        raise ValueError("This model is already quantized: quantize the float model instead.")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
    unknown = set(dict(config.layer_bits)) - {n for n, _ in layers}
    if unknown:
        raise ValueError(f"Mixed-precision bits name unknown layers: {', '.join(sorted(unknown))}.")
    acts = None
    if config.quantize_activations:
        calibration_data = _checked_calibration(calibration_data, device, as_float=False)
        acts = collect_layer_inputs(model, calibration_data, config.calib_batch_size,
                                    extremes_only=config.act_method in ("minmax", "moving_average"))
    qmodel = copy.deepcopy(model).eval()
    for name, m in layers:
        ql = QuantLayer(m, name).to(device)
        if config.quantize_weights:
            ql.weight_qparams = weight_qparams_for(ql.weight, config, config.bits_for(name))
        if acts is not None:
            if not torch.isfinite(torch.stack([a.abs().max() for a in acts[name]])).all():
                raise ValueError(f"Layer {name} sees NaN or infinity on the calibration data: cannot quantize it.")
            ql.quantize_input = True
            ql.input_qparams = calibrate(acts[name], config.act_method, bits=config.act_bits,
                                         symmetric=config.act_symmetric, signed=config.act_symmetric,
                                         percentile=config.percentile, averaging_constant=config.averaging_constant)
        set_module(qmodel, name, ql)
    return qmodel


def quantize_model(model: nn.Module, config: QuantConfig = QuantConfig(),
                   calibration_data: torch.Tensor | None = None) -> nn.Module:
    """A fake-quantized copy of ``model`` (the original is untouched); eval mode.

    Args:
        model: an ``nn.Sequential`` of Linear/Conv layers, ReLUs, pools and flattens (a plain stack), or a
            nested model such as the GPT, whose Linear layers are quantized wherever they sit (module docstring).
        config: a ``QuantConfig``: what to quantize, bit widths, scheme, calibration methods.
        calibration_data: a batch of inputs (N, ...) for activation ranges; required unless weights only.

    Raises ValueError for invalid settings, missing/empty/non-finite calibration data or non-finite weights.

    Example::

        q = quantize_model(b.model, QuantConfig(weight_bits=4, act_bits=8), ds.x_train[:512])
        evaluate(q, ds.x_test, ds.y_test).accuracy
    """
    if is_nested(model):
        return _quantize_nested(model, config, calibration_data)
    children = _check_sequential(model)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    acts = None
    if config.quantize_activations:
        calibration_data = _checked_calibration(calibration_data, device)
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
