"""Structured-pruning surgery: turn a mask that removes whole neurons/channels into a smaller dense model.

Unstructured zeros keep every tensor its full size, so dense hardware does the same work (Han et al.
2015 needed custom sparse kernels, EIE, for speed). Removing whole output neurons (Linear rows) or
filters (Conv output channels) -- and the matching *inputs* of the next layer -- gives a genuinely
smaller dense network that any hardware runs faster (Li et al. 2017, "Pruning Filters for Efficient
ConvNets"). The shrunk model computes exactly what the masked model computes:

- a hidden neuron is removed when its whole weight row and its bias are masked (it outputs ReLU(0) = 0,
  max-pooled zeros stay zero, and a zero input contributes nothing to the next layer), or when every
  weight that reads it in the next layer is masked (its output is never used);
- after ``Flatten`` a conv channel feeds a contiguous block of the next Linear layer's inputs
  (channel c -> columns c·S .. (c+1)·S − 1, S = spatial size), so that whole block goes with it;
- the output layer keeps every class; the input layer keeps every input feature;
- surviving weights are copied with the mask applied, so any unstructured zeros remain.

Works on ``nn.Sequential`` models whose parameters live in Linear/Conv1d/Conv2d layers (every model of
``compress_core.models``), with activations f(0) = 0 (ReLU, max-pool) between them.

Usage::

    mask = prune(model, 0.5, granularity="neuron")
    small = shrink(model, mask)                 # fc1: 300 -> 150 neurons, fc2: 100 -> 50, fc3: 50 inputs
    torch.allclose(small(x), apply_mask(model, mask)(x), atol=1e-5)
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Mapping

import torch
from torch import nn

from ..models import WEIGHTED, is_language_model, weighted_layers


def _group(consumer: nn.Module, producer_out: int, name: str) -> int:
    """How many input columns of ``consumer`` each output of the producer feeds (1, or S after Flatten)."""
    fan_in = consumer.in_features if isinstance(consumer, nn.Linear) else consumer.in_channels
    if fan_in % producer_out:
        raise ValueError(f"Cannot match layer {name!r}'s {fan_in} inputs to the previous layer's "
                         f"{producer_out} outputs.")
    return fan_in // producer_out


def _columns(w: torch.Tensor, group: int) -> torch.Tensor:
    """Weight reshaped to (out, producer outputs, everything a producer output feeds)."""
    if w.dim() == 2:  # Linear: producer output j feeds columns j*group .. (j+1)*group - 1
        return w.reshape(w.shape[0], -1, group)
    return w.reshape(w.shape[0], w.shape[1], -1)  # Conv: input channel j, all kernel positions


def _unit_flags(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (producing, read)}: bool vectors over the layer's outputs -- the unit keeps a weight or its
    bias, and the next layer reads it through some unmasked weight. The output layer's are all True."""
    layers = weighted_layers(model)
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for i, (name, m) in enumerate(layers):
        n_out = m.weight.shape[0]
        if i == len(layers) - 1:
            every = torch.ones(n_out, dtype=torch.bool)
            out[name] = (every, every)
            break
        wm = mask.get(f"{name}.weight", torch.ones_like(m.weight)).to("cpu")
        bm = mask.get(f"{name}.bias")
        producing = wm.reshape(n_out, -1).any(dim=1)
        if m.bias is not None:
            producing |= bm.to("cpu").bool() if bm is not None else torch.ones(n_out, dtype=torch.bool)
        nxt_name, nxt = layers[i + 1]
        nm = mask.get(f"{nxt_name}.weight", torch.ones_like(nxt.weight)).to("cpu")
        read = _columns(nm, _group(nxt, n_out, nxt_name)).transpose(0, 1).reshape(n_out, -1).any(dim=1)
        out[name] = (producing, read)
    return out


def kept_units(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{layer: bool vector of the outputs that survive surgery}. The output layer keeps all."""
    return {name: producing & read for name, (producing, read) in _unit_flags(model, mask).items()}


def _cut_message(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> str | None:
    """Why surgery would cut the network in two, naming the layer at fault; None when it would not.

    A layer that lost every neuron (weights and bias) is the one to name -- not the layer before it, which
    then keeps nothing either because no one reads it. Failing that, a layer whose weights read none of
    the previous layer's outputs (it only outputs its bias) cuts the network."""
    flags = _unit_flags(model, mask)
    names = list(flags)
    dead = [n for n, (producing, _) in flags.items() if not bool(producing.any())]
    if dead:
        which = ", ".join(repr(n) for n in dead)
        return (f"Layer{'s' if len(dead) > 1 else ''} {which} would keep no neuron: the network is cut in two. "
                "Lower the sparsity.")
    for i, (name, (producing, read)) in enumerate(flags.items()):
        if not bool((producing & read).any()):
            return (f"Layer {names[i + 1]!r} reads none of the neurons that {name!r} keeps: the network is cut "
                    "in two. Lower the sparsity.")
    return None


@torch.no_grad()
def shrink(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Sequential:
    """A smaller dense copy of ``model`` without the neurons/channels that ``mask`` removes.

    Args:
        model: an ``nn.Sequential`` of Linear/Conv layers and parameter-free layers (never modified).
        mask: a ``Mask`` (or dict of 0/1 tensors); typically from ``prune(..., granularity="neuron")``.

    Returns:
        a new ``nn.Sequential`` with the same child names, whose output equals
        ``apply_mask(model, mask)``'s for every input. A GPT goes to ``gpt_structured.shrink_gpt`` (fewer heads and
        MLP neurons per block).

    Raises:
        ValueError: the model is not a Sequential, or a hidden layer would keep no neuron at all
            (the network would be cut in two); the message names the layer that lost every neuron, or the
            layer that reads none of its predecessor's.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError("Surgery works on nn.Sequential models only.")
    if is_language_model(model):  # a GPT's units are heads and MLP neurons inside its blocks
        from .gpt_structured import shrink_gpt
        return shrink_gpt(model, mask)
    cut = _cut_message(model, mask)
    if cut:
        raise ValueError(cut)
    keep = kept_units(model, mask)
    children = OrderedDict()
    prev_keep: torch.Tensor | None = None  # kept outputs of the previous weighted layer
    prev_out = 0
    for name, module in model.named_children():
        if not isinstance(module, WEIGHTED):
            children[name] = copy.deepcopy(module)
            continue
        w = module.weight.detach() * mask.get(f"{name}.weight", torch.ones_like(module.weight)).to(module.weight)
        b = module.bias.detach() if module.bias is not None else None
        if b is not None and f"{name}.bias" in mask:
            b = b * mask[f"{name}.bias"].to(b)
        rows = keep[name].to(w.device)
        w = w[rows]
        b = b[rows] if b is not None else None
        if prev_keep is not None:  # drop the inputs fed by removed neurons of the previous layer
            g = _group(module, prev_out, name)
            cols = prev_keep.to(w.device)
            cols = cols.repeat_interleave(g) if isinstance(module, nn.Linear) else cols
            w = w[:, cols]
        children[name] = _resized(module, w, b)
        prev_keep, prev_out = keep[name], module.weight.shape[0]
    return nn.Sequential(children)


def _resized(module: nn.Module, w: torch.Tensor, b: torch.Tensor | None) -> nn.Module:
    """A layer of ``module``'s type and hyperparameters holding ``w`` and ``b``."""
    kw = dict(device=w.device, dtype=w.dtype, bias=b is not None)
    if isinstance(module, nn.Linear):
        new = nn.Linear(w.shape[1], w.shape[0], **kw)
    else:
        if module.groups != 1:
            raise ValueError("Surgery does not handle grouped convolutions.")
        new = type(module)(w.shape[1], w.shape[0], module.kernel_size, stride=module.stride,
                           padding=module.padding, dilation=module.dilation, padding_mode=module.padding_mode, **kw)
    new.weight.copy_(w)
    if b is not None:
        new.bias.copy_(b)
    return new


def structure_summary(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> list[dict]:
    """Per layer: neurons/channels before and after surgery."""
    keep = kept_units(model, mask)
    return [dict(layer=n, units=int(m.weight.shape[0]), kept_units=int(keep[n].sum()))
            for n, m in weighted_layers(model)]
