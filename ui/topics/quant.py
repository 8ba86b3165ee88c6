"""Streamlit glue for the Quantization page: its URL-bound controls and the cached work behind it
(PTQ/QAT models, bit-width sweeps, sensitivity scans).

Every cache key is the sidebar's frozen ``Selection`` plus a frozen ``QuantConfig`` as JSON (and the
few plain values a run adds: calibration examples, epochs), in ``ui.memo.Memo``s; results are frozen
``Quantized`` / ``FloatSummary`` objects shared across sessions and must never be changed in place. An ended
upload session's entries are dropped by ``memo.forget_everywhere`` (the selection's repr names the upload).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import streamlit as st
from torch import nn

from compress_core.lm.variants import Score, paired_score, score_with_metrics
from compress_core.quant import (
    METHOD_LABELS,
    METHODS,
    QuantConfig,
    bits_sensitivity,
    bits_sweep,
    compute_qparams,
    float_control,
    layer_report,
    model_size,
    quantization_aware_training,
    quantize_model,
    suggest_bits,
)
from compress_core.quant.report import (
    CurvePlan,
    QuantSummary,
    curve_plan,
    describe,
    layer_tensor,
    make_config,
    mixed_config,
    noise_words,
    scan_config,
    se_words,
    test_unit,
)
from compress_core.recover.adaround import adaround_model
from compress_core.recover.equalize import correct_bias, equalize
from compress_core.stats import compare_paired
from compress_core.train import History, Metrics, TrainConfig, evaluate, evaluate_examples
from compress_core.viz import common as viz_common
from compress_core.viz import quant as viz_quant
from ui import jobs
from ui.explain import explainer, gap_words, published
from ui.loaders import baseline_of, dataset
from ui.memo import Memo
from ui.sidebar import Selection
from ui.state import to_bool, url_widget

CURVE_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 16)
QAT_CURVE_BITS = (2, 3, 4, 6, 8)
SCAN_BITS = (2, 3, 4, 6, 8)
QAT_CURVE_EPOCHS = 3

BITS = [1, 2, 3, 4, 5, 6, 7, 8, 16]
TARGETS = {"weights": "Weights", "activations": "Activations", "both": "Both"}
MODES = {"ptq": "PTQ (post-training)", "qat": "QAT (fine-tune)"}
SCHEMES = ["symmetric", "asymmetric"]
GRANULARITIES = ["per tensor", "per channel"]
PERCENTILES = [99.0, 99.9, 99.99, 99.999]
FIXES = {"none": "None (round to nearest)", "cle_bc": "Cross-layer equalization + bias correction",
         "adaround": "AdaRound"}
GPT_CALIB = 64  # windows of 64 characters (4,096 rows a layer): a bit-width move re-quantizes and reports on them


@dataclass(frozen=True)
class Choices:
    """What the controls say: the config's ingredients plus how to get there (PTQ or QAT)."""

    bits: int
    scheme: str
    granularity: str
    method: str
    target: str
    mode: str
    keep_act8: bool
    calib: int  # calibration examples
    percentile: float
    narrow: bool
    lsq: bool
    epochs: int  # QAT
    act_symmetric: bool = False
    fix: str = "none"  # PTQ only: a post-training fix of ``FIXES``

    @property
    def fixed(self) -> bool:
        """A post-training fix replaces plain rounding (PTQ only)."""
        return self.mode == "ptq" and self.fix != "none"

    def config(self) -> QuantConfig:
        """Raises ValueError (plain words) when the choices do not make a valid quantizer."""
        return make_config(self.bits, self.target, symmetric=self.scheme == "symmetric",
                           per_channel=self.granularity == "per channel", method=self.method,
                           keep_act8=self.keep_act8, narrow_range=self.narrow, percentile=self.percentile,
                           act_symmetric=self.act_symmetric)

    def caption(self) -> str:
        return (f"{self.scheme} weights, {'symmetric' if self.act_symmetric else 'affine'} activations · "
                f"{METHOD_LABELS[self.method]} calibration on {self.calib} examples · "
                f"{MODES[self.mode]}" + (f" with {FIXES[self.fix].lower()}" if self.fixed else ""))


def controls(text: bool = False) -> Choices:
    """Draw the bit width, scheme, granularity, calibration, target and mode controls (seeded from the URL); on a
    language model (``text``) calibration starts from ``GPT_CALIB`` windows."""
    c1, c2, c3 = st.columns([2, 1, 1])
    bits = url_widget(c1.select_slider, "q_bits", 8, "Bit width", BITS, cast=int, allowed=BITS,
                      help="Bits per stored number: 2^b levels. 8 is the industry standard; 16 is nearly lossless.")
    scheme = url_widget(c2.radio, "q_scheme", "symmetric", "Weight grid", SCHEMES, allowed=SCHEMES, horizontal=True,
                        help="Symmetric: Z = 0 and the grid is centred on zero. Asymmetric: the grid covers "
                             "[min, max] exactly. Activations are affine unless set otherwise below (as TFLite, "
                             "PyTorch's observers and the Integer inference page do).")
    gran = url_widget(c3.radio, "q_gran", "per channel", "Granularity", GRANULARITIES, allowed=GRANULARITIES,
                      horizontal=True, help="One (S, Z) for the whole weight tensor, or one per output channel.")
    c1, c2, c3 = st.columns([2, 1, 1])
    method = url_widget(c1.selectbox, "q_method", "minmax", "Calibration (range setting)", list(METHODS),
                        allowed=list(METHODS), format_func=METHOD_LABELS.get,
                        help="How the clipping range [min, max] is chosen, for weights and activations alike.")
    target = url_widget(c2.radio, "q_target", "both", "Quantize", list(TARGETS), allowed=list(TARGETS),
                        format_func=TARGETS.get, horizontal=True,
                        help="Weights only, activations only, or both (what integer hardware needs).")
    mode = url_widget(c3.radio, "q_mode", "ptq", "Method", list(MODES), allowed=list(MODES), format_func=MODES.get,
                      horizontal=True, help="PTQ rounds a trained network. QAT fine-tunes with rounding in the loop "
                                            "(straight-through estimator).")
    fix = url_widget(st.selectbox, "q_fix", "none", "Post-training fix (PTQ)", list(FIXES), allowed=list(FIXES),
                     format_func=FIXES.get, disabled=mode != "ptq",
                     help="Repair plain rounding without training. Cross-layer equalization rescales the channels of "
                          "each ReLU pair so one grid fits them all, then bias correction removes the mean shift "
                          "rounding causes (Nagel et al. 2019; milliseconds). AdaRound learns, layer by layer, "
                          "whether each weight rounds up or down (Nagel et al. 2020; seconds, on the heavy-run "
                          "pool). Classifiers only.")
    with st.expander("More settings: activation bits, calibration set, percentile, narrow range, QAT"):
        a1, a2, a3 = st.columns(3)
        act8 = url_widget(a1.toggle, "q_act8", True, "Keep activations at 8 bits", cast=to_bool,
                          help="With 'Both': activations stay 8-bit while the weights use the bit width above "
                               "(e.g. W4A8).")
        act_sym = url_widget(a1.toggle, "q_act_sym", False, "Symmetric activations (Z = 0)", cast=to_bool,
                             help="Off (default): activations get an affine grid over [min, max] with a zero point, "
                                  "which suits one-sided ReLU outputs. On: symmetric and signed, as the weights.")
        narrow = url_widget(a1.toggle, "q_narrow", False, "Narrow range (weights)", cast=to_bool,
                            help="Drop the lowest code (−127..127 at 8 bits) so the symmetric grid is exactly "
                                 "symmetric.")
        calib = url_widget(a2.slider, "q_calib", GPT_CALIB if text else 256, "Calibration examples", 1, 1024,
                           cast=int, check=lambda v: 1 <= v <= 1024,
                           help="Training inputs used to observe activation ranges. Krishnamoorthi (2018): ~100 "
                                "batches suffice." + (f" On the GPT an example is a window of 64 characters: "
                                                      f"{GPT_CALIB} windows are {GPT_CALIB * 64:,} positions, each "
                                                      "a row of every Linear's input." if text else ""))
        pct = url_widget(a2.select_slider, "q_pct", 99.99, "Percentile", PERCENTILES, cast=float,
                         allowed=PERCENTILES,
                         help="For the percentile method: the range keeps this share of values; the tails are "
                              "clipped.")
        lsq = url_widget(a3.toggle, "q_lsq", True, "Learn the step size (LSQ)", cast=to_bool,
                         help="QAT: train the scales too (Esser et al. 2020) instead of following min-max ranges.")
        epochs = url_widget(a3.slider, "q_epochs", 3, "QAT epochs", 1, 20, cast=int, check=lambda v: 1 <= v <= 20,
                            help="Fine-tuning epochs for QAT, at half the baseline's learning rate.")
    return Choices(bits=int(bits), scheme=scheme, granularity=gran, method=method, target=target, mode=mode,
                   keep_act8=bool(act8), calib=int(calib), percentile=float(pct), narrow=bool(narrow), lsq=bool(lsq),
                   epochs=int(epochs), act_symmetric=bool(act_sym), fix=fix)


@dataclass(frozen=True, eq=False)
class Quantized:
    """One quantized result, shared by every session that asks for the same setting (never change it): the
    fake-quantized model, its test metrics, ``model_size`` and ``layer_report``, and QAT's training history."""

    model: nn.Module
    metrics: Metrics
    size: dict
    report: list[dict]
    history: History | None = None  # QAT only
    lm: Score | None = None  # a language model: bits per character on the test windows, paired with float's
    windows: np.ndarray | None = None  # … and each test window's, to pair QAT with PTQ and with its control
    right: np.ndarray | None = None  # a classifier: which test examples it gets right (read-only), to pair two results


def _parts(sel: Selection, calib_size: int):
    ds = dataset(sel.dataset, sel.seed)
    return baseline_of(sel), ds, ds.x_train[:calib_size]


def qat_schedule(sel: Selection, epochs: int) -> TrainConfig:
    """Fine-tuning recipe: the baseline's batch size, a few epochs, half its learning rate."""
    base = sel.train
    return TrainConfig(epochs=epochs, lr=base.lr / 2, batch_size=base.batch_size, optimizer=base.optimizer)


# Shared between sessions, keyed by the ``Selection`` (whose repr names an upload's data set and weights' digest, so
# ``memo.forget_everywhere`` drops an ended session's entries) plus the config as JSON: never changed in place.
_PTQ, _SCAN, _FLOAT = Memo(64), Memo(16), Memo(16)


def ptq(sel: Selection, cfg_json: str, calib_size: int) -> Quantized:
    """Post-training quantization of the selection's baseline: model, accuracy, size and per-layer report."""
    def compute() -> Quantized:
        b, ds, calib = _parts(sel, calib_size)
        cfg = QuantConfig.from_dict(json.loads(cfg_json))
        return _summarise(sel, quantize_model(b.model, cfg, calib), ds, calib)

    return _PTQ.get((sel, cfg_json, calib_size), compute)


def _scored(model, ds) -> tuple[Metrics, np.ndarray]:
    """A classifier's test metrics and which test examples it gets right (read-only: results are shared)."""
    metrics, ok = evaluate_examples(model, ds.x_test, ds.y_test)
    right = ok.numpy()
    right.setflags(write=False)
    return metrics, right


def _summarise(sel: Selection, q, ds, calib, history: History | None = None) -> Quantized:
    if ds.kind == "text":  # one pass over the test windows gives bits per character and next-character accuracy
        lm, windows, metrics = score_with_metrics(q, ds, float_summary(sel).windows, "quantized")
        right = None
    else:
        lm, windows = None, None
        metrics, right = _scored(q, ds)
    return Quantized(model=q, metrics=metrics, size=model_size(q), report=layer_report(q, calib), history=history,
                     lm=lm, windows=windows, right=right)


_QAT, _CURVES, _CONTROL = Memo(64), Memo(64), Memo(16)  # fine-tuning runs and sweeps report progress to their page


def qat(sel: Selection, cfg_json: str, calib_size: int, epochs: int, lsq: bool) -> Quantized | None:
    """Quantization-aware fine-tuning of the baseline on the heavy-run pool (cached per setting), its progress
    and a Cancel button drawn while it trains. None if this session cancelled it."""
    def compute(report) -> Quantized:
        b, ds, calib = _parts(sel, calib_size)
        cfg = QuantConfig.from_dict(json.loads(cfg_json))

        def cb(rec):
            what = "next character right (validation)" if ds.kind == "text" else "validation accuracy"
            report(min(1.0, rec["iteration"] / max(rec["total_iterations"], 1)),
                   f"epoch {rec['epoch']:.0f}/{epochs}, {what} {rec['val_acc']:.1%}")

        q, hist = quantization_aware_training(b.model, cfg, ds, qat_schedule(sel, epochs), calibration_data=calib,
                                              lsq=lsq, seed=sel.seed, callback=cb)
        return _summarise(sel, q, ds, calib, hist)

    return jobs.run(_QAT, (sel, cfg_json, calib_size, epochs, lsq), compute, "Quantization-aware training",
                    "q_cancel_qat")


def quantized(sel: Selection, cfg: QuantConfig, ch: Choices) -> Quantized | None:
    """The PTQ or QAT result of ``cfg``; None if this session cancelled its QAT. Raises ValueError."""
    if ch.fixed:
        return fixed_ptq(sel, cfg.to_json(), ch.calib, ch.fix)
    if ch.mode != "qat":
        return ptq(sel, cfg.to_json(), ch.calib)
    return qat(sel, cfg.to_json(), ch.calib, ch.epochs, ch.lsq)


_FIXED = Memo(32)
FIX_ON_GPT = ("The post-training fixes are for the classifiers: cross-layer equalization rescales channels through a "
              "ReLU (ReLU(x/s) = ReLU(x)/s), which the GPT's attention, GELU and LayerNorms do not allow, and "
              "AdaRound here rounds the top-level Linear/Conv layers of an nn.Sequential classifier.")


def fixed_ptq(sel: Selection, cfg_json: str, calib_size: int, fix: str) -> Quantized | None:
    """PTQ repaired by ``fix``: "cle_bc" (``recover.equalize``: equalize the float model, quantize, correct the
    biases; milliseconds, computed here) or "adaround" (``recover.adaround``; seconds, on the heavy-run pool with
    progress and Cancel). Cached per setting; None if this session cancelled AdaRound. Raises ValueError (plain
    words), e.g. on the GPT."""
    if dataset(sel.dataset, sel.seed).kind == "text":
        raise ValueError(FIX_ON_GPT)
    if fix not in FIXES or fix == "none":
        raise ValueError(f"No post-training fix {fix!r}: choose one of {', '.join(FIXES)}.")
    cfg = QuantConfig.from_dict(json.loads(cfg_json))
    if fix == "cle_bc":
        def compute() -> Quantized:
            b, ds, calib = _parts(sel, calib_size)
            eq = equalize(b.model)
            return _summarise(sel, correct_bias(quantize_model(eq, cfg, calib), eq, calib), ds, calib)

        return _FIXED.get((sel, cfg_json, calib_size, fix), compute)
    if not cfg.quantize_weights:
        raise ValueError("AdaRound chooses how weights round: quantize the weights ('Weights' or 'Both').")

    def compute_ada(report) -> Quantized:
        b, ds, calib = _parts(sel, calib_size)
        res = adaround_model(b.model, cfg, calib, callback=lambda r: report(
            r["index"] / max(r["layers"], 1), f"layer {r['layer']} ({r['index'] + 1} of {r['layers']})"
            if r["layer"] else "scoring the rounded model"))
        return _summarise(sel, res.model, ds, calib)

    return jobs.run(_FIXED, (sel, cfg_json, calib_size, fix), compute_ada, "AdaRound (learning how each weight "
                    "rounds)", "q_cancel_adaround")


def reference_model(sel: Selection, ch: Choices):
    """The float model a quantized result is compared with layer by layer: the baseline, or, after cross-layer
    equalization, the equalized baseline (the same function, its channels rescaled), cached."""
    b = baseline_of(sel)
    if ch.fixed and ch.fix == "cle_bc":
        return _FIXED.get((sel, "equalized"), lambda: equalize(b.model))
    return b.model


def fix_gain(sel: Selection, res: Quantized, plain: Quantized, ch: Choices, n_test: int) -> None:
    """The fix's gain against plain PTQ of the same setting, on the same test examples, with its standard error
    paired example by example and the honest-comparison verdict (``compare_paired``)."""
    c = compare_paired(res.right, plain.right)
    f1, f2 = st.columns([1, 3])
    f1.metric("Gain vs plain PTQ", f"{c.diff:+.2f} ± {c.se:.2f} pts",
              help=f"{FIXES[ch.fix]}: {res.metrics.accuracy:.2%}; plain round-to-nearest PTQ of the same setting: "
                   f"{plain.metrics.accuracy:.2%}, on the same test set. ± 1 standard error of the difference, "
                   f"paired example by example: examples both get right, or both wrong, cancel.")
    f2.caption(f"**{FIXES[ch.fix]}** against round-to-nearest PTQ of the same setting on the same {n_test:,} test "
               f"{test_unit(sel.dataset)}s: {c.words()}. "
               + (f"Within noise: {noise_words(n_test, sel.dataset)}." if c.within_noise else ""))


def result_key(sel: Selection, cfg: QuantConfig, ch: Choices) -> tuple:
    """What names ``quantized(sel, cfg, ch)``'s result: the arguments its cache is keyed on."""
    return (sel, cfg.to_json(), ch.calib) + ((ch.epochs, ch.lsq) if ch.mode == "qat" else ()) + \
        ((ch.fix,) if ch.fixed else ())


# A layer's values and its grid-over-staircase figure, per quantized result (and output channel): a bit-width
# move back to a setting seen before, by this student or another, rebuilds neither (about 6 of a move's 16 ms of
# server time went to this chart, bench/bench_load.py). Shared between sessions: never changed.
_TENSORS, _GRIDS = Memo(64), Memo(64)


def layer_view(rkey: tuple, qmodel, calibration_data, layer: str):
    """``report.layer_tensor`` of a quantized result, computed once per result and layer."""
    return _TENSORS.get((rkey, layer), lambda: layer_tensor(qmodel, layer, calibration_data))


def grid_figure(rkey: tuple, view, layer: str, channel: int | None):
    """The grid over the staircase of ``view`` (the layer's values, or one output channel's)."""
    return _GRIDS.get((rkey, layer, channel), lambda: viz_quant.grid_and_staircase(view.values, view.qparams,
                                                                              title=view.label))


@dataclass(frozen=True)
class Control:
    """The float baseline fine-tuned as QAT fine-tunes: its test metrics and which test examples it gets right
    (read-only), to pair it with the QAT model example by example. Shared between sessions: never changed."""

    metrics: Metrics
    right: np.ndarray

    @property
    def accuracy(self) -> float:
        return self.metrics.accuracy


def qat_control(sel: Selection, epochs: int) -> Control | None:
    """The float baseline fine-tuned exactly as QAT fine-tunes (``quant.float_control``), scored on the test split,
    on the heavy-run pool, cached per (baseline, epochs); None if cancelled."""
    def compute(report) -> Control:
        b, ds, _ = _parts(sel, 0)
        net, _ = float_control(b.model, ds, qat_schedule(sel, epochs), seed=sel.seed,
                               callback=lambda rec: report(rec["iteration"] / max(rec["total_iterations"], 1),
                                                           f"epoch {rec['epoch']:.0f}/{epochs}"))
        return Control(*_scored(net, ds))

    return jobs.run(_CONTROL, (sel, epochs), compute, "Control: the float model, same extra training",
                    "q_cancel_control")


def qat_panel(sel: Selection, ch: Choices, res: Quantized, quantized_acc: float, n_test: int, cfg_json: str) -> None:
    """QAT's own story: its training curve, which state was kept, the fair comparison with a float model
    given the same extra training, and PTQ of the same setting; each difference with its standard error, paired
    example by example on the one test split, and whether it is beyond the noise (``compare_paired``)."""
    hist = res.history
    fair = qat_control(sel, ch.epochs)
    if fair is not None:
        c = compare_paired(res.right, fair.right)
        st.info(f"**Fair comparison.** QAT trained for {ch.epochs} more epochs. The float model fine-tuned the same "
                f"way (same schedule, seed and best-validation rule, no quantization) scores **{fair.accuracy:.2%}**:"
                f" the QAT model is {gap_words(100 * (quantized_acc - fair.accuracy))} it "
                f"(± {c.se:.2f} points, 1 s.e. of the difference, paired example by example on the {n_test:,} "
                f"test {test_unit(sel.dataset)}s"
                + (f"; within the noise of this test set: {noise_words(n_test, sel.dataset)}" if c.within_noise
                   else "; beyond 2 standard errors")
                + "). Compare with this one, not with the baseline.", icon="⚖️")
    try:
        plain = ptq(sel, cfg_json, ch.calib)
    except ValueError:
        plain = None
    if plain is not None:
        ptq_acc = plain.metrics.accuracy
        c = compare_paired(res.right, plain.right)
        verdict = (f"That is within the noise of this test set ({noise_words(n_test, sel.dataset)}): no measurable "
                   "difference." if c.within_noise else
                   f"That is beyond 2 standard errors: QAT is measurably {c.outcome}.")
        st.info(f"**QAT against PTQ.** Post-training quantization of the same setting scores {ptq_acc:.2%} "
                f"{se_words(ptq_acc, n_test, sel.dataset)}: QAT's gain is **{c.diff:+.2f} ± {c.se:.2f} points** "
                f"(1 s.e. of the difference, paired example by example). {verdict}", icon="⚖️")
    with st.expander("QAT's training curve", expanded=False):
        st.plotly_chart(viz_common.training_curves(hist.records, title=f"QAT fine-tuning, {ch.epochs} epochs"),
                        key="q_qat_curve")
        st.caption(f"QAT ran {hist.iterations} steps and kept the state after step {hist.best_iteration} "
                   "(best validation accuracy; 0 would mean the PTQ start was never beaten).")


def lm_qat_control(sel: Selection, epochs: int) -> tuple[Score, np.ndarray] | None:
    """A language model's fair reference for QAT: the float GPT fine-tuned exactly as QAT fine-tunes
    (``quant.float_control``), scored in bits per character on the test windows (paired with the baseline) and each
    window's; on the heavy-run pool, cached per (baseline, epochs); None if cancelled."""
    def compute(report):
        b, ds, _ = _parts(sel, 0)
        net, _ = float_control(b.model, ds, qat_schedule(sel, epochs), seed=sel.seed,
                               callback=lambda rec: report(rec["iteration"] / max(rec["total_iterations"], 1),
                                                           f"epoch {rec['epoch']:.0f}/{epochs}"))
        lm, windows, _ = score_with_metrics(net, ds, float_summary(sel).windows, "control")
        return lm, windows

    return jobs.run(_CONTROL, (sel, epochs, "bits per character"), compute,
                    "Control: the float model, same extra training", "q_cancel_control")


def _bpc_gap(a: Score, what: str) -> str:
    """E.g. "0.012 ± 0.004 bits per character lower (better) than PTQ, beyond 2 standard errors"."""
    verdict = ("within the noise of these windows" if a.outcome == "no difference"
               else "beyond 2 standard errors")
    return (f"**{a.diff:+.4f} ± {a.diff_se:.4f}** bits per character against {what} (1 s.e. of the difference, paired "
            f"window by window; negative = QAT better), {verdict}")


def lm_qat_panel(sel: Selection, ch: Choices, res: Quantized, cfg_json: str) -> None:
    """``qat_panel`` for a language model: the fair comparison and PTQ of the same setting in bits per character,
    each difference paired over the same test windows, and QAT's training curve."""
    fair = lm_qat_control(sel, ch.epochs)
    if fair is not None:
        c = paired_score(res.windows, fair[1], "qat")
        st.info(f"**Fair comparison.** QAT trained for {ch.epochs} more epochs. The float GPT fine-tuned the same way "
                f"(same schedule, seed and best-validation rule, no quantization) scores **{fair[0].bpc:.3f}** bits "
                f"per character; the QAT model {res.lm.bpc:.3f}: "
                + _bpc_gap(c, "it") + ". Compare with this one, not with the baseline.", icon="⚖️")
    try:
        p = ptq(sel, cfg_json, ch.calib)
    except ValueError:
        p = None
    if p is not None:
        c = paired_score(res.windows, p.windows, "qat")
        st.info(f"**QAT against PTQ.** Post-training quantization of the same setting scores {p.lm.bpc:.3f} bits per "
                f"character: QAT is " + _bpc_gap(c, "PTQ") + ".", icon="⚖️")
    hist = res.history
    with st.expander("QAT's training curve", expanded=False):
        st.plotly_chart(viz_common.training_curves(hist.records, title=f"QAT fine-tuning, {ch.epochs} epochs"),
                        key="q_qat_curve")
        st.caption(f"QAT ran {hist.iterations} steps and kept the state after step {hist.best_iteration} (best "
                   "next-character accuracy on the validation windows; 0 would mean the PTQ start was never beaten). "
                   "Accuracy here is the next character's.")


def curve(sel: Selection, cfg_json: str, calib_size: int, kind: str, act_bits: int | None, epochs: int = 3,
          lsq: bool = True, name: str = "") -> list[dict] | None:
    """Accuracy and size vs bit width: kind "ptq_tensor", "ptq_channel" or "qat" (cached per setting, computed
    on the heavy-run pool). None if this session cancelled it."""
    def compute(report) -> list[dict]:
        b, ds, calib = _parts(sel, calib_size)
        cfg = replace(QuantConfig.from_dict(json.loads(cfg_json)), per_channel=kind != "ptq_tensor")
        bits = QAT_CURVE_BITS if kind == "qat" else CURVE_BITS
        return bits_sweep(b.model, ds, cfg, bits, calib, qat=qat_schedule(sel, epochs) if kind == "qat" else None,
                          lsq=lsq, act_bits=act_bits, seed=sel.seed,
                          callback=lambda f, *rest: report(f, rest[0] if rest else "sweeping bit widths"))

    return jobs.run(_CURVES, (sel, cfg_json, calib_size, kind, act_bits, epochs, lsq), compute,
                    f"Sweeping bit widths: {name or kind}", f"q_cancel_curve_{kind}")


def curves(sel: Selection, plan: CurvePlan, ch: Choices) -> dict[str, list[dict]]:
    """Every curve of ``plan`` (legend name → rows); a cancelled one is left out."""
    series = {}
    for kind, name in plan.kinds:
        rows = curve(sel, plan.config_for(kind).to_json(), ch.calib, kind, plan.act_bits, QAT_CURVE_EPOCHS, ch.lsq,
                     name)
        if rows is not None:
            series[name] = rows
    return series


def scan(sel: Selection, cfg_json: str, calib_size: int, text: bool = False) -> list[dict] | None:
    """Per-layer sensitivity: validation accuracy (a language model: bits per character) with one layer's weights at
    each bit width. The GPT's scan (12 layers × 5 widths, a few seconds each) runs on the heavy-run pool with its
    progress and a Cancel button (None if this session cancelled it); a classifier's is quick and runs here."""
    def compute(report=None) -> list[dict]:
        b, ds, calib = _parts(sel, calib_size)
        cfg = QuantConfig.from_dict(json.loads(cfg_json))
        return bits_sensitivity(b.model, ds, cfg, SCAN_BITS, calib,
                                callback=(lambda f: report(f, "one layer at a time")) if report else None)

    key = (sel, cfg_json, calib_size)
    if text:
        return jobs.run(_SCAN, key, compute, "Scanning each layer at 2–8 bits", "q_cancel_scan")
    return _SCAN.get(key, compute)


@dataclass(frozen=True, eq=False)
class FloatSummary:
    """The float baseline's test metrics and ``model_size`` (shared: never changed); a language model's bits per
    character too, with each test window's (what every quantized result is paired with)."""

    metrics: Metrics
    size: dict
    lm: Score | None = None
    windows: np.ndarray | None = None


def float_summary(sel: Selection) -> FloatSummary:
    def compute() -> FloatSummary:
        m = baseline_of(sel).model
        ds = dataset(sel.dataset, sel.seed)
        if ds.kind == "text":
            lm, windows, metrics = score_with_metrics(m, ds, key="float")
        else:
            lm, windows, metrics = None, None, evaluate(m, ds.x_test, ds.y_test)
        return FloatSummary(metrics=metrics, size=model_size(m), lm=lm, windows=windows)

    return _FLOAT.get(sel, compute)


QAT_ON_GPT = ("QAT fine-tunes the whole GPT with the rounding in the loop (every Linear's weight and input): about a "
              "minute per epoch of the built-in GPT on one core, and as long again for its fair reference, the float "
              "GPT given the same fine-tuning. Both run once per setting on the heavy-run pool and are then cached.")


def lm_curves(sel: Selection, cfg: QuantConfig, ch: Choices, sm: QuantSummary, res: Quantized,
              base: FloatSummary) -> None:
    """A language model's bit-width sweeps (PTQ per tensor and per channel): bits per character against bit width
    and size, each point ± 1 standard error over the test windows."""
    plan = curve_plan(cfg, ch.keep_act8, False)
    series = curves(sel, plan, ch)
    current = {"bits": ch.bits, "bpc": res.lm.bpc, "kb": sm.kb}
    k1, k2 = st.columns(2)
    k1.plotly_chart(viz_quant.bpc_curves(series, base.lm.bpc, "bits", current, title="Bits per character vs bit width"),
                    key="q_curve_bits")
    k2.plotly_chart(viz_quant.bpc_curves(series, base.lm.bpc, "kb", current, float_kb=sm.float_kb,
                                    title="Bits per character vs model size"), key="q_curve_kb")
    st.caption(f"Each point quantizes every Linear layer of the GPT at that bit width with the settings above "
               f"({plan.activation_note}); the embeddings, LayerNorms and the tied head stay float. Lower is better; "
               f"the dashed line is the float model, the star the current setting. Error bars: ± 1 standard error "
               f"over the {base.lm.windows:,} test windows. QAT curves are drawn for the classifiers only: on the "
               "GPT each point would fine-tune the whole model.")


def lm_mixed_precision(sel: Selection, cfg: QuantConfig, ch: Choices, base: FloatSummary) -> None:
    """A language model's per-layer scan in bits per character, the suggested mix and what it scores."""
    rows = scan(sel, scan_config(cfg).to_json(), ch.calib, text=True)
    if rows is None:
        return
    tol = url_widget(st.slider, "q_tol_bpc", 0.05, "Bits per character you are willing to lose", 0.01, 0.5,
                     step=0.01, cast=float, check=lambda v: 0.01 <= v <= 0.5,
                     help="Each layer gets the fewest bits whose own increase in bits per character (validation "
                          "windows) is within this budget ÷ number of layers.")
    suggestion = suggest_bits(rows, tol)
    h1, h2 = st.columns([3, 2])
    h1.plotly_chart(viz_quant.sensitivity_heatmap(rows, dict(suggestion),
                                                  title="Validation bits/char change, one layer quantized (+ = worse)"),
                    key="q_sens_fig")
    try:
        mixed = ptq(sel, mixed_config(cfg, suggestion).to_json(), ch.calib)
    except ValueError as e:
        h2.error(f"The suggested mix cannot be built: {e}")
        return
    h2.dataframe(pd.DataFrame([{"layer": n, "suggested bits": bb} for n, bb in suggestion]), hide_index=True)
    q = mixed.lm
    h2.metric("Mixed-precision bits / char (test)", f"{q.bpc:.3f}", f"{q.diff:+.3f} vs float",
              delta_color="off" if q.outcome == "no difference" else "inverse",
              help=f"± {q.se:.3f} (1 s.e. over the windows); the change from float, paired window by window, is "
                   f"{q.diff:+.4f} ± {q.diff_se:.4f}. Grey: within noise.")
    h2.metric("Mixed-precision size", f"{mixed.size['kb']:.1f} KB",
              f"{mixed.size['ratio']:.1f}× smaller than float", delta_color="off")
    h2.caption("Outlined cells: the suggestion. Activations follow the settings above. The increases were measured "
               "one layer at a time on the validation windows; together, on the test windows, they need not add up "
               "exactly.")


def report_table(report: list[dict], download: dict) -> None:
    """The per-tensor error report as a table, with CSV and JSON (setting + results) downloads."""
    table = pd.DataFrame(report)
    if table.empty:
        return
    show = table[["layer", "tensor", "bits", "granularity", "scheme", "scale", "zero_point", "range_min",
                  "range_max", "clip_fraction", "mse", "sqnr_db"]]
    num = st.column_config.NumberColumn  # formats in the browser: a pandas Styler costs ~15 ms a rerun
    st.dataframe(show, hide_index=True, width="stretch", column_config={
        "scale": num(format="%.4g"), "range_min": num(format="%.4g"), "range_max": num(format="%.4g"),
        "clip_fraction": num(format="percent"), "mse": num(format="%.3g"), "sqnr_db": num(format="%.1f"),
        "zero_point": num(format="%.4g")})
    d1, d2 = st.columns(2)
    d1.download_button("Download the report (CSV)", table.to_csv(index=False), "quantization_report.csv",
                       "text/csv", key="q_dl_csv")
    d2.download_button("Download setting + results (JSON)", json.dumps(download, indent=1, default=str),
                       "quantization.json", "application/json", key="q_dl_json")


def decision_boundaries(ds, float_model, qmodel, quant_title: str) -> None:
    """2-D data only: the float and the quantized model's decision boundaries side by side."""
    b1, b2 = st.columns(2)
    xt, yt = ds.x_test.numpy(), ds.y_test.numpy()
    b1.plotly_chart(viz_common.decision_boundary(viz_common.model_predictor(float_model), xt, yt, list(ds.class_names),
                                          title="Float model"), key="q_db_float")
    b2.plotly_chart(viz_common.decision_boundary(viz_common.model_predictor(qmodel), xt, yt, list(ds.class_names),
                                          title=quant_title), key="q_db_quant")


def about() -> None:
    """Static: why lower precision, how S and Z are found, PTQ vs QAT, batch norm, published results."""
    st.header("How it works")
    explainer("Why lower precision?", (
        "- **Memory and bandwidth:** an 8-bit weight is 4× smaller than float32; a DRAM read costs hundreds of times "
        "the energy of an 8-bit add (Horowitz, ISSCC 2014), so moving fewer bytes matters most.\n"
        "- **Integer arithmetic:** int8 multipliers are far smaller and cheaper than float32 ones; products are summed "
        "in int32 and rescaled by an integer multiply and a shift (Jacob et al. 2018)."), expanded=True)
    explainer("How are S and Z found?", (
        "Pick a range [min, max] (**calibration**: min-max, a moving average over batches, a percentile, the range "
        "that minimises the MSE, or the one that minimises the KL divergence between the histograms). Extend it to "
        "include 0. Then **S = (max − min) / (qmax − qmin)** and **Z = qmin − round(min / S)**, so that real 0 is "
        "exactly the integer Z (zero padding and ReLU stay exact). Symmetric: **S = max(|min|, |max|) / ((qmax − "
        "qmin)/2)**, Z = 0. Quantize with **q = clamp(round(r / S) + Z, qmin, qmax)**; the error inside the range "
        "is at most S/2, values outside are clipped. A wide range means few clipped values but coarse steps; a "
        "narrow one the reverse."))
    explainer("PTQ or QAT — and how do you train a quantized model?", (
        "**Post-training quantization (PTQ)** rounds a trained network: no training, a few hundred calibration "
        "examples. It is nearly free at 8 bits and breaks down at 2–4 bits.\n\n"
        "**Quantization-aware training (QAT)** fine-tunes with the rounding in the forward pass. Rounding has zero "
        "gradient almost everywhere, so the backward pass uses the **straight-through estimator**: it treats "
        "round() as the identity inside the range and blocks the gradient of clipped values. The float weights keep "
        "receiving small updates that eventually move them across a rounding boundary. **LSQ** (Esser et al. 2020) "
        "also learns each scale S by gradient descent."))
    st.plotly_chart(viz_quant.straight_through(compute_qparams(-1.0, 1.0, bits=3), title="The straight-through "
                                          "estimator on a 3-bit grid over [−1, 1]"), key="q_ste_fig")
    st.caption("Left: what the forward pass computes. Right: the gradient the backward pass uses, read off this "
               "lab's own fake-quantizer with autograd — 1 wherever a value rounds onto the grid, 0 where it is "
               "clipped (shaded). The staircase's true derivative is 0 almost everywhere, which would stop learning.")
    explainer("Batch norm?", (
        "Networks with batch norm fold it into the preceding layer before quantizing: W' = W·γ/σ, b' = (b − μ)·γ/σ + β "
        "(Jacob et al. 2018), so only one weight tensor is quantized. The models in this lab have no batch norm, so "
        "there is nothing to fold; `compress_core.quant.fold_batchnorm` does it (tested) for models that do."))
    st.subheader("Published results")
    st.plotly_chart(viz_quant.published_whitepaper(), key="q_published_fig")
    published("Krishnamoorthi 2018, “Quantizing deep convolutional networks for efficient inference: a whitepaper”",
              "8-bit weights, PTQ — MobileNet-v1: per-layer 0.1 %, per-channel 59.1 % (symmetric) / 70.4 % "
              "(asymmetric), float 70.9 %; ResNet-v1-50: 75.0 / 75.1 / 75.2 %, float 75.2 %. With 4-bit weights (chart "
              "above) post-training quantization fails on both networks, per layer and, for MobileNet, per channel "
              "too (0.1 %); only per-channel QAT keeps a usable network: 73.2 % against 75.2 % for ResNet-v1-50, "
              "65 % against 70.9 % for MobileNet-v1. About 100 mini-batches suffice for calibration.")
    published("Jacob et al. 2018, “Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
              "Inference”",
              "r = S(q − Z); ResNet-50 on ImageNet 76.4 % in float → 74.9 % with integer-only 8-bit inference.")
    st.caption("Published figures are ImageNet results on large networks; ours are small networks on small data sets. "
               "Compare the shape (at 4 bits, training with the rounding in the loop is what rescues accuracy), not "
               "the digits.")


def lm_metrics_row(res: Quantized, base: FloatSummary, sm: QuantSummary, cfg: QuantConfig, ch: Choices) -> None:
    """A language model's headline numbers: bits per character of the float and the quantized model on the same
    test windows, each ± 1 standard error over the windows, the change paired window by window (whose standard
    error is far smaller: each window's own difficulty cancels), size and compression."""
    f, q = base.lm, res.lm
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Float bits / char", f"{f.bpc:.3f}",
              help=f"The trained GPT on the {f.windows:,} held-out test windows: {f.bpc:.3f} ± {f.se:.3f} bits per "
                   "character (1 s.e. over the windows). Lower is better.")
    m2.metric("Quantized bits / char", f"{q.bpc:.3f}", f"{q.diff:+.3f}",
              delta_color="off" if q.outcome == "no difference" else "inverse",
              help=f"The fake-quantized GPT on the same windows, {q.bpc:.3f} ± {q.se:.3f}. The change from float is "
                   f"{q.diff:+.4f} ± {q.diff_se:.4f} bits per character (1 s.e. of the paired difference)"
                   + ("; within noise (grey)." if q.outcome == "no difference" else ", beyond 2 standard errors."))
    m3.metric("Model size", f"{sm.kb:.1f} KB", f"{sm.kb_delta:+.1f} KB", delta_color="inverse",
              help="Linear weights at their bit width + scales, zero points and biases; float32 for the embeddings "
                   "(the tied output head reads them), the LayerNorms and anything not quantized.")
    m4.metric("Compression", f"{sm.ratio:.1f}×", help=f"Float32 model: {sm.float_kb:.1f} KB.")
    verdict = ("within the noise of these windows" if q.outcome == "no difference"
               else f"beyond 2 standard errors: measurably {q.outcome}")
    st.caption(f"Current setting: {describe(cfg)} · {ch.caption()}. Bits per character on the {f.windows:,} test "
               f"windows (± 1 s.e.): float {f.bpc:.3f} ± {f.se:.3f}, quantized {q.bpc:.3f} ± {q.se:.3f}; the change, "
               f"paired window by window, is {q.diff:+.4f} ± {q.diff_se:.4f}, {verdict}. Next character right: "
               f"{res.metrics.accuracy:.2%} (float {base.metrics.accuracy:.2%}). Every Linear layer of the blocks "
               "is quantized (weights, and with activations its input); the embeddings, which the tied output head "
               "reads too, the LayerNorms and attention's softmax stay float32.")


def metrics_row(sm: QuantSummary, cfg: QuantConfig, ch: Choices, n_test: int, dataset_name: str) -> None:
    """The page's four headline metrics, each accuracy with its standard error, and the setting in words."""
    def se(acc: float) -> str:
        return se_words(acc, n_test, dataset_name)

    vs = sm.vs_float
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Float accuracy", f"{sm.float_accuracy:.2%}",
              help=f"The baseline on the test set, {se(sm.float_accuracy)}.")
    m2.metric("Quantized accuracy", f"{sm.accuracy:.2%}", f"{sm.accuracy_delta_pts:+.2f} pts",
              delta_color="off" if vs.within_noise else "normal",
              help=f"The fake-quantized model on the same test set, {se(sm.accuracy)}. The change "
                   f"from float is {vs.diff:+.2f} ± {vs.se:.2f} points (1 s.e.)"
                   + ("; within noise (grey)." if vs.within_noise else ", beyond 2 standard errors."))
    m3.metric("Model size", f"{sm.kb:.1f} KB", f"{sm.kb_delta:+.1f} KB", delta_color="inverse",
              help="Weights at their bit width + scales, zero points and biases; float32 for anything not quantized. "
                   "The Integer inference page stores biases as int32 and adds each layer's fixed-point rescale "
                   "(M0 and its shift), so its count is a few hundred bytes different for the same model.")
    m4.metric("Compression", f"{sm.ratio:.1f}×", help=f"Float32 model: {sm.float_kb:.1f} KB.")
    st.caption(f"Current setting: {describe(cfg)} · {ch.caption()}. Test accuracy "
               f"{se(sm.accuracy)}; the change from float "
               + (f"is within the noise of this test set ({noise_words(n_test, dataset_name)})."
                  if vs.within_noise else f"({vs.diff:+.2f} ± {vs.se:.2f} points) is beyond 2 standard errors."))


def setting_notes(cfg: QuantConfig, ch: Choices, text: bool) -> None:
    """What the chosen settings mean where they surprise: 1-bit affine grids, QAT's cost on the GPT, moving-average
    ranges for weights."""
    if ch.bits == 1:
        st.warning("1 bit leaves two levels, and the affine scheme must keep real 0 exact: the grid is {0, S} or "
                   "{−S, 0}, so half the signs are lost. Binary networks use {−α, +α} instead, which is not affine.")
    if text and ch.mode == "qat":
        st.caption(QAT_ON_GPT)
    if ch.method == "moving_average" and cfg.quantize_weights:
        st.caption("Moving-average min-max needs a stream of batches: for weights (a single tensor) it is min-max.")
