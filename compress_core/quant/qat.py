"""Quantization-aware training: fine-tune a fake-quantized model so it learns to live with rounding.

- STE (Bengio et al. 2013; Jacob et al. 2018 §3): the forward pass rounds, the backward pass treats
  rounding as the identity inside the range and blocks the gradient where a value was clipped. Weight
  ranges follow the current weights (min-max, per channel when configured) at every step; activation
  ranges start from calibration and track a moving average of the batch ranges (c = 0.01, PyTorch's
  default FakeQuantize) while training, then freeze.
- LSQ (Esser et al. 2020, "Learned Step Size Quantization"): the scales become parameters trained by
  gradient descent with ∂x̂/∂S = round(x/S) − x/S inside the range and qmin−Z or qmax−Z outside, scaled
  by g = 1/√(N·Q_P), with N the number of weights (per channel: the weights of one channel) or the number
  of features of one example for activations, so g does not depend on the batch size. Each step starts at
  2⟨|v|⟩/√Q_P, the mean |value| over the weights, or over the calibration data's activations (the paper
  uses the first batch); ``lsq_init="minmax"`` starts from the min-max calibrated scale instead. Q_P is the
  number of positive levels, qmax − Z (the paper's Q_P: 2^b − 1 unsigned, 2^(b−1) − 1 signed, for Z = 0,
  which symmetric weights and post-ReLU activations have). The gradient formulas equal
  ``torch._fake_quantize_learnable_per_tensor_affine`` (tests check).
- Batch-norm folding (Jacob et al. 2018 §3.2, Krishnamoorthi 2018 §2.6): ``fold_batchnorm`` folds a BN
  that follows a Linear/Conv into its weight and bias. The registry's models have no BN, so the app
  never needs it; the function is here, tested, for models that do.

Fine-tuning reuses ``compress_core.train.train`` (same seeds, same progress callback records; a language model's
windows train as its baseline did). A nested model (the GPT) is fine-tuned with the quantizers ``quantize_model``
gives it: every Linear's weight and input.

Usage::

    qmodel, hist = quantization_aware_training(b.model, QuantConfig(weight_bits=2), ds,
                                               TrainConfig(epochs=5, lr=5e-4), lsq=True)
"""
from __future__ import annotations

import copy
import math
from typing import Mapping

import torch
from torch import nn

from ..data import Dataset
from ..train import History, TrainConfig, default_device, evaluate, state_copy, train
from .model import (
    QuantConfig,
    QuantLayer,
    collect_activations,
    collect_layer_inputs,
    is_nested,
    quant_layers,
    quantize_model,
    set_module,
)
from .primitives import QParams, compute_qparams, fake_quantize


class _LSQ(torch.autograd.Function):
    """Learnable fake quantization: gradients for x, the scale and the (float) zero point."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax, grad_factor, axis):
        shape = [1] * x.dim()
        if axis is not None:
            shape[axis] = -1
        s = scale.reshape(shape) if axis is not None else scale.reshape(())
        z = torch.clamp(torch.round(zero_point), qmin, qmax)
        z = z.reshape(shape) if axis is not None else z.reshape(())
        inv = 1.0 / s
        q = torch.round(x * inv) + z
        ctx.save_for_backward(x, s, z, q)
        ctx.qmin, ctx.qmax, ctx.g, ctx.axis = qmin, qmax, grad_factor, axis
        return (torch.clamp(q, qmin, qmax) - z) * s

    @staticmethod
    def backward(ctx, grad):
        x, s, z, q = ctx.saved_tensors
        qmin, qmax, g = ctx.qmin, ctx.qmax, ctx.g
        below, above = q < qmin, q > qmax
        inside = ~(below | above)
        inv = 1.0 / s
        x_fq = (torch.clamp(q, qmin, qmax) - z) * s
        d_s = torch.where(inside, (x_fq - x) * inv, torch.where(below, qmin - z, qmax - z))
        d_z = torch.where(inside, torch.zeros_like(x), -s.expand_as(x))
        if ctx.axis is None:
            gs, gz = (grad * d_s).sum().reshape(1) * g, (grad * d_z).sum().reshape(1) * g
        else:
            dims = [d for d in range(x.dim()) if d != ctx.axis]
            gs, gz = (grad * d_s).sum(dims) * g, (grad * d_z).sum(dims) * g
        return grad * inside, gs, gz, None, None, None, None


def lsq_fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                      grad_factor: float = 1.0, axis: int | None = None) -> torch.Tensor:
    """Fake quantization whose scale and zero point receive gradients (LSQ).

    Args:
        x: values. scale, zero_point: float tensors of shape (1,) per tensor or (C,) along ``axis``.
        qmin, qmax: the integer range. grad_factor: multiplies the scale/zero-point gradients
            (LSQ uses 1/√(N·qmax)).

    Example::

        s = torch.nn.Parameter(torch.tensor([0.05]))
        y = lsq_fake_quantize(x, s, torch.zeros(1), -8, 7, 1 / math.sqrt(x.numel() * 7))
    """
    return _LSQ.apply(x, scale, zero_point, qmin, qmax, grad_factor, axis)


LSQ_INITS = ("mean_abs", "minmax")  # the paper's 2⟨|v|⟩/√Q_P, or the min-max calibrated scale


def lsq_grad_factor(numel: int, qmax: int) -> float:
    """LSQ's gradient scale g = 1/√(N·Q_P) (Esser et al. 2020, §2.2).

    Args:
        numel: N, the number of weights a step quantizes, or the number of features of one example.
        qmax: Q_P, the number of positive levels (qmax − Z).
    """
    return 1.0 / math.sqrt(max(numel, 1) * max(qmax, 1))


def lsq_positive_levels(qp: QParams) -> int:
    """Q_P of a quantizer: qmax − Z, the levels above real 0 (the largest over channels, at least 1)."""
    return max(1, qp.qmax - int(qp.zero_point.min()))


def lsq_init_scale(v: torch.Tensor, q_p: int, axis: int | None = None) -> torch.Tensor:
    """LSQ's initial step 2⟨|v|⟩/√Q_P (Esser et al. 2020, §2.1): shape (1,), or (C,) per channel along ``axis``.

    Example::

        s0 = lsq_init_scale(layer.weight, 7, axis=0)   # 4-bit signed weights, one step per output channel
    """
    a = v.detach().abs().float()
    mean = a.mean().reshape(1) if axis is None else a.movedim(axis, 0).reshape(a.shape[axis], -1).mean(1)
    return (2.0 * mean / math.sqrt(max(q_p, 1))).clamp_min(torch.finfo(torch.float32).eps)


class _WeightQuantizer(nn.Module):
    """During QAT: fake-quantize the current weight with min-max ranges, or with learned LSQ scales."""

    def __init__(self, weight: torch.Tensor, qp: QParams, lsq: bool, init: str = "mean_abs"):
        super().__init__()
        self.template, self.lsq = qp, lsq
        self.q_p = lsq_positive_levels(qp)
        s0 = lsq_init_scale(weight, self.q_p, qp.axis) if init == "mean_abs" else qp.scale.detach().reshape(-1)
        self.scale = nn.Parameter(s0.clone().reshape(-1).to(qp.scale.device)) if lsq else None
        self.register_buffer("zero", qp.zero_point.detach().float().reshape(-1))

    def current_qparams(self, w: torch.Tensor) -> QParams:
        t = self.template
        if self.lsq:
            scale = self.scale.detach().abs().clamp_min(torch.finfo(torch.float32).eps)
            return QParams(scale.reshape(t.scale.shape), t.zero_point, t.bits, t.signed, t.symmetric,
                           t.narrow_range, t.axis)
        x = w.detach()
        if t.axis is None:
            lo, hi = x.min(), x.max()
        else:
            flat = x.movedim(t.axis, 0).reshape(x.shape[t.axis], -1)
            lo, hi = flat.amin(1), flat.amax(1)
        return compute_qparams(lo, hi, t.bits, symmetric=t.symmetric, signed=t.signed,
                               narrow_range=t.narrow_range, axis=t.axis)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        t = self.template
        if self.lsq:
            g = lsq_grad_factor(w.numel() // self.scale.numel(), self.q_p)  # N: the weights one step covers
            scale = self.scale.abs().clamp_min(torch.finfo(torch.float32).eps)
            return lsq_fake_quantize(w, scale, self.zero, t.qmin, t.qmax, g, t.axis)
        return fake_quantize(w, self.current_qparams(w))


class _ActQuantizer(nn.Module):
    """Output fake quantization during QAT: moving-average ranges, or a learned LSQ scale."""

    def __init__(self, qp: QParams, lsq: bool, averaging_constant: float = 0.01, mean_abs: float | None = None):
        super().__init__()
        self.template, self.lsq, self.c = qp, lsq, averaging_constant
        self.q_p = lsq_positive_levels(qp)
        self.register_buffer("lo", qp.range_min.detach().clone().reshape(()))
        self.register_buffer("hi", qp.range_max.detach().clone().reshape(()))
        s0 = qp.scale.detach().reshape(1) if mean_abs is None else \
            lsq_init_scale(torch.tensor([mean_abs]), self.q_p).to(qp.scale.device)  # 2⟨|v|⟩/√Q_P
        self.scale = nn.Parameter(s0.clone()) if lsq else None
        self.register_buffer("zero", qp.zero_point.detach().float().reshape(1))

    def current_qparams(self) -> QParams:
        t = self.template
        if self.lsq:
            scale = self.scale.detach().abs().clamp_min(torch.finfo(torch.float32).eps).reshape(())
            return QParams(scale, t.zero_point, t.bits, t.signed, t.symmetric, t.narrow_range, None)
        return compute_qparams(self.lo, self.hi, t.bits, symmetric=t.symmetric, signed=t.signed,
                               narrow_range=t.narrow_range)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        t = self.template
        if self.lsq:
            g = lsq_grad_factor(y[0].numel() if y.dim() > 1 else y.numel(), self.q_p)  # N: features per example
            scale = self.scale.abs().clamp_min(torch.finfo(torch.float32).eps)
            return lsq_fake_quantize(y, scale, self.zero, t.qmin, t.qmax, g)
        if self.training:  # ranges adapt while training, stay put while evaluating
            with torch.no_grad():
                self.lo += self.c * (y.detach().min() - self.lo)
                self.hi += self.c * (y.detach().max() - self.hi)
        return fake_quantize(y, self.current_qparams())


class _QATLayer(nn.Module):
    """Wraps a ``QuantLayer`` during QAT: its quantizers follow the weights and activations as they train."""

    def __init__(self, ql: QuantLayer, lsq: bool, c: float, init: str = "mean_abs",
                 mean_abs: dict[str, float] | None = None):
        super().__init__()
        self.layer = ql
        mean_abs = mean_abs or {}
        w_qp, y_qp = ql.weight_qparams, ql.output_qparams
        self.weight_quantizer = _WeightQuantizer(ql.weight, w_qp, lsq, init) if w_qp is not None else None
        self.output_quantizer = _ActQuantizer(y_qp, lsq, c, mean_abs.get("output")) if y_qp is not None else None
        first = ql.input_qparams is not None and ql.quantize_input
        self.input_quantizer = _ActQuantizer(ql.input_qparams, lsq, c, mean_abs.get("input")) if first else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ql = self.layer
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        w = self.weight_quantizer(ql.weight) if self.weight_quantizer is not None else ql.weight
        y = ql.linear_op(x, w, ql.bias)
        return self.output_quantizer(y) if self.output_quantizer is not None else y


@torch.no_grad()
def freeze(model: nn.Sequential) -> nn.Sequential:
    """Replace every QAT wrapper by its ``QuantLayer`` with fixed qparams (final weights, learned or
    averaged ranges); each layer's ``input_qparams`` becomes the previous layer's new ``output_qparams``."""
    prev = None
    for name, m in [(n, m) for n, m in model.named_modules() if isinstance(m, _QATLayer)]:
        ql = m.layer
        if m.weight_quantizer is not None:
            ql.weight_qparams = m.weight_quantizer.current_qparams(ql.weight)
        if m.input_quantizer is not None:
            ql.input_qparams = m.input_quantizer.current_qparams()
        elif ql.input_qparams is not None:
            ql.input_qparams = prev
        if m.output_quantizer is not None:
            ql.output_qparams = m.output_quantizer.current_qparams()
        prev = ql.output_qparams
        set_module(model, name, ql)
    return model.eval()


def prepare_qat(model: nn.Module, config: QuantConfig, calibration_data: torch.Tensor, *, lsq: bool = False,
                lsq_init: str = "mean_abs") -> nn.Sequential:
    """The fake-quantized copy of ``model`` that QAT trains: every ``QuantLayer`` wrapped with quantizers that
    follow the weights (min-max) or learn their steps (LSQ, starting as ``lsq_init`` says). ``freeze`` turns
    it back into fixed ``QuantLayer``s."""
    if lsq_init not in LSQ_INITS:
        raise ValueError(f"Unknown LSQ initialisation {lsq_init!r}: use one of {', '.join(LSQ_INITS)}.")
    qmodel = quantize_model(model, config, calibration_data)
    nested = is_nested(model)  # a nested model's layers quantize their inputs (quant.model)
    means: dict[str, float] = {}
    if lsq and lsq_init == "mean_abs" and config.quantize_activations:
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        if nested:
            acts = collect_layer_inputs(model, calibration_data.to(dev), config.calib_batch_size)
        else:
            acts = collect_activations(model, calibration_data.to(device=dev, dtype=torch.float32),
                                       config.calib_batch_size)
        means = {k: float(torch.cat([b.reshape(-1) for b in v]).abs().mean()) for k, v in acts.items()}
    for name, ql in quant_layers(qmodel):
        mean_abs = None
        if means:
            mean_abs = {"input": means.get(name)} if nested else {"input": means.get("input"),
                                                                  "output": means.get(name)}
        set_module(qmodel, name, _QATLayer(ql, lsq, config.averaging_constant, lsq_init, mean_abs))
    return qmodel


def quantization_aware_training(model: nn.Module, config: QuantConfig, dataset: Dataset,
                                train_config: TrainConfig = TrainConfig(epochs=5, lr=5e-4), *,
                                calibration_data: torch.Tensor | None = None, lsq: bool = False,
                                lsq_init: str = "mean_abs", seed: int = 0, keep_best: bool = True,
                                callback=None, mask: Mapping[str, torch.Tensor] | None = None
                                ) -> tuple[nn.Sequential, History]:
    """Fine-tune a fake-quantized copy of ``model`` (usually the float baseline); returns (model, history).

    Args:
        model: the float ``nn.Sequential``; not changed.
        config: what to quantize and how (its calibration gives the starting ranges).
        dataset: training data; ``calibration_data`` defaults to its first 256 training inputs.
        train_config: fine-tuning schedule (a few epochs at a small learning rate).
        lsq: learn the scales (LSQ) instead of deriving them from min-max ranges.
        lsq_init: where LSQ's steps start: "mean_abs" (the paper's 2⟨|v|⟩/√Q_P, activations measured on the
            calibration data) or "minmax" (the min-max calibrated scale).
        keep_best: return the state with the best validation accuracy among the starting point (the PTQ
            model) and the end of each epoch — early stopping on validation, never on test.
        callback: per-epoch progress, as in ``train`` (return False to stop).
        mask: a pruning mask of ``model`` ({"<layer>.weight": 0/1}); pruned weights stay zero while QAT trains
            (a symmetric or affine grid represents zero exactly, so they stay zero once quantized too).

    The returned model is frozen: every ``QuantLayer`` has fixed ``weight_qparams``/``input_qparams``/
    ``output_qparams``, ready for evaluation or integer-only inference. ``history.best_iteration`` is
    the iteration of the returned state (0: fine-tuning never beat the starting point on validation).
    """
    calib = calibration_data if calibration_data is not None else dataset.x_train[:256]
    qmodel = prepare_qat(model, config, calib, lsq=lsq, lsq_init=lsq_init)
    # the wrapped copy names a weight "<layer>.layer.weight"
    qmask = {f"{k.rsplit('.', 1)[0]}.layer.weight": v for k, v in mask.items()} if mask else None
    history = _train_keeping_best(qmodel, dataset, train_config, seed, keep_best, callback, qmask)
    return freeze(qmodel), history


def float_control(model: nn.Module, dataset: Dataset, train_config: TrainConfig = TrainConfig(epochs=5, lr=5e-4), *,
                  seed: int = 0, keep_best: bool = True, callback=None) -> tuple[nn.Module, History]:
    """The control for a QAT result: a float copy of ``model`` (not changed) fine-tuned exactly as
    ``quantization_aware_training`` fine-tunes the quantized one -- the same schedule, seed and best-validation
    rule -- without any quantization. A QAT model that beats the float baseline may only be enjoying the extra
    epochs; the fair comparison is with this model."""
    net = copy.deepcopy(model)
    history = _train_keeping_best(net, dataset, train_config, seed, keep_best, callback)
    return net.eval(), history


def _train_keeping_best(net: nn.Module, dataset: Dataset, train_config: TrainConfig, seed: int, keep_best: bool,
                        callback, mask: Mapping[str, torch.Tensor] | None = None) -> History:
    """Train ``net`` in place; with ``keep_best`` end with the state of the best validation accuracy among the
    starting point and each evaluation. ``history.best_iteration``: that state's iteration (0: the start)."""
    device = default_device()
    net.to(device)
    best = {"acc": evaluate(net, dataset.x_val, dataset.y_val).accuracy, "state": state_copy(net), "iteration": 0}

    def on_record(rec: dict):
        if keep_best and rec["val_acc"] > best["acc"]:
            best.update(acc=rec["val_acc"], state=state_copy(net), iteration=rec["iteration"])
        return callback(rec) if callback else None

    history = train(net, dataset, train_config, seed=seed, callback=on_record, device=device, mask=mask)
    if keep_best:
        net.load_state_dict(best["state"])
    history.best_iteration = best["iteration"] if keep_best else history.iterations
    net.to("cpu")
    return history


def fold_batchnorm(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """A copy of Linear/Conv ``layer`` with the eval-mode batch norm ``bn`` that follows it folded in.

    W' = W·γ/√(σ²+ε) per output channel, b' = (b − μ)·γ/√(σ²+ε) + β (Jacob et al. 2018, §3.2), so that
    ``folded(x) == bn(layer(x))`` and only the folded weights need quantizing.
    """
    import copy

    if layer.weight.shape[0] != bn.num_features:
        raise ValueError(f"Batch norm has {bn.num_features} channels but the layer has {layer.weight.shape[0]} "
                         "outputs.")
    out = copy.deepcopy(layer)
    gamma = bn.weight.detach() if bn.affine else torch.ones(bn.num_features)
    beta = bn.bias.detach() if bn.affine else torch.zeros(bn.num_features)
    factor = gamma / torch.sqrt(bn.running_var.detach() + bn.eps)
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros(bn.num_features)
    with torch.no_grad():
        out.weight.copy_(layer.weight.detach() * factor.reshape(-1, *([1] * (layer.weight.dim() - 1))))
        new_bias = (bias - bn.running_mean.detach()) * factor + beta
        if out.bias is None:
            out.bias = nn.Parameter(new_bias)
        else:
            out.bias.copy_(new_bias)
    return out
