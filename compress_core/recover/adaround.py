"""AdaRound: learn whether each weight rounds up or down (Nagel, Amjad, van Baalen, Louizos & Blankevoort 2020,
"Up or Down? Adaptive Rounding for Post-Training Quantization", ICML).

Rounding every weight to its nearest grid point minimises each weight's own error, not the layer's output error.
AdaRound keeps the grid (the scale S and zero point Z of ``quant.model``'s calibration) and chooses, per weight,
floor or ceil of w/S by minimising, layer by layer,

    ‖W X − W̃ X‖²_F / N + λ · Σ (1 − |2 h(V) − 1|^β),   W̃ = S · (clamp(⌊W/S⌋ + h(V) + Z, qmin, qmax) − Z)

over a continuous V, with the rectified sigmoid h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1 (§3.3).
The regulariser pushes each h to 0 or 1; its β is annealed from 20 to 2 after a warm start without it (the
authors' schedule: the first 20 % of the iterations unregularised, then β falls linearly), and the weights are then
rounded hard: up where h(V) ≥ 0.5. V starts where h(V) equals the fractional part of W/S.

X holds the layer's inputs as rows (a convolution's unfolded patches, as ``layer_inputs`` builds them), and the
squared error is computed from Gram matrices, never from the rows themselves. Two choices of inputs
(``AdaRoundConfig.inputs``):

- ``"float"`` (the default): the calibration examples run through the float network; the objective is
  ‖(W − W̃) X‖²/N = tr((W − W̃) G (W − W̃)ᵀ), the one GPTQ's ``layer_objective`` measures.
- ``"quantized"``: the paper's asymmetric reconstruction (§4, eq. 25 without the activation function):
  ‖W X_f − W̃ X_q‖²/N, with X_q the inputs of the network whose earlier layers are already quantized and
  AdaRounded (and whose activations are fake-quantized when the config says so), so that each layer also
  compensates the error arriving from below. Written as tr(D G_qq Dᵀ) + 2 tr(D G_qe Wᵀ) + tr(W G_ee Wᵀ) with
  D = W − W̃ and E = X_f − X_q, which keeps float32 accurate where the two inputs are close.

Weights that are exactly zero (pruned) stay zero.

Usage::

    res = adaround_model(model, QuantConfig(weight_bits=3, target="weights"), ds.x_train[:1024])
    evaluate(res.model, ds.x_test, ds.y_test).accuracy      # a quantize_model model with AdaRounded weights
    res.layers                                              # per layer: the objective, AdaRound and nearest
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..config import Config, param
from ..layer_inputs import _rows, capture_inputs, input_stats, output_error
from ..quant.model import QuantConfig, QuantLayer, quant_layers, quantize_model
from ..quant.primitives import QParams, fake_quantize

__all__ = ["AdaRoundConfig", "AdaRoundResult", "adaround", "adaround_model", "beta_at", "rectified_sigmoid"]

ZETA, GAMMA = 1.1, -0.1  # the stretch of the rectified sigmoid (the paper's ζ and γ)
INPUTS = ("float", "quantized")


@dataclass(frozen=True)
class AdaRoundConfig(Config, label="AdaRound"):
    """How AdaRound optimises each layer's rounding."""

    iterations: int = param(1000, "Adam steps per layer (the paper: 10,000 on ImageNet)")
    lr: float = param(1e-2, "Adam's learning rate for V")
    reg: float = param(0.01, "λ, the weight of the rounding regulariser")
    beta_start: float = param(20.0, "β at the start of the annealing")
    beta_end: float = param(2.0, "β at the end")
    warm_start: float = param(0.2, "fraction of the iterations without the regulariser")
    max_rows: int = param(8192, "calibration rows (inputs, or a convolution's patches) kept per layer")
    inputs: str = param("float", "'float': each layer's inputs from the float network; 'quantized': from the "
                                 "network whose earlier layers are already rounded (the paper's asymmetric loss)")

    def problems(self):
        if not isinstance(self.iterations, int) or not 1 <= self.iterations <= 100_000:
            yield "iterations must be a whole number from 1 to 100,000"
        if not 0 < self.lr <= 1:
            yield "lr must be above 0 and at most 1"
        if self.reg < 0:
            yield "reg (λ) must be ≥ 0"
        if not self.beta_start >= self.beta_end > 0:
            yield "β must fall from beta_start to beta_end > 0"
        if not 0 <= self.warm_start < 1:
            yield "warm_start must be at least 0 and below 1"
        if not isinstance(self.max_rows, int) or self.max_rows < 1:
            yield "max_rows must be a whole number ≥ 1"
        if self.inputs not in INPUTS:
            yield f"inputs must be one of {', '.join(INPUTS)}"


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    """h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1): reaches exactly 0 and 1, with a gradient inside (0, 1)."""
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _inverse_rectified_sigmoid(h: torch.Tensor) -> torch.Tensor:
    """V with h(V) = h for h in (0, 1): −log((ζ − γ)/(h − γ) − 1)."""
    return -torch.log((ZETA - GAMMA) / (h - GAMMA) - 1.0)


def beta_at(step: int, config: AdaRoundConfig) -> float | None:
    """The regulariser's β at iteration ``step`` (0-based): None during the warm start, then linear from
    ``beta_start`` to ``beta_end``."""
    warm = int(config.warm_start * config.iterations)
    if step < warm:
        return None
    rel = (step - warm) / max(config.iterations - warm, 1)
    return config.beta_end + (config.beta_start - config.beta_end) * max(0.0, 1.0 - rel)


def regulariser(h: torch.Tensor, beta: float) -> torch.Tensor:
    """Σ (1 − |2h − 1|^β): 0 when every h is 0 or 1, largest at h = ½."""
    return (1.0 - (2.0 * h - 1.0).abs().pow(beta)).sum()


def _soft_weight(floor: torch.Tensor, h: torch.Tensor, s: torch.Tensor, z: torch.Tensor, qp: QParams) -> torch.Tensor:
    return s * (torch.clamp(floor + h + z, qp.qmin, qp.qmax) - z)


def adaround(w: torch.Tensor, qp: QParams, gram: torch.Tensor, config: AdaRoundConfig = AdaRoundConfig(),
             cross: torch.Tensor | None = None) -> torch.Tensor:
    """The AdaRounded copy of one layer's weight ``w`` (its own shape) on the grid ``qp``: each entry is
    S·(clamp(⌊w/S⌋ + Z or ⌈w/S⌉ + Z, qmin, qmax) − Z), chosen to minimise tr((W − W̃) G (W − W̃)ᵀ) with ``gram`` G
    (``layer_inputs.input_stats(rows).gram``, inputs × inputs of the (out, in·k…) weight matrix), plus
    2·tr((W − W̃) C Wᵀ) when ``cross`` C = X_qᵀ(X_f − X_q)/N is given (then G is X_qᵀX_q/N: the asymmetric loss).
    Zeros stay zero. Deterministic: the optimisation draws no random numbers (V starts at the fractional parts)."""
    w = w.detach().float()
    s, z = qp.broadcast(w)
    z = z.float()
    floor = torch.floor(w * (1.0 / s))
    rest = (w * (1.0 / s) - floor).clamp(1e-4, 1 - 1e-4)  # inside (0, 1), where V is finite
    v = _inverse_rectified_sigmoid(rest).clone().requires_grad_(True)
    keep_zero = w == 0
    g = gram.detach().float()
    w2 = w.reshape(w.shape[0], -1)
    wc = w2 @ cross.detach().float().T if cross is not None else None  # W Cᵀ: tr(D C Wᵀ) = Σ D ⊙ (W Cᵀ)
    opt = torch.optim.Adam([v], lr=config.lr)
    for step in range(config.iterations):
        h = rectified_sigmoid(v)
        d = (w2 - _soft_weight(floor, h, s, z, qp).reshape(w2.shape))
        loss = ((d @ g) * d).sum()
        if wc is not None:
            loss = loss + 2.0 * (d * wc).sum()
        beta = beta_at(step, config)
        if beta is not None:
            loss = loss + config.reg * regulariser(h, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        up = (v >= 0).float()  # h(V) ≥ 0.5 ⇔ σ(V) ≥ 0.5 ⇔ V ≥ 0
        out = s * (torch.clamp(floor + up + z, qp.qmin, qp.qmax) - z)
        return torch.where(keep_zero, torch.zeros_like(out), out)


@dataclass
class AdaRoundResult:
    """The quantized model (``quant.model``'s, AdaRounded weights) and, per layer, the layer objective
    ‖(W − W̃)X‖²/N with AdaRound's and with round-to-nearest's W̃, and the fraction of weights rounded the
    other way than to nearest."""

    model: torch.nn.Sequential
    layers: list[dict] = field(default_factory=list)  # {"layer", "objective", "objective_nearest", "flipped"}


def adaround_model(model: torch.nn.Sequential, config: QuantConfig, calibration_data: torch.Tensor,
                   ada: AdaRoundConfig = AdaRoundConfig(),
                   callback: Callable[[dict], None] | None = None) -> AdaRoundResult:
    """``quantize_model(model, config, calibration_data)`` with every quantized weight AdaRounded on its grid
    (per channel or per tensor, the bits of ``config``, mixed precision included), layer after layer in forward
    order. The model is not changed; the result's layers are ``QuantLayer``s whose weights lie exactly on their
    grids, so the rest of the app (reports, integer-only inference, export) reads them as any quantized model.

    Each layer's row of ``AdaRoundResult.layers`` holds the objective ``ada.inputs`` defines, for AdaRound's W̃ and
    for round-to-nearest's on the same inputs.

    ``callback``, if given, is called before each layer with {"layer", "index" (0-based), "layers" (how many)},
    and once more at the end with index = layers and layer "" (progress for a page; it may raise to stop the run).

    Raises ValueError (from ``quantize_model``) for invalid settings or data, and for a config that keeps the
    weights in float."""
    if not config.quantize_weights:
        raise ValueError("AdaRound chooses how weights round: quantize the weights ('weights' or 'both').")
    if calibration_data is None or len(calibration_data) == 0:
        raise ValueError("AdaRound needs calibration data (at least one example).")
    qmodel = quantize_model(model, config, calibration_data)
    data = calibration_data.float()
    rows = capture_inputs(model, data, max_rows=ada.max_rows) if ada.inputs == "float" else None
    res = AdaRoundResult(qmodel)
    layers = list(quant_layers(qmodel))
    for i, (name, ql) in enumerate(layers):
        if callback:
            callback({"layer": name, "index": i, "layers": len(layers)})
        w = ql.weight.detach()
        nearest = fake_quantize(w, ql.weight_qparams)
        if rows is not None:
            gram, cross, ee = input_stats(rows[name]).gram, None, None
        else:  # the inputs now, with the layers before this one already rounded
            x_f, x_q = _paired_rows(model, qmodel, name, data, ada.max_rows)
            e = x_f - x_q
            gram, cross, ee = x_q.T @ x_q / len(x_q), x_q.T @ e / len(x_q), e.T @ e / len(x_q)
        w_ada = adaround(w, ql.weight_qparams, gram, ada, cross)
        res.layers.append({"layer": name, "objective": _objective(w, w_ada, gram, cross, ee),
                           "objective_nearest": _objective(w, nearest, gram, cross, ee),
                           "flipped": float((w_ada != nearest).float().mean())})
        with torch.no_grad():
            ql.weight.copy_(w_ada)
    if callback:
        callback({"layer": "", "index": len(layers), "layers": len(layers)})
    return res


def _objective(w: torch.Tensor, w_hat: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor | None,
               ee: torch.Tensor | None) -> float:
    """‖(W − W̃)X‖²/N from G, or ‖W X_f − W̃ X_q‖²/N = tr(D G Dᵀ) + 2 tr(D C Wᵀ) + tr(W E Wᵀ), in float64."""
    if cross is None:
        return output_error(w, w_hat, gram)
    w2 = w.detach().double().reshape(w.shape[0], -1)
    d = w2 - w_hat.detach().double().reshape(w2.shape)
    total = ((d @ gram) * d).sum() + 2.0 * ((d @ cross) * w2).sum() + ((w2 @ ee) * w2).sum()
    return max(float(total), 0.0)


@torch.no_grad()
def _paired_rows(model: torch.nn.Sequential, qmodel: torch.nn.Sequential, name: str, x: torch.Tensor,
                 max_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows layer ``name`` reads in the float ``model`` and in ``qmodel`` on the same inputs ``x`` (float64;
    evenly spaced rows, the same ones in both, at most ``max_rows``, as ``capture_inputs`` keeps them)."""
    h_f, h_q = x, x
    for (child, f), (_, q) in zip(model.named_children(), qmodel.named_children()):
        if child == name:
            if isinstance(q, QuantLayer) and q.quantize_input and q.input_qparams is not None:
                h_q = fake_quantize(h_q, q.input_qparams)  # the first layer reads quantized inputs
            r_f, r_q = _rows(f, h_f).double(), _rows(f, h_q).double()
            if len(r_f) > max_rows:
                keep = torch.linspace(0, len(r_f) - 1, max_rows).round().long()
                r_f, r_q = r_f[keep], r_q[keep]
            return r_f, r_q
        h_f, h_q = f(h_f), q(h_q)
    raise ValueError(f"The model has no layer {name!r}.")
