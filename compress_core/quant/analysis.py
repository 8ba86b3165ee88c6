"""What quantization did: per-layer error report, honest size accounting, sensitivity scans, sweeps.

- ``layer_report``: per quantized tensor (each layer's weight, the model input, each layer's output
  activation): bits, S, Z, representable range, clipping fraction, MSE and SQNR = 10·log10(Σx² / Σ(x − x̂)²)
  in dB (Krishnamoorthi 2018 reports the same signal-to-quantization-noise view).
- ``model_size``: bits per weight × count, plus every stored scale (float32) and zero point (int32, only
  where not fixed at 0 by a symmetric scheme), plus int32 biases; float32 for anything left float.
- ``bits_sensitivity`` / ``suggest_bits``: quantize one layer's weights at a time to find which layers
  tolerate fewer bits (the per-layer sensitivity analysis of mixed-precision work, e.g. HAWQ, Dong et al.
  2019, here measured directly on validation accuracy, or a language model's bits per character).

Every function covers nested layers (a transformer's ``block1.attn.q``), through ``named_modules``.
- ``bits_sweep``: accuracy and size against bit width for PTQ (per tensor / per channel) or QAT.

Usage::

    rows = layer_report(qmodel, ds.x_train[:256])
    model_size(qmodel)["kb"], model_size(b.model)["kb"]
    scan = bits_sensitivity(b.model, ds, QuantConfig(target="weights"), bits=(2, 3, 4, 8))
"""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from typing import Callable, Sequence

import torch
from torch import nn

from ..data import Dataset
from ..models import WEIGHTED
from ..text import bits_per_char, lm_metrics, window_losses
from ..train import TrainConfig, evaluate
from .model import (
    QuantConfig,
    QuantLayer,
    collect_activations,
    collect_layer_inputs,
    is_nested,
    quant_layers,
    quantize_model,
)
from .primitives import QParams, clip_mask, fake_quantize
from .qat import quantization_aware_training


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB; ``inf`` when the error is exactly zero."""
    noise = float((x - x_hat).double().pow(2).sum())
    signal = float(x.double().pow(2).sum())
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def _row(layer: str, tensor: str, x: torch.Tensor, qp: QParams) -> dict:
    x = x.detach().float()
    x_hat = fake_quantize(x, qp)
    s, z = qp.scale.float(), qp.zero_point.float()
    return {
        "layer": layer, "tensor": tensor, "bits": qp.bits,
        "granularity": "per channel" if qp.per_channel else "per tensor",
        "scheme": "symmetric" if qp.symmetric else "asymmetric",
        "scale": float(s.mean()), "scale_min": float(s.min()), "scale_max": float(s.max()),
        "zero_point": int(round(float(z.mean()))) if z.numel() == 1 else float(z.mean()),
        "range_min": float(qp.range_min.min()), "range_max": float(qp.range_max.max()),
        "data_min": float(x.min()), "data_max": float(x.max()),
        "clip_fraction": float(clip_mask(x, qp).float().mean()),
        "mse": float((x - x_hat).double().pow(2).mean()), "sqnr_db": sqnr_db(x, x_hat), "count": x.numel(),
    }


@torch.no_grad()
def layer_report(qmodel: nn.Module, calibration_data: torch.Tensor | None = None) -> list[dict]:
    """One row per quantized tensor of ``qmodel`` (from ``quantize_model``).

    Activation rows use the float activations on ``calibration_data`` (skipped when it is None): the model input
    and each layer's output for a plain stack, each layer's input for a nested model (the GPT).
    Keys: layer, tensor ("weight" | "input" | "output"), bits, granularity, scheme, scale (mean over channels),
    scale_min, scale_max, zero_point, range_min, range_max, data_min, data_max, clip_fraction, mse, sqnr_db, count.
    """
    layers = quant_layers(qmodel)
    acts = None
    nested = is_nested(qmodel)
    if calibration_data is not None and any(ql.output_qparams is not None or (nested and ql.input_qparams is not None)
                                            for _, ql in layers):
        dev = layers[0][1].weight.device
        collect = collect_layer_inputs if nested else collect_activations  # a nested model's rows: each layer's input
        acts = {k: torch.cat(v) for k, v in collect(qmodel, calibration_data.to(dev)).items()}
    rows = []
    for name, ql in layers:
        if acts is not None and ql.quantize_input and ql.input_qparams is not None:
            rows.append(_row(name, "input", acts[name if nested else "input"], ql.input_qparams))
        if ql.weight_qparams is not None:
            rows.append(_row(name, "weight", ql.weight, ql.weight_qparams))
        if acts is not None and ql.output_qparams is not None:
            rows.append(_row(name, "output", acts[name], ql.output_qparams))
    return rows


def qparams_bits(qp: QParams | None) -> int:
    """Bits to store one quantizer's parameters: float32 scales, plus int32 zero points unless symmetric."""
    if qp is None:
        return 0
    return qp.scale.numel() * (32 + (0 if qp.symmetric else 32))


def model_size(model: nn.Module) -> dict:
    """Stored size of a float or fake-quantized model, in bits and KB (1 KB = 1,024 bytes).

    Quantized weights cost ``bits`` each; biases are int32 when the layer's activations are quantized
    too (integer inference), float32 otherwise; each scale costs 32 bits and each non-zero-fixed zero point 32.
    Every module that owns a weight counts (embeddings and LayerNorms in float32, with their biases).
    Returns {"bits", "kb", "float_kb", "ratio", "layers": [{"layer", "weights", "weight_bits", "bits", "kb"}]}.
    """
    rows, total, float_total = [], 0, 0
    for name, m in model.named_modules():  # nested layers too; a tied head owns no weight and is counted once
        w = getattr(m, "weight", None)
        if not isinstance(w, torch.Tensor):
            continue
        b = getattr(m, "bias", None)
        nb = b.numel() if isinstance(b, torch.Tensor) else 0
        float_bits = (w.numel() + nb) * 32
        if isinstance(m, QuantLayer):
            wb = m.weight_qparams.bits if m.weight_qparams is not None else 32
            bits = w.numel() * wb + nb * 32 + qparams_bits(m.weight_qparams) + qparams_bits(m.output_qparams)
            if m.quantize_input:
                bits += qparams_bits(m.input_qparams)
        else:
            wb, bits = 32, float_bits
        rows.append({"layer": name, "weights": w.numel(), "weight_bits": wb, "bits": bits, "kb": bits / 8192})
        total += bits
        float_total += float_bits
    return {"bits": total, "kb": total / 8192, "float_kb": float_total / 8192,
            "ratio": float_total / total if total else 1.0, "layers": rows}


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return evaluate(model, x, y).accuracy


def is_text(dataset: Dataset) -> bool:
    """A language model's data set: its score is bits per character (``text.lm_metrics``), not accuracy."""
    return getattr(dataset, "kind", "") == "text"


def _bpc(model: nn.Module, dataset: Dataset, split: str) -> float:
    losses, _ = window_losses(model, dataset, split)
    return bits_per_char(float(losses.mean()))


def bits_sensitivity(model: nn.Module, dataset: Dataset, config: QuantConfig = QuantConfig(target="weights"),
                     bits: Sequence[int] = (2, 3, 4, 6, 8), calibration_data: torch.Tensor | None = None,
                     split: str = "val", callback: Callable[[float], None] | None = None) -> list[dict]:
    """Accuracy (a language model: bits per character) when only one layer's weights are quantized, for each
    Linear/Conv layer (nested ones included) and bit width.

    Args:
        model: the float model. config: scheme and calibration (its bit widths are overridden).
        bits: bit widths to try. split: "val" (default; keeps the test set for the final number) or "test".
        callback: called with the fraction done.

    Returns rows {"layer", "bits", "accuracy", "change_pts", "lost", "n"}: ``change_pts`` is the change in
    accuracy in percentage points vs float (negative = worse, as every delta in the app), ``lost`` the number of
    the ``n`` examples the float model got right beyond those the quantized one gets right (negative when
    quantizing helped): an integer, so budgets compare exactly.

    On a language model's data set (``is_text``) the rows are {"layer", "bits", "bpc", "change_bpc", "n"}: bits per
    character on the split's ``n`` windows and its change vs float (positive = worse).
    """
    x, y = (dataset.x_val, dataset.y_val) if split == "val" else (dataset.x_test, dataset.y_test)
    text = is_text(dataset)
    base = _bpc(model, dataset, split) if text else _accuracy(model, x, y)
    n = len(y)
    base_right = round(base * n)
    calib = calibration_data if calibration_data is not None else dataset.x_train[:256]
    names = [n for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
    rows, done = [], 0
    for name in names:
        for b in bits:
            q = _only_layer(model, config, name, b, calib)
            if text:
                bpc = _bpc(q, dataset, split)
                rows.append({"layer": name, "bits": int(b), "bpc": bpc, "change_bpc": bpc - base, "n": n})
            else:
                acc = _accuracy(q, x, y)
                rows.append({"layer": name, "bits": int(b), "accuracy": acc, "change_pts": 100 * (acc - base),
                             "lost": base_right - round(acc * n), "n": n})
            done += 1
            if callback:
                callback(done / (len(names) * len(bits)))
    return rows


def _only_layer(model: nn.Module, config: QuantConfig, layer: str, bits: int, calib: torch.Tensor) -> nn.Module:
    """``model`` with only ``layer``'s weights quantized at ``bits`` (others float)."""
    q = quantize_model(model, replace(config, target="weights", weight_bits=bits, layer_bits=()), calib)
    for name, ql in quant_layers(q):
        if name != layer:
            ql.weight_qparams = None
    return q


def suggest_bits(scan: list[dict], tolerance_pts: float = 1.0) -> tuple[tuple[str, int], ...]:
    """Per layer, the fewest bits whose single-layer loss stays within ``tolerance_pts`` / number of layers
    (losses roughly add up when all layers are quantized together). Layers that never qualify get the most bits.

    Compared exactly, in examples: a layer qualifies when lost·100·L ≤ tolerance·n (the tolerance as the decimal
    it was typed, ``Fraction(str(tolerance_pts))``), so a loss of exactly the budget is within it — never 0.2 vs
    0.20000000000000018.

    A language model's scan (rows with "change_bpc") reads ``tolerance_pts`` as bits per character: a layer
    qualifies when change_bpc·L ≤ tolerance.
    """
    layers = list(dict.fromkeys(r["layer"] for r in scan))
    tol = Fraction(str(tolerance_pts))
    out = []

    def within(r: dict) -> bool:
        if "change_bpc" in r:
            return Fraction(r["change_bpc"]) * len(layers) <= tol
        return r["lost"] * 100 * len(layers) <= tol * r["n"]

    for name in layers:
        rows = sorted((r for r in scan if r["layer"] == name), key=lambda r: r["bits"])
        ok = [r["bits"] for r in rows if within(r)]
        out.append((name, ok[0] if ok else rows[-1]["bits"]))
    return tuple(out)


def bits_sweep(model: nn.Module, dataset: Dataset, config: QuantConfig, bits: Sequence[int],
               calibration_data: torch.Tensor | None = None, *, qat: TrainConfig | None = None, lsq: bool = True,
               act_bits: int | None = None, seed: int = 0,
               callback: Callable[[float], None] | None = None) -> list[dict]:
    """Test accuracy and size for each bit width (PTQ, or QAT when ``qat`` gives a fine-tuning schedule).

    The bit width applies to what ``config.target`` quantizes: weights, activations, or both (activations
    then at ``act_bits`` if given, else the same width). Rows: {"bits", "accuracy", "kb"}, plus "bpc" and
    "bpc_se" (bits per character on the test windows, ``text.lm_metrics``) on a language model's data set. A width
    these settings cannot use (1 bit with a narrow range: a single level) has no row.
    """

    calib = calibration_data if calibration_data is not None else dataset.x_train[:256]
    rows = []
    for i, b in enumerate(bits):
        try:
            cfg = replace(config, weight_bits=int(b), act_bits=int(act_bits or b), layer_bits=())
        except ValueError:
            continue
        if qat is None:
            q = quantize_model(model, cfg, calib)
        else:
            q, _ = quantization_aware_training(model, cfg, dataset, qat, calibration_data=calib, lsq=lsq, seed=seed)
        if is_text(dataset):
            m = lm_metrics(q, dataset, "test")
            rows.append({"bits": int(b), "accuracy": m.accuracy, "bpc": m.bpc, "bpc_se": m.bpc_se,
                         "kb": model_size(q)["kb"]})
        else:
            rows.append({"bits": int(b), "accuracy": _accuracy(q, dataset.x_test, dataset.y_test),
                         "kb": model_size(q)["kb"]})
        if callback:
            callback((i + 1) / len(bits))
    return rows
