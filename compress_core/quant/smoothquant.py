"""SmoothQuant: move activation outliers into the weights, so both quantize well to 8 bits (W8A8).

Xiao et al. 2023, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language Models",
§4. A few input channels of a transformer's linear layers carry activations 100× the others; per-tensor int8
quantization of X then leaves the other channels a handful of levels. Per input channel j,

    s_j = max|X_j|^α / max|W_j|^(1−α),    X̂ = X diag(s)⁻¹,   Ŵ = diag(s) W   (in y = x Wᵀ: columns of W times s)

and X̂ Ŵᵀ = X Wᵀ exactly in float. α (the "migration strength", 0.5 in the paper, up to 0.75–0.85 for models with
stronger outliers) moves the difficulty: α = 1 gives every activation channel a maximum of 1 (all the spread moves
into the weights), α = 0 gives every weight column a maximum of 1 (all of it stays on the activations, rescaled by
max|W_j|), and α = 0.5 makes both maxima equal per channel. As in the reference code the weights' maximum and s
are floored at 1e-5.

W8A8 fake quantization, as the reference's ``W8A8Linear``: weights symmetric per output channel, activations
symmetric per tensor (static: the range is calibrated on X̂ of the calibration rows) or per token (dynamic: each
row's own max, at run time); both on the narrow grid −127…127 (S = max|·|/127). The division by s is kept in the
layer (``scaling.ScaledLinear``) or folded into the LayerNorm that feeds the layer (``fold``).

Usage::

    inputs = capture_inputs(model, x_calib)
    q = smoothquant(model, inputs, alpha=0.5)                       # W8A8 with smoothing (a copy)
    q0 = smoothquant(model, inputs, smooth=False)                   # W8A8 without: the baseline it beats
    f = smoothquant(model, inputs, quantize=False)                  # smoothing alone: same outputs as model
    activation_range_ratio(inputs["fc1"] / s)                       # max over median of the channels' max |x|
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..layer_inputs import layers_of, weight_matrix
from .awq import channel_stat
from .primitives import QParams, compute_qparams, fake_quantize
from .scaling import column_scale, fold_groups, fold_scale, replace_module, scale_input

__all__ = ["ACT_SCHEMES", "ActQuant", "activation_range_ratio", "smooth_scale", "smoothquant", "w8a8_weight"]

ACT_SCHEMES = ("tensor", "token")  # static per-tensor, dynamic per-token
FLOOR = 1e-5  # the reference code's clamp of both maxima and of s


def smooth_scale(act_absmax: torch.Tensor, weight_absmax: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """s_j = max|X_j|^α / max|W_j|^(1−α) per input channel (the weights' maximum, and s, floored at 1e-5)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"The migration strength α must be in [0, 1]; got {alpha}.")
    w = weight_absmax.detach().float().clamp(min=FLOOR)
    return (act_absmax.detach().float().pow(alpha) / w.pow(1 - alpha)).clamp(min=FLOOR)


def _symmetric_qparams(amax: torch.Tensor, bits: int, axis: int | None = None) -> QParams:
    return compute_qparams(-amax, amax, bits, symmetric=True, narrow_range=True, axis=axis)


def w8a8_weight(w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-output-channel fake quantization on the narrow grid (S = max|w_row|/127 at 8 bits)."""
    w2 = w.detach().float().reshape(w.shape[0], -1)
    return fake_quantize(w2, _symmetric_qparams(w2.abs().amax(1), bits, axis=0)).reshape(w.shape)


class ActQuant(nn.Module):
    """Symmetric fake quantization of a layer's input: per tensor with calibrated parameters (``qparams``), or
    per token, each position's own max |x| over the channels (``channel_dim``) at run time."""

    def __init__(self, bits: int = 8, scheme: str = "tensor", qparams: QParams | None = None, channel_dim: int = -1):
        super().__init__()
        if scheme not in ACT_SCHEMES:
            raise ValueError(f"Activation scheme must be one of {', '.join(ACT_SCHEMES)}; got {scheme!r}.")
        if scheme == "tensor" and qparams is None:
            raise ValueError("Static per-tensor activation quantization needs calibrated parameters.")
        self.bits, self.scheme, self.qparams, self.channel_dim = bits, scheme, qparams, channel_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scheme == "tensor":
            return fake_quantize(x, self.qparams)
        t = x.movedim(self.channel_dim, -1)
        rows = t.reshape(-1, t.shape[-1])
        rows = fake_quantize(rows, _symmetric_qparams(rows.detach().abs().amax(1), self.bits, axis=0))
        return rows.reshape(t.shape).movedim(-1, self.channel_dim)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scheme={self.scheme}"


def activation_range_ratio(rows: torch.Tensor) -> float:
    """max over channels of max|X_j|, divided by its median over channels: how far the outlier channels stick out
    (1 when every channel has the same range; per-tensor quantization wastes about this factor of levels)."""
    absmax = rows.detach().abs().amax(0).float()
    return float(absmax.max() / absmax.median().clamp(min=1e-12))


@torch.no_grad()
def smoothquant(model: nn.Module, inputs: dict[str, torch.Tensor], alpha: float = 0.5, layers=None, *,
                fold: dict[str, list[str]] | None = None, smooth: bool = True, quantize: bool = True,
                weight_bits: int = 8, act_bits: int = 8, act_scheme: str = "tensor") -> nn.Module:
    """A copy of ``model`` (eval mode) with its Linear/Conv layers smoothed and/or W8A8 fake-quantized.

    Args:
        inputs: each layer's float input rows (``capture_inputs(model, x)``): the activation maxima and the static
            activation ranges come from these.
        alpha: migration strength in [0, 1]. layers: the layers to treat (default: all Linear/Conv layers).
        fold: {LayerNorm (or Linear) name: [layers reading its output]}: one scale for the group (the weight maxima
            taken over all of them), divided out in that module (a Linear only where nothing nonlinear but a ReLU or
            attention's value mixing follows it); other layers divide their input themselves. Groups are smoothed
            in the order given.
        smooth: apply the smoothing (False: plain W8A8, the baseline). quantize: fake-quantize (False: smoothing
            alone, float, the same function as ``model``).
        weight_bits, act_bits: 8 in the paper. act_scheme: ``"tensor"`` (static) or ``"token"`` (dynamic).
    """
    if act_scheme not in ACT_SCHEMES:
        raise ValueError(f"Activation scheme must be one of {', '.join(ACT_SCHEMES)}; got {act_scheme!r}.")
    new = copy.deepcopy(model).eval()
    selected = [n for n, _ in layers_of(new, layers)]
    groups = fold_groups(fold, selected) if smooth else {}
    # First the fold groups' scales, applied in float (a fold into a Linear that is itself treated, v → proj,
    # then rescales float weights, not codes); then each layer's own smoothing and the quantization.
    applied = {}  # layer name -> the scale its input was already divided by (in the module it reads from)
    for into, names in groups.items():
        mods = [new.get_submodule(n) for n in names]
        if not all(isinstance(m, nn.Linear) for m in mods):
            raise ValueError(f"The layers folded into {into} must be Linear layers.")
        w_absmax = torch.stack([weight_matrix(m).detach().abs().amax(0).float() for m in mods]).amax(0)
        s = smooth_scale(inputs[names[0]].abs().amax(0), w_absmax, alpha)
        fold_scale(new, into, s)
        for name, m in zip(names, mods):
            m.weight.mul_(s)
            applied[name] = s
    for name in selected:
        m, rows = new.get_submodule(name), inputs[name]
        w = weight_matrix(m).detach().float()
        s = None  # the division this layer keeps itself
        if name in applied:
            s_cols = applied[name]
        elif smooth:
            s = smooth_scale(channel_stat(m, rows.abs().amax(0), "max"), channel_stat(m, w.abs().amax(0), "max"),
                             alpha)
            s_cols = column_scale(m, s)
            w = w * s_cols
        else:
            s_cols = None
        act_q = None
        if quantize:
            w = w8a8_weight(w, weight_bits)
            x_hat = rows / s_cols if s_cols is not None else rows
            qp = _symmetric_qparams(x_hat.abs().max(), act_bits) if act_scheme == "tensor" else None
            act_q = ActQuant(act_bits, act_scheme, qp, channel_dim=-1 if isinstance(m, nn.Linear) else 1)
        replace_module(new, name, scale_input(m, s, w, act_q))
    return new
