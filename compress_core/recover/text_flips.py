"""The language model's counterpart of flipped examples: the held-out characters whose top prediction changed.

``DropDebugger.flips`` is for classifiers (a GPT makes a prediction at every character). Here both models read
the same held-out windows and every next character is compared: the float model's most likely character against
the variant's, and both against the true one.

Usage::

    ch = changed_characters(b.model, pruned, ds.x_test[:8], ds.y_test[:8])
    ch["changed"], ch["broke"], ch["fixed"], ch["n"]
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["changed_characters"]


@torch.no_grad()
def changed_characters(float_model: nn.Module, variant: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Per next character of the windows ``x`` (targets ``y``), in reading order (windows flattened one after the
    other): ``target``, ``float_pred``, ``variant_pred`` (lists of token ids); ``changed`` (characters whose top
    prediction differs), ``broke`` (right before, wrong after), ``fixed`` (wrong before, right after), ``n``.

    Both models are run in eval mode; one in training mode is copied first (neither is changed)."""
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError("Give token windows (windows × characters) with one next character per position.")
    preds = []
    for model in (float_model, variant):
        model = copy.deepcopy(model).eval() if model.training else model
        preds.append(model(x).argmax(1).flatten())  # logits: windows × vocabulary × positions
    pf, pv, t = preds[0], preds[1], y.flatten()
    return {"target": t.tolist(), "float_pred": pf.tolist(), "variant_pred": pv.tolist(),
            "changed": int((pf != pv).sum()), "broke": int(((pf == t) & (pv != t)).sum()),
            "fixed": int(((pf != t) & (pv == t)).sum()), "n": int(t.numel())}
