"""What one quantization setting does, as numbers ready to show: the config a set of choices makes,
accuracy and size against float, one layer's quantized tensor (and its widest channel), a worked
round trip r → q → r̂, per-tensor against per-channel SQNR, the plan of the bit-width sweeps and the
mixed-precision scan, and how sure a difference in accuracy is (QAT against PTQ at each bit width, quantized
against float), by the rule of ``compress_core.stats.compare_accuracies``: real only beyond 2 binomial
standard errors √(p(1 − p)/n) of the difference on the n test examples.

Per-channel weights (one (S, Z) per output channel) matter because one shared grid has to stretch to the
widest channel, leaving narrow channels only a few levels (Krishnamoorthi 2018);
``compare_granularity`` measures that on a real layer as SQNR in dB.

Usage::

    cfg = make_config(bits=4, target="both", keep_act8=True)            # W4A8
    q = quantize_model(model, cfg, calib)
    t = layer_tensor(q, "fc1", calib); t.widest_channel, t.channel(t.widest_channel).label
    compare_granularity(dict(quant_layers(q))["fc1"].weight, cfg, 4).gain_db
    gains = qat_gains(plan, series, n_test=360); qat_gain_text(gains, "digits")
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..stats import Comparison, compare_accuracies, noise_words, standard_error, test_unit
from ..train import Metrics

__all__ = ["Comparison", "CurvePlan", "GranularityComparison", "QatGain", "QuantSummary", "RoundTrip", "TensorView",
           "channel_qparams", "compare_accuracies", "compare_granularity", "curve_plan", "describe", "format_db",
           "layer_tensor", "make_config", "mixed_config", "noise_words", "qat_gain_text", "qat_gains", "round_trip",
           "scan_config", "se_words", "standard_error", "summarize", "test_unit"]
from .analysis import sqnr_db
from .model import QuantConfig, collect_activations, collect_layer_inputs, is_nested, quant_layers, weight_qparams_for
from .primitives import QParams, dequantize, fake_quantize, quantize


def make_config(bits: int, target: str = "both", *, symmetric: bool = True, per_channel: bool = True,
                method: str = "minmax", keep_act8: bool = True, narrow_range: bool = False,
                percentile: float = 99.99, act_symmetric: bool = False) -> QuantConfig:
    """One bit width for what ``target`` quantizes; with ``target="both"`` and ``keep_act8`` the activations
    stay at 8 bits (e.g. W4A8). ``symmetric`` is the weights' grid; activations are affine (asymmetric, unsigned)
    unless ``act_symmetric`` -- TFLite's and PyTorch's default, and what the integer-only page runs. The
    calibration method applies to weights and activations alike.

    Raises ValueError (plain words) for impossible settings, e.g. a narrow range at 1 bit.
    """
    act_bits = 8 if (target == "both" and keep_act8) else bits
    return QuantConfig(target=target, weight_bits=bits, act_bits=act_bits, weight_symmetric=symmetric,
                       act_symmetric=act_symmetric, per_channel=per_channel, narrow_range=narrow_range,
                       weight_method=method, act_method=method, percentile=percentile)


def describe(cfg: QuantConfig) -> str:
    """E.g. "weights 4-bit per channel · activations 8-bit"."""
    w = (f"weights {cfg.weight_bits}-bit {'per channel' if cfg.per_channel else 'per tensor'}"
         if cfg.quantize_weights else "weights float")
    a = f"activations {cfg.act_bits}-bit" if cfg.quantize_activations else "activations float"
    return f"{w} · {a}"


def se_words(acc: float, n_test: int, dataset: str | None = None) -> str:
    """E.g. "± 0.7 pts (1 s.e., 360 test images)": the binomial standard error of an accuracy (a fraction) on
    ``n_test`` test examples ("images" when ``dataset`` is a data set of images)."""
    return f"± {100 * standard_error(acc, n_test):.1f} pts (1 s.e., {n_test:,} test {test_unit(dataset)}s)"


@dataclass(frozen=True)
class QuantSummary:
    """Accuracy and stored size of a quantized model beside the float one; with ``n_test`` (test examples),
    the accuracies' standard errors and whether the change from float is measurable."""

    float_accuracy: float
    accuracy: float
    float_kb: float
    kb: float
    ratio: float  # float size / quantized size
    n_test: int = 0

    @property
    def accuracy_delta_pts(self) -> float:
        return 100 * (self.accuracy - self.float_accuracy)

    @property
    def kb_delta(self) -> float:
        return self.kb - self.float_kb

    @property
    def accuracy_se_pts(self) -> float:
        """The binomial standard error of the quantized accuracy, in points (NaN without ``n_test``)."""
        return 100 * standard_error(self.accuracy, self.n_test)

    @property
    def vs_float(self) -> Comparison | None:
        """The quantized accuracy against the float one (``compare_accuracies``); None without ``n_test``."""
        return compare_accuracies([self.accuracy], [self.float_accuracy], self.n_test) if self.n_test else None


def summarize(float_metrics: Metrics, float_size: dict, metrics: Metrics, size: dict,
              n_test: int = 0) -> QuantSummary:
    """From ``evaluate`` metrics and ``model_size`` dicts of the float and the quantized model (both measured on
    the ``n_test`` test examples, when given)."""
    return QuantSummary(float_accuracy=float_metrics.accuracy, accuracy=metrics.accuracy, float_kb=float_size["kb"],
                        kb=size["kb"], ratio=size["ratio"], n_test=int(n_test))


def channel_qparams(qp: QParams, channel: int | None) -> QParams:
    """The per-tensor parameters of one channel of a per-channel ``qp`` (``qp`` itself when per tensor)."""
    if qp.axis is None or channel is None:
        return qp
    return QParams(qp.scale[channel].reshape(()), qp.zero_point[channel].reshape(()), qp.bits, qp.signed,
                   qp.symmetric, qp.narrow_range, None)


@dataclass(frozen=True)
class TensorView:
    """The numbers one quantizer sees: a layer's weights, or its output activations when its weights are float."""

    layer: str
    what: str  # "weights" | "output activations" | "input activations"
    values: torch.Tensor  # detached
    qparams: QParams
    channel_index: int | None = None  # set on a view of one channel

    @property
    def per_channel(self) -> bool:
        return self.qparams.per_channel and self.channel_index is None

    @property
    def channels(self) -> int:
        return self.values.shape[0]

    @property
    def widest_channel(self) -> int:
        """The output channel with the widest range max − min: the one a shared grid must stretch to."""
        rows = self.values.reshape(self.values.shape[0], -1)
        return int((rows.amax(1) - rows.amin(1)).argmax())

    @property
    def label(self) -> str:
        base = f"{self.layer} {self.what}"
        return base if self.channel_index is None else f"{base}, channel {self.channel_index}"

    def channel(self, c: int) -> TensorView:
        """One output channel with its own (S, Z)."""
        return TensorView(self.layer, self.what, self.values[c], channel_qparams(self.qparams, c), c)


@torch.no_grad()
def layer_tensor(qmodel: nn.Module, layer: str, calibration_data: torch.Tensor) -> TensorView:
    """``layer``'s quantized weights, or (weights left float) its output activations on ``calibration_data`` (its
    input activations in a nested model, which quantizes each layer's input)."""
    ql = dict(quant_layers(qmodel))[layer]
    if ql.weight_qparams is not None:
        return TensorView(layer, "weights", ql.weight.detach(), ql.weight_qparams)
    if is_nested(qmodel):
        acts = collect_layer_inputs(qmodel, calibration_data, names={layer})
        return TensorView(layer, "input activations", torch.cat(acts[layer]).detach(), ql.input_qparams)
    acts = collect_activations(qmodel, calibration_data)
    return TensorView(layer, "output activations", torch.cat(acts[layer]).detach(), ql.output_qparams)


@dataclass(frozen=True)
class RoundTrip:
    """One value through the affine scheme: q = clamp(round(r / S) + Z), r̂ = S·(q − Z)."""

    r: float
    q: int
    scale: float
    zero_point: int
    r_hat: float


def round_trip(r: float, qp: QParams) -> RoundTrip:
    """``r`` quantized and dequantized with the per-tensor ``qp``."""
    q = int(quantize(torch.tensor([r]), qp))
    return RoundTrip(r=r, q=q, scale=float(qp.scale), zero_point=int(qp.zero_point),
                     r_hat=float(dequantize(torch.tensor([q]), qp)))


def format_db(v: float) -> str:
    """An SQNR for people: "exact" when there is no error at all."""
    return "exact" if math.isinf(v) else f"{v:.1f} dB"


@dataclass(frozen=True)
class GranularityComparison:
    """One weight tensor quantized with one shared grid and with one grid per output channel."""

    bits: int
    per_tensor: QParams
    per_channel: QParams
    sqnr_tensor_db: float
    sqnr_channel_db: float

    @property
    def gain_db(self) -> float | None:
        """How many dB per channel gains (None when either is exact)."""
        if math.isinf(self.sqnr_tensor_db) or math.isinf(self.sqnr_channel_db):
            return None
        return self.sqnr_channel_db - self.sqnr_tensor_db


def compare_granularity(weight: torch.Tensor, cfg: QuantConfig, bits: int) -> GranularityComparison:
    """Calibrate ``weight`` per tensor and per channel with ``cfg``'s scheme and method at ``bits``."""
    w = weight.detach()
    pt, pc = (weight_qparams_for(w, replace(cfg, per_channel=per), bits) for per in (False, True))
    return GranularityComparison(bits=bits, per_tensor=pt, per_channel=pc,
                                 sqnr_tensor_db=sqnr_db(w, fake_quantize(w, pt)),
                                 sqnr_channel_db=sqnr_db(w, fake_quantize(w, pc)))


@dataclass(frozen=True)
class CurvePlan:
    """Which accuracy-vs-bits curves to sweep, and with which configs (bits overridden per point)."""

    kinds: tuple[tuple[str, str], ...]  # (kind, legend name); kind: "ptq_tensor" | "ptq_channel" | "qat"
    act_bits: int | None  # activations fixed at this width, or None: the same width as the weights
    ptq_config: QuantConfig
    qat_config: QuantConfig
    weights_only: bool

    def config_for(self, kind: str) -> QuantConfig:
        return self.qat_config if kind == "qat" else self.ptq_config

    @property
    def activation_note(self) -> str:
        if self.act_bits:
            return "activations at 8 bits"
        return "weights only" if self.weights_only else "activations at the same width"


def curve_plan(cfg: QuantConfig, keep_act8: bool, include_qat: bool) -> CurvePlan:
    """PTQ per tensor and per channel (just "PTQ" when only activations are quantized), plus QAT if asked.

    QAT retrains one model per bit width: its curve uses one fixed recipe (symmetric per-channel weights,
    min-max) so that changing the scheme or calibration method does not retrain it.
    """
    kinds = [("ptq_tensor", "PTQ per tensor"), ("ptq_channel", "PTQ per channel"), ("qat", "QAT per channel")]
    if not cfg.quantize_weights:
        kinds = [("ptq_channel", "PTQ"), ("qat", "QAT")]
    if not include_qat:
        kinds = kinds[:-1]
    return CurvePlan(kinds=tuple(kinds), act_bits=8 if (cfg.target == "both" and keep_act8) else None,
                     ptq_config=replace(cfg, weight_bits=8, act_bits=8, layer_bits=()),
                     qat_config=QuantConfig(target=cfg.target),
                     weights_only=not cfg.quantize_activations)


def scan_config(cfg: QuantConfig) -> QuantConfig:
    """The mixed-precision scan quantizes one layer's weights at a time with ``cfg``'s scheme and method."""
    return replace(cfg, target="weights", weight_bits=8, act_bits=8, layer_bits=())


def mixed_config(cfg: QuantConfig, suggestion: tuple[tuple[str, int], ...]) -> QuantConfig:
    """``cfg`` with the suggested bits per layer; activations stay as ``cfg`` sets them."""
    return replace(cfg, layer_bits=suggestion, target="both" if cfg.quantize_activations else "weights")


@dataclass(frozen=True)
class QatGain:
    """QAT against PTQ at one bit width, on the sweeps' test set."""

    bits: int
    ptq_name: str  # the PTQ curve compared with (same granularity as QAT: per channel)
    comparison: Comparison  # QAT (a) against PTQ (b)


def qat_gains(plan: CurvePlan, series: dict[str, list[dict]], n_test: int) -> list[QatGain]:
    """QAT's gain over PTQ at every bit width both curves of ``series`` (legend name → ``bits_sweep`` rows)
    have, each with its standard error and outcome (``compare_accuracies``: real only beyond 2 standard errors
    of the difference, √(s_QAT² + s_PTQ²) with s = √(p(1 − p)/n)). Empty without a QAT curve."""
    names = dict(plan.kinds)
    qat, ptq = series.get(names.get("qat", "")), series.get(names.get("ptq_channel", ""))
    if not qat or not ptq:
        return []
    p = {r["bits"]: r["accuracy"] for r in ptq}
    return [QatGain(r["bits"], names["ptq_channel"], compare_accuracies([r["accuracy"]], [p[r["bits"]]], n_test))
            for r in sorted(qat, key=lambda r: r["bits"]) if r["bits"] in p]


def _bits_list(bits: list[int]) -> str:
    words = [str(b) for b in bits]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def qat_gain_text(gains: list[QatGain], dataset: str | None = None) -> str:
    """QAT's gain over PTQ at each bit width in plain words, saying where it is within the noise of the test set.

    E.g. "QAT against PTQ per channel, at the same bit width: 2 bits +35.3 ± 2.6 points (real); 4 bits
    +0.3 ± 1.2 points (within noise). At 4 bits QAT's gain over PTQ is within the noise of this test set: one
    test image is 0.28 points on digits' 360 test images." Empty when there is nothing to compare.
    """
    if not gains:
        return ""

    def one(g: QatGain) -> str:
        c = g.comparison
        tag = {"better": "QAT better", "worse": "QAT worse"}.get(c.outcome, "within noise")
        return f"{g.bits} bits {c.diff:+.1f} ± {c.se:.1f} points ({tag})".replace("-", "−")

    n = gains[0].comparison.n_test
    text = (f"QAT against {gains[0].ptq_name} at the same bit width (difference ± 1 s.e., {n:,} test "
            f"{test_unit(dataset)}s): "
            + "; ".join(one(g) for g in gains) + ".")
    noise = [g.bits for g in gains if g.comparison.within_noise]
    worse = [g.bits for g in gains if g.comparison.outcome == "worse"]
    better = [g.bits for g in gains if g.comparison.outcome == "better"]
    if better:
        text += f" At {_bits_list(better)} bits QAT is measurably better (beyond 2 standard errors)."
    if noise:
        text += (f" At {_bits_list(noise)} bits QAT's gain over PTQ is within the noise of this test set: "
                 f"{noise_words(n, dataset)}.")
    if worse:
        text += f" At {_bits_list(worse)} bits QAT is measurably worse than PTQ."
    return text
