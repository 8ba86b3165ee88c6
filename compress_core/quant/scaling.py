"""Per-input-channel scaling that leaves a layer's function unchanged: y = (W·diag(s)) (x / s).

AWQ (Lin et al. 2024, §3.2) and SmoothQuant (Xiao et al. 2023, §4) both move magnitude between a layer's
input channels and its weight columns: the weight becomes W·diag(s), the input x / s, and in float the output is
exactly the same. The division has to happen somewhere:

- ``scale_input(layer, s, weight)``: a generic layer keeps it — a ``ScaledLinear`` / ``ScaledConv1d`` /
  ``ScaledConv2d`` is the same module class underneath (same name in the model, same parameters) whose forward
  divides its input by ``input_scale`` (per input feature; per input channel for a conv, where zero padding
  divided by s stays zero) and then, optionally, fake-quantizes it (``act_quant``: SmoothQuant's W8A8).
- ``fold_into_layernorm(ln, s)``: a pre-LN transformer's q/k/v (or fc1) read a LayerNorm's output; dividing
  its γ and β by s divides that output by s for free (what both papers do), and the layers keep a plain
  weight W·diag(s).
- ``fold_into_linear(prev, s)``: divides the output rows of a preceding Linear, exact when nothing nonlinear sits
  between them — directly chained layers, a ReLU (positively homogeneous), or attention's value projection
  feeding the output projection (AWQ's v → o fold). Not across a GELU.

Usage::

    layer2 = scale_input(layer, s, weight=quantized(layer.weight * s))   # y = layer2.weight (x / s) + b
    fold_into_layernorm(block.ln1, s); block.attn.q.weight.mul_(s)     # the same, with no extra op
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..layer_inputs import weight_matrix

__all__ = ["ScaledConv1d", "ScaledConv2d", "ScaledLinear", "column_scale", "effective_weight_matrix", "fold_groups",
           "fold_into_layernorm", "fold_into_linear", "fold_scale", "replace_module", "scale_input"]


class _InputScaled:
    """Forward: x / input_scale (per input channel), then act_quant (if any), then the layer's own op."""

    input_scale: torch.Tensor | None
    act_quant: nn.Module | None
    channel_dim: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_scale is not None:
            shape = [1] * x.dim()
            shape[self.channel_dim] = -1
            x = x / self.input_scale.reshape(shape)
        if self.act_quant is not None:
            x = self.act_quant(x)
        return super().forward(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", input_scale={self.input_scale is not None}"  # act_quant prints as a child


class ScaledLinear(_InputScaled, nn.Linear):
    channel_dim = -1


class ScaledConv1d(_InputScaled, nn.Conv1d):
    channel_dim = 1


class ScaledConv2d(_InputScaled, nn.Conv2d):
    channel_dim = 1


_SCALED = {nn.Linear: ScaledLinear, nn.Conv1d: ScaledConv1d, nn.Conv2d: ScaledConv2d,
           ScaledLinear: ScaledLinear, ScaledConv1d: ScaledConv1d, ScaledConv2d: ScaledConv2d}


@torch.no_grad()
def scale_input(layer: nn.Module, scale: torch.Tensor | None, weight: torch.Tensor | None = None,
                act_quant: nn.Module | None = None) -> nn.Module:
    """A copy of ``layer`` computing layer'(act_quant(x / scale)) with weight ``weight`` (its own if None).

    ``scale``: one positive value per input feature (per input channel of a conv), or None for no division.
    ``weight``: usually the layer's weight times ``column_scale`` (and quantized); any shape that reshapes to
    the layer's weight."""
    if type(layer) not in _SCALED:
        raise ValueError(f"Input scaling works on Linear and Conv1d/Conv2d layers; got {type(layer).__name__}.")
    new = copy.deepcopy(layer)
    new.__class__ = _SCALED[type(layer)]  # same parameters and attributes, one more step in forward
    if weight is not None:
        new.weight.data = weight.detach().reshape(layer.weight.shape).to(layer.weight.dtype).clone()
    if scale is not None:
        scale = scale.detach().float().reshape(-1)
        if getattr(layer, "groups", 1) != 1:
            raise ValueError("Grouped convolutions cannot take a per-input-channel scale here.")
        channels = layer.weight.shape[1]
        if len(scale) != channels:
            raise ValueError(f"The scale has {len(scale)} values; the layer has {channels} input channels.")
    new.register_buffer("input_scale", scale.clone() if scale is not None else None)
    new.act_quant = act_quant
    return new


def column_scale(layer: nn.Module, scale: torch.Tensor) -> torch.Tensor:
    """A per-input-channel scale repeated over each channel's columns of ``weight_matrix(layer)`` (k… of a conv)."""
    per_channel = weight_matrix(layer).shape[1] // layer.weight.shape[1]
    return scale.reshape(-1).repeat_interleave(per_channel)


def effective_weight_matrix(layer: nn.Module) -> torch.Tensor:
    """The (out, in·k…) matrix the layer applies to its *unscaled* input: W'·diag(1/s) for a scaled layer."""
    w = weight_matrix(layer).detach().float()
    s = getattr(layer, "input_scale", None)
    return w / column_scale(layer, s) if s is not None else w


@torch.no_grad()
def fold_into_layernorm(ln: nn.LayerNorm, scale: torch.Tensor) -> None:
    """Divide a LayerNorm's output by ``scale`` (per feature) in place: γ ← γ/s, β ← β/s."""
    if not isinstance(ln, nn.LayerNorm) or ln.weight is None or len(ln.normalized_shape) != 1:
        raise ValueError("Only a LayerNorm over the last dimension with an elementwise affine can absorb a scale.")
    if ln.weight.shape[0] != scale.numel():
        raise ValueError(f"The scale has {scale.numel()} values; the LayerNorm has {ln.weight.shape[0]} features.")
    ln.weight.div_(scale.to(ln.weight.dtype))
    if ln.bias is not None:
        ln.bias.div_(scale.to(ln.bias.dtype))


@torch.no_grad()
def fold_into_linear(prev: nn.Linear, scale: torch.Tensor) -> None:
    """Divide a Linear layer's outputs by ``scale`` (per output feature) in place: W_prev[j] /= s_j, b_j /= s_j."""
    if not isinstance(prev, nn.Linear) or prev.weight.shape[0] != scale.numel():
        raise ValueError("The preceding layer must be a Linear layer with one output per scale value.")
    prev.weight.div_(scale.to(prev.weight.dtype).reshape(-1, 1))
    if prev.bias is not None:
        prev.bias.div_(scale.to(prev.bias.dtype))


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule ``name`` (dotted, as named_modules gives it) was."""
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def fold_scale(model: nn.Module, into: str, scale: torch.Tensor) -> None:
    """Divide the output of the LayerNorm or Linear ``into`` by ``scale`` (``fold_into_layernorm`` / ``_linear``)."""
    target = model.get_submodule(into)
    if isinstance(target, nn.LayerNorm):
        fold_into_layernorm(target, scale)
    elif isinstance(target, nn.Linear):
        fold_into_linear(target, scale)
    else:
        raise ValueError(f"Cannot fold a scale into {into} ({type(target).__name__}): give a LayerNorm or a Linear.")


def fold_groups(fold, selected: list[str]) -> dict[str, list[str]]:
    """Check ``fold`` ({LayerNorm/Linear name: [names of the layers reading its output]}) against the layers."""
    fold = {k: list(v) for k, v in (fold or {}).items()}
    members = [n for names in fold.values() for n in names]
    if len(members) != len(set(members)):
        raise ValueError("A layer appears in two fold groups: each layer's input has one source.")
    missing = set(members) - set(selected)
    if missing:
        raise ValueError(f"Fold group members must be quantized layers too: {', '.join(sorted(missing))}.")
    return fold
