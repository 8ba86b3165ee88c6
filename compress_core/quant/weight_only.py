"""Weight-only quantization of a whole model with RTN, GPTQ or AWQ, their layer-wise errors, and honest sizes.

The model-level side of ``groupwise`` (RTN), ``gptq`` (Frantar et al. 2023) and ``awq`` (Lin et al. 2024): each
chosen Linear/Conv layer of a *copy* of the model gets its weight quantized (2–8 bits, per tensor, per channel or
in groups of g input columns); the calibration rows come from ``layer_inputs.capture_inputs``, captured once from
the float model and shared by every method. ``sequential=True`` instead captures each layer's inputs from the
copy as quantized so far, as GPTQ's reference code runs block after block (one forward pass per layer).

``layer_errors`` scores each method on each layer by the layer-wise objective ‖XWᵀ − XŴᵀ‖²/N on the same float
inputs — GPTQ's is below RTN's on every layer, the paper's premise. ``weight_storage`` counts what the quantized
model costs: codes, per-group scales and zero points, AWQ's per-channel input scales where a layer keeps them, and
every other parameter (biases, LayerNorms, embeddings) at 32 bits.

Usage::

    q = quantize_weights(model, bits=4, group_size=128, method="gptq", calibration=x_calib, act_order=True)
    q = quantize_weights(model, 4, 128, method="awq", calibration=inputs, fold={"ln1": ["q", "k", "v"]})
    layer_errors(model, inputs, bits=3, group_size="channel")   # [{"layer", "rtn", "gptq", "awq"}, …]
    weight_storage(q, bits=4, group_size=128)["bits_per_weight"]
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..layer_inputs import capture_inputs, input_stats, layers_of, set_weight_matrix, weight_matrix
from .awq import awq, awq_model, channel_stat
from .gptq import gptq
from .groupwise import check_weight_bits, layer_objective, rtn, storage_bits
from .scaling import column_scale

__all__ = ["WEIGHT_METHODS", "layer_errors", "quantize_weights", "weight_storage"]

WEIGHT_METHODS = ("rtn", "gptq", "awq")


def _inputs(model: nn.Module, calibration, layers) -> dict[str, torch.Tensor]:
    if calibration is None:
        raise ValueError("GPTQ and AWQ need calibration data: model inputs, or the rows capture_inputs returned.")
    if isinstance(calibration, dict):
        return calibration
    return capture_inputs(model, calibration, layers)


@torch.no_grad()
def quantize_weights(model: nn.Module, bits: int = 4, group_size: int | str = 128, layers=None, method: str = "rtn",
                     *, symmetric: bool = False, calibration=None, sequential: bool = False, **options) -> nn.Module:
    """A copy of ``model`` (eval mode) whose chosen layers hold quantized weights; the original is untouched.

    Args:
        bits: 2–8. group_size: ``"tensor"``, ``"channel"`` or g input columns per group.
        layers: names of the Linear/Conv layers to quantize (default: all).
        method: ``"rtn"``, ``"gptq"`` or ``"awq"``. symmetric: zero point 0.
        calibration: for GPTQ and AWQ, model inputs or ``capture_inputs``'s {layer: rows}.
        sequential: GPTQ only: each layer calibrated on the outputs of the layers quantized before it
            (needs model inputs as ``calibration``).
        options: GPTQ's ``percdamp``, ``block_size``, ``act_order``, ``static_groups``; AWQ's ``fold``, ``n_grid``,
            ``alpha``, ``clip`` (see ``gptq.gptq`` and ``awq.awq_model``).
    """
    check_weight_bits(bits)
    if method not in WEIGHT_METHODS:
        raise ValueError(f"Method must be one of {', '.join(WEIGHT_METHODS)}; got {method!r}.")
    if sequential and (method != "gptq" or isinstance(calibration, dict) or calibration is None):
        raise ValueError("Sequential calibration is for GPTQ, with model inputs as the calibration data.")
    if method == "rtn" and options:
        raise TypeError(f"RTN takes no options; got {', '.join(options)}.")
    if method == "awq":
        return awq_model(model, _inputs(model, calibration, layers), bits, group_size, layers, symmetric=symmetric,
                         **options)
    new = copy.deepcopy(model).eval()
    chosen = layers_of(new, layers)
    inputs = _inputs(model, calibration, layers) if method == "gptq" and not sequential else None
    for name, m in chosen:
        w = weight_matrix(m)
        if method == "rtn":
            w_hat = rtn(w, bits, group_size, symmetric)
        else:
            rows = inputs[name] if inputs is not None else capture_inputs(new, calibration, [name])[name]
            w_hat = gptq(w, input_stats(rows).gram, bits, group_size, symmetric=symmetric, **options)
        set_weight_matrix(m, w_hat)
    return new


@torch.no_grad()
def layer_errors(model: nn.Module, inputs: dict[str, torch.Tensor], bits: int = 4, group_size: int | str = 128,
                 layers=None, methods=WEIGHT_METHODS, *, symmetric: bool = False, gptq_options: dict | None = None,
                 awq_options: dict | None = None) -> list[dict]:
    """Each layer's objective ‖XWᵀ − XŴᵀ‖²/N (``groupwise.layer_objective``) under each method, on the float rows.

    Returns [{"layer": name, "rows": N, "rtn": …, "gptq": …, "awq": …}] in forward order (AWQ's Ŵ is its
    effective weight Q(W·diag(s))·diag(s)⁻¹, so all three are measured in the same input space)."""
    out = []
    for name, m in layers_of(model, layers):
        w = weight_matrix(m).detach().float()
        stats = input_stats(inputs[name])
        row = {"layer": name, "rows": stats.rows}
        for method in methods:
            if method == "rtn":
                w_hat = rtn(w, bits, group_size, symmetric)
            elif method == "gptq":
                w_hat = gptq(w, stats.gram, bits, group_size, symmetric=symmetric, **(gptq_options or {}))
            elif method == "awq":
                mean_cols = column_scale(m, channel_stat(m, stats.absmean))
                w_hat = awq(w, stats.gram, mean_cols, bits, group_size, symmetric=symmetric,
                            **(awq_options or {})).effective_weight
            else:
                raise ValueError(f"Method must be one of {', '.join(WEIGHT_METHODS)}; got {method!r}.")
            row[method] = layer_objective(w, w_hat, stats.gram)
        out.append(row)
    return out


def weight_storage(model: nn.Module, bits: int, group_size: int | str = 128, layers=None, *,
                   symmetric: bool = False, scale_bits: int = 16) -> dict:
    """What a model whose ``layers`` (default: all Linear/Conv) hold ``bits``-bit weights costs to store.

    Quantized weights: ``groupwise.storage_bits`` (codes, per-group scales of ``scale_bits`` and zero points); an
    AWQ/SmoothQuant layer that divides its input itself adds one ``scale_bits`` value per input channel; every
    other parameter costs 32 bits. Returns {"bits", "float_bits", "ratio", "bits_per_weight" (over the quantized
    weights, scales included), "layers": [{"layer", "weights", "bits"}]}.
    """
    chosen = {n for n, _ in layers_of(model, layers)}
    float_bits = sum(p.numel() for p in model.parameters()) * 32
    total, rows, q_weights, q_bits = float_bits, [], 0, 0
    for name, m in layers_of(model):
        if name not in chosen:
            continue
        out, cols = weight_matrix(m).shape
        bits_here = storage_bits(out, cols, bits, group_size, symmetric, scale_bits)
        s = getattr(m, "input_scale", None)
        if s is not None:
            bits_here += s.numel() * scale_bits
        total += bits_here - out * cols * 32
        q_weights, q_bits = q_weights + out * cols, q_bits + bits_here
        rows.append({"layer": name, "weights": out * cols, "bits": bits_here})
    return {"bits": total, "float_bits": float_bits, "ratio": float_bits / total,
            "bits_per_weight": q_bits / q_weights if q_weights else float("nan"), "layers": rows}
