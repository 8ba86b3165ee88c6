"""Compressed variants of a language model, named by short keys, and what each costs in bits per character.

The modern methods compared on one footing: each key names a method and its setting, ``build`` makes that
variant as a *copy* of the float model from calibration rows captured once (``layer_inputs.capture_inputs`` on a
few training windows), and ``score`` measures it on the held-out windows. Every Linear layer inside the
transformer blocks is compressed (q, k, v, proj, fc, fc2); the token embedding, which is also the tied output
head, stays float, as GPTQ, AWQ, SmoothQuant, Wanda and SparseGPT all leave embeddings and the head.

Keys (the bench's names):

- ``float``: the trained model.
- ``rtn_w4_g128``, ``gptq_w3_g64``, ``awq_w4_gch``: weight-only, 2–8 bits, groups of 32/64/128 input columns or
  ``ch`` (one scale per output channel); round-to-nearest, GPTQ (Frantar et al. 2023), AWQ (Lin et al. 2024).
- ``w8a8_per_tensor``, ``w8a8_per_token``: 8-bit per-channel weights and 8-bit activations, one static scale per
  tensor or a dynamic scale per token; ``w8a8_smoothquant`` (α = 0.5) or ``w8a8_smoothquant_a0.8``: SmoothQuant
  (Xiao et al. 2023) before per-tensor W8A8.
- ``magnitude_50``, ``wanda_50``, ``sparsegpt_50`` (any percentage), ``magnitude_2_4``, ``wanda_2_4``,
  ``sparsegpt_2_4``: pruning without retraining; magnitude per layer (the papers' baseline), Wanda (Sun et al.
  2024) per output row, SparseGPT (Frantar & Alistarh 2023) with its weight reconstruction.
- ``kv8``, ``kv4``, ``kv2``: the attention's keys and values fake-quantized, keys per channel and values per
  token (KIVI, Liu et al. 2024); ``kv4_token``: both per token.

Usage::

    calib = calibrate(model, ds)                       # rows of every layer, from 128 training windows
    q = build(model, "gptq_w3_g128", calib)            # a copy; model is untouched
    s = score(q, ds)                                    # Score: bpc ± s.e. over the test windows
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..layer_inputs import capture_inputs, layers_of, weight_matrix
from ..pruning.layerwise import MagnitudeScore, calibrated_mask
from ..pruning.masks import apply_mask
from ..pruning.sparsegpt import sparsegpt_prune
from ..pruning.wanda import wanda_prune
from ..quant.kv_cache import kv_quantizer
from ..quant.smoothquant import smoothquant
from ..quant.weight_only import quantize_weights
from ..text import window_losses
from ..train import Metrics

__all__ = ["CALIB_WINDOWS", "Calibration", "Score", "Variant", "build", "calibrate", "fold_groups", "label",
           "paired_score", "parse", "score", "score_with_metrics", "window_bpc"]

CALIB_WINDOWS = 128  # training windows whose activations every method calibrates on (8,192 rows at 64 characters)
WEIGHT_METHODS = ("rtn", "gptq", "awq")
PRUNE_METHODS = ("magnitude", "wanda", "sparsegpt")
GROUPS = {"32": 32, "64": 64, "128": 128, "ch": "channel"}


@dataclass(frozen=True)
class Variant:
    """A parsed key: the method and its setting (only the fields the method uses are set)."""

    key: str
    family: str  # "float", "weight", "w8a8", "prune" or "kv"
    method: str = ""
    bits: int = 0
    group: int | str = 0
    sparsity: float | None = None
    nm: tuple[int, int] | None = None
    alpha: float = 0.5
    act: str = "tensor"
    kv_axes: tuple[str, str] = ("channel", "token")


_WEIGHT = re.compile(r"(rtn|gptq|awq)_w([2-8])_g(32|64|128|ch)")
_W8A8 = re.compile(r"w8a8_(per_tensor|per_token|smoothquant)(?:_a(0(?:\.\d+)?|1(?:\.0+)?))?")
_PRUNE = re.compile(r"(magnitude|wanda|sparsegpt)_(?:(\d{1,2})|(\d)_(\d))")
_KV = re.compile(r"kv([248])(_token)?")


def parse(key: str) -> Variant:
    """The ``Variant`` a key names; ValueError in plain words for anything else."""
    if key == "float":
        return Variant(key, "float")
    if m := _WEIGHT.fullmatch(key):
        return Variant(key, "weight", m[1], bits=int(m[2]), group=GROUPS[m[3]])
    if m := _W8A8.fullmatch(key):
        if m[2] is not None and m[1] != "smoothquant":
            raise ValueError(f"Only SmoothQuant takes an α ({key!r}).")
        return Variant(key, "w8a8", m[1], bits=8, alpha=float(m[2] or 0.5),
                       act="token" if m[1] == "per_token" else "tensor")
    if m := _PRUNE.fullmatch(key):
        if m[2] is not None:
            if not 0 < int(m[2]) < 100:
                raise ValueError(f"A sparsity between 1 and 99 % is needed ({key!r}).")
            return Variant(key, "prune", m[1], sparsity=int(m[2]) / 100)
        n, mm = int(m[3]), int(m[4])
        if not 0 < n < mm:
            raise ValueError(f"An N:M pattern needs 0 < N < M ({key!r}).")
        return Variant(key, "prune", m[1], nm=(n, mm))
    if m := _KV.fullmatch(key):
        return Variant(key, "kv", "kv", bits=int(m[1]), kv_axes=("token", "token") if m[2] else ("channel", "token"))
    raise ValueError(f"Unknown variant {key!r}: use float, rtn_w4_g128 (rtn/gptq/awq, 2–8 bits, groups 32/64/128/ch), "
                     "w8a8_per_tensor, w8a8_per_token, w8a8_smoothquant[_a0.5], magnitude_50 / wanda_2_4 / "
                     "sparsegpt_50, or kv8 / kv4 / kv2[_token].")


def label(key: str) -> str:
    """A variant's name as the page and the bench print it, e.g. "GPTQ W3 g128"."""
    v = parse(key)
    if v.family == "float":
        return "float32"
    if v.family == "weight":
        group = "per channel" if v.group == "channel" else f"g{v.group}"
        return f"{v.method.upper() if v.method != 'rtn' else 'RTN'} W{v.bits} {group}"
    if v.family == "w8a8":
        return {"per_tensor": "W8A8 per tensor", "per_token": "W8A8 per token"}.get(
            v.method, f"SmoothQuant α={v.alpha:g} + W8A8")
    if v.family == "prune":
        name = {"magnitude": "Magnitude", "wanda": "Wanda", "sparsegpt": "SparseGPT"}[v.method]
        return f"{name} {v.nm[0]}:{v.nm[1]}" if v.nm else f"{name} {v.sparsity:.0%}"
    return f"KV cache {v.bits}-bit" + (" (per token)" if v.kv_axes[0] == "token" else "")


@dataclass(frozen=True, eq=False)
class Calibration:
    """The float model's layer inputs on ``windows`` training windows (read-only; shared by every variant)."""

    rows: dict[str, torch.Tensor]
    x: torch.Tensor
    windows: int


def calibrate(model: nn.Module, dataset, windows: int = CALIB_WINDOWS, seed: int = 0) -> Calibration:
    """Capture every Linear layer's input rows on ``windows`` training windows chosen by ``seed``."""
    n = len(dataset.x_train)
    if n == 0:
        raise ValueError("The data set has no training windows to calibrate on.")
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:min(windows, n)].sort().values
    x = dataset.x_train[idx]
    # on a copy: the hooks that capture the rows would also see another thread's forward pass through a shared model
    return Calibration(rows=capture_inputs(copy.deepcopy(model), x), x=x, windows=len(idx))


def fold_groups(model: nn.Module) -> dict[str, list[str]]:
    """{LayerNorm: the Linear layers reading it} for every pre-LN block (ln1 → q, k, v; ln2 → fc): where AWQ's and
    SmoothQuant's per-channel scales fold exactly into the LayerNorm, as both papers do."""
    groups = {}
    for name, m in model.named_modules():
        if all(hasattr(m, a) for a in ("ln1", "attn", "ln2", "mlp")):
            groups[f"{name}.ln1"] = [f"{name}.attn.{p}" for p in ("q", "k", "v")]
            groups[f"{name}.ln2"] = [f"{name}.mlp.fc"]
    return groups


def build(model: nn.Module, key: str, calib: Calibration | None = None) -> nn.Module:
    """The variant ``key`` of ``model`` as a new model in eval mode (``model`` is never changed).

    ``calib`` (from ``calibrate``) is needed by every method but float, RTN, magnitude and KV-cache quantization.
    """
    v = parse(key)
    if v.family in ("float", "kv"):
        new = copy.deepcopy(model).eval()
        if v.family == "kv":
            hooked = [m for m in new.modules() if hasattr(m, "kv_hook")]
            if not hooked:
                raise ValueError("This model has no attention layer: KV-cache quantization needs the GPT.")
            for m in hooked:
                m.kv_hook = kv_quantizer(v.bits, *v.kv_axes)
        return new
    needs_calib = v.method not in ("rtn", "magnitude")
    if needs_calib and calib is None:
        raise ValueError(f"{label(key)} calibrates on the model's activations: pass calibrate(model, dataset).")
    rows = calib.rows if calib is not None else None
    fold = fold_groups(model)
    if v.family == "weight":
        options = {"fold": fold} if v.method == "awq" and fold else {}
        return quantize_weights(model, v.bits, v.group, method=v.method, calibration=rows, **options).eval()
    if v.family == "w8a8":
        return smoothquant(model, rows, alpha=v.alpha, smooth=v.method == "smoothquant", act_scheme=v.act,
                           fold=fold or None).eval()
    target = {"sparsity": v.sparsity} if v.nm is None else {"nm": v.nm}
    if v.method == "sparsegpt":
        return sparsegpt_prune(model, rows, **target)[0].eval()
    if v.method == "wanda":
        mask = wanda_prune(model, rows, **target)
    else:  # magnitude: the data-free baseline, compared within each layer
        no_rows = {n: torch.zeros(0, weight_matrix(m).shape[1]) for n, m in layers_of(model)}  # |W| reads none
        mask = calibrated_mask(model, no_rows, MagnitudeScore(), per="layer", **target)
    return apply_mask(model, mask).eval()


def window_bpc(model: nn.Module, dataset, split: str = "test", batch_size: int = 128) -> np.ndarray:
    """Bits per character of each evaluation window of ``split`` (the mean over its characters), float64."""
    return window_losses(model, dataset, split, batch_size)[0].numpy() / math.log(2)


@dataclass(frozen=True)
class Score:
    """A variant's bits per character on the held-out windows, its standard error, and its difference from a
    reference measured on the same windows (paired: the windows' own difficulty cancels)."""

    key: str
    bpc: float
    se: float
    diff: float = 0.0  # bpc − the reference's bpc
    diff_se: float = 0.0  # standard error of the paired difference
    windows: int = 0

    @property
    def outcome(self) -> str:
        """"worse" / "better" than the reference beyond two standard errors of the paired difference, else
        "no difference" (the project's honest-comparison rule, ``stats.NOISE_SE``)."""
        from ..stats import NOISE_SE

        if self.diff_se == 0.0 or abs(self.diff) <= NOISE_SE * self.diff_se:
            return "no difference"
        return "worse" if self.diff > 0 else "better"


def score(model: nn.Module, dataset, reference: np.ndarray | None = None, key: str = "",
          split: str = "test") -> tuple[Score, np.ndarray]:
    """(``Score``, the per-window bpc) of ``model`` on ``split``, paired with ``reference`` windows if given."""
    w = window_bpc(model, dataset, split)
    return paired_score(w, reference, key), w


def paired_score(w: np.ndarray, reference: np.ndarray | None = None, key: str = "") -> Score:
    """The ``Score`` of per-window bits per character ``w``, paired with ``reference`` windows if given."""
    n = len(w)
    se = float(w.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    if reference is None:
        return Score(key, float(w.mean()), se, windows=n)
    d = w - reference
    d_se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Score(key, float(w.mean()), se, float(d.mean()), d_se, n)


def score_with_metrics(model: nn.Module, dataset, reference: np.ndarray | None = None, key: str = "",
                       split: str = "test") -> tuple[Score, np.ndarray, Metrics]:
    """``score`` plus ``train.evaluate``'s ``Metrics`` (next-character accuracy, mean loss in nats) from the same
    single pass over the windows: the Quantization page's every move on the GPT costs one pass, not two."""
    losses, correct = window_losses(model, dataset, split, 128)
    w = losses.numpy() / math.log(2)
    metrics = Metrics(accuracy=correct / getattr(dataset, f"y_{split}").numel(), loss=float(losses.mean()))
    return paired_score(w, reference, key), w, metrics
