"""Quantization: store each number as r = S·(q − Z) in a few bits, and see what it costs the network.

Controls read here; quantization, calibration, QAT and reports come from compress_core (quant, calibration,
qat, quant_analysis); figures from compress_core.viz.quant; caching in ui/quant.py.
"""
import json
import math
from dataclasses import replace

import pandas as pd
import streamlit as st
import torch

from compress_core.quant import (
    METHOD_LABELS,
    METHODS,
    QuantConfig,
    collect_activations,
    dequantize,
    fake_quantize,
    quant_layers,
    quantize,
    sqnr_db,
    suggest_bits,
    weight_qparams_for,
)
from compress_core.viz import common as viz
from compress_core.viz import quant as qviz
from ui import quant as cache
from ui.explain import explainer, published
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import remember, to_bool, url_value

BITS = [1, 2, 3, 4, 5, 6, 7, 8, 16]
TARGETS = {"weights": "Weights", "activations": "Activations", "both": "Both"}
MODES = {"ptq": "PTQ (post-training)", "qat": "QAT (fine-tune)"}

sel = selection()
ds = dataset(sel.dataset, sel.seed)
b = baseline(sel)
key = sel.key
float_info = cache.float_summary(key)
layer_names = [n for n, m in b.model.named_children() if hasattr(m, "weight")]

st.title("🔢 Quantization")
st.markdown("Store every weight and activation as a small integer **q** with a shared scale **S** and zero point "
            "**Z**: the real value is **r = S·(q − Z)**. Fewer bits mean a smaller, faster model — and rounding "
            "error. Move the controls and watch the grid, the error and the accuracy.")

# --- Controls (seeded from the URL so a link restores the view) ------------------------------------------
url_value("q_bits", 8, cast=int, allowed=BITS)
url_value("q_scheme", "symmetric", allowed=["symmetric", "asymmetric"])
url_value("q_gran", "per channel", allowed=["per tensor", "per channel"])
url_value("q_method", "minmax", allowed=list(METHODS))
url_value("q_target", "both", allowed=list(TARGETS))
url_value("q_mode", "ptq", allowed=list(MODES))
url_value("q_act8", True, cast=to_bool)
url_value("q_calib", 256, cast=int, check=lambda v: 1 <= v <= 1024)
url_value("q_pct", 99.99, cast=float, allowed=[99.0, 99.9, 99.99, 99.999])
url_value("q_narrow", False, cast=to_bool)
url_value("q_lsq", True, cast=to_bool)
url_value("q_epochs", 3, cast=int, check=lambda v: 1 <= v <= 20)
url_value("q_layer", layer_names[0], allowed=layer_names)
url_value("q_qatcurve", True, cast=to_bool)


@st.fragment
def live_view():
    c1, c2, c3 = st.columns([2, 1, 1])
    c1.select_slider("Bit width", BITS, key="q_bits",
                     help="Bits per stored number: 2^b levels. 8 is the industry standard; 16 is nearly lossless.")
    c2.radio("Scheme", ["symmetric", "asymmetric"], key="q_scheme", horizontal=True,
             help="Symmetric: Z = 0 and the grid is centred on zero. Asymmetric: the grid covers [min, max] exactly.")
    c3.radio("Granularity", ["per tensor", "per channel"], key="q_gran", horizontal=True,
             help="One (S, Z) for the whole weight tensor, or one per output channel.")
    c1, c2, c3 = st.columns([2, 1, 1])
    c1.selectbox("Calibration (range setting)", list(METHODS), key="q_method", format_func=METHOD_LABELS.get,
                 help="How the clipping range [min, max] is chosen, for weights and activations alike.")
    c2.radio("Quantize", list(TARGETS), key="q_target", format_func=TARGETS.get, horizontal=True,
             help="Weights only, activations only, or both (what integer hardware needs).")
    c3.radio("Method", list(MODES), key="q_mode", format_func=MODES.get, horizontal=True,
             help="PTQ rounds a trained network. QAT fine-tunes with rounding in the loop (straight-through estimator).")
    with st.expander("More settings: activation bits, calibration set, percentile, narrow range, QAT"):
        a1, a2, a3 = st.columns(3)
        a1.toggle("Keep activations at 8 bits", key="q_act8",
                  help="With 'Both': activations stay 8-bit while the weights use the bit width above (e.g. W4A8).")
        a1.toggle("Narrow range (weights)", key="q_narrow",
                  help="Drop the lowest code (−127..127 at 8 bits) so the symmetric grid is exactly symmetric.")
        a2.slider("Calibration examples", 1, 1024, key="q_calib",
                  help="Training inputs used to observe activation ranges. Krishnamoorthi (2018): ~100 batches suffice.")
        a2.select_slider("Percentile", [99.0, 99.9, 99.99, 99.999], key="q_pct",
                         help="For the percentile method: the range keeps this share of values; the tails are clipped.")
        a3.toggle("Learn the step size (LSQ)", key="q_lsq",
                  help="QAT: train the scales too (Esser et al. 2020) instead of following min-max ranges.")
        a3.slider("QAT epochs", 1, 20, key="q_epochs", help="Fine-tuning epochs for QAT, at half the baseline's learning rate.")
    remember("q_bits", "q_scheme", "q_gran", "q_method", "q_target", "q_mode", "q_act8", "q_calib", "q_pct",
             "q_narrow", "q_lsq", "q_epochs")

    ss = st.session_state
    bits, target = int(ss.q_bits), ss.q_target
    act_bits = 8 if (target == "both" and ss.q_act8) else bits
    sym = ss.q_scheme == "symmetric"
    try:
        cfg = QuantConfig(target=target, weight_bits=bits, act_bits=act_bits, weight_symmetric=sym, act_symmetric=sym,
                          per_channel=ss.q_gran == "per channel", narrow_range=bool(ss.q_narrow),
                          weight_method=ss.q_method, act_method=ss.q_method, percentile=float(ss.q_pct))
    except ValueError as e:
        st.error(f"These settings do not make a valid quantizer: {e} Change the bit width or turn off narrow range.")
        return
    if bits == 1:
        st.warning("1 bit leaves two levels, and the affine scheme must keep real 0 exact: the grid is {0, S} or "
                   "{−S, 0}, so half the signs are lost. Binary networks use {−α, +α} instead, which is not affine.")
    if ss.q_method == "moving_average" and cfg.quantize_weights:
        st.caption("Moving-average min-max needs a stream of batches: for weights (a single tensor) it is min-max.")
    cfg_json = cfg.to_json()
    calib_n = int(ss.q_calib)
    try:
        if ss.q_mode == "qat":
            box = st.status("Quantization-aware training…", expanded=False)
            bar = box.progress(0.0)
            res = cache.qat(key, cfg_json, calib_n, int(ss.q_epochs), bool(ss.q_lsq),
                            progress=lambda f, t: bar.progress(f, text=t))
            hist = res["history"]
            box.update(label=f"QAT done: {hist.iterations} steps; kept the state after step {hist.best_iteration} "
                             "(best validation accuracy)", state="complete")
        else:
            res = cache.ptq(key, cfg_json, calib_n)
    except ValueError as e:
        st.error(f"Cannot quantize this model: {e}")
        return
    qmodel, qm, size, report = res["model"], res["metrics"], res["size"], res["report"]
    fm, fsize = float_info["metrics"], float_info["size"]

    # --- Metrics ---------------------------------------------------------------------------------------
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Float accuracy", f"{fm.accuracy:.2%}", help="The baseline on the test set.")
    m2.metric("Quantized accuracy", f"{qm.accuracy:.2%}", f"{100 * (qm.accuracy - fm.accuracy):+.2f} pts",
              help="The fake-quantized model on the same test set.")
    m3.metric("Model size", f"{size['kb']:.1f} KB", f"{size['kb'] - fsize['kb']:+.1f} KB", delta_color="inverse",
              help="Weights at their bit width + scales, zero points and biases; float32 for anything not quantized.")
    m4.metric("Compression", f"{size['ratio']:.1f}×", help=f"Float32 model: {fsize['kb']:.1f} KB.")
    desc = (f"weights {cfg.weight_bits}-bit {'per channel' if cfg.per_channel else 'per tensor'}"
            if cfg.quantize_weights else "weights float") + " · " + \
           (f"activations {cfg.act_bits}-bit" if cfg.quantize_activations else "activations float")
    st.caption(f"Current setting: {desc} · {ss.q_scheme} · {METHOD_LABELS[ss.q_method]} calibration on "
               f"{calib_n} examples · {MODES[ss.q_mode]}.")

    # --- The grid on the data --------------------------------------------------------------------------
    st.header("1 · The quantization grid on the data")
    layer = st.selectbox("Layer", layer_names, key="q_layer", help="Which layer's numbers to look at.")
    remember("q_layer")
    ql = dict(quant_layers(qmodel))[layer]
    if ql.weight_qparams is not None:
        values, qp, what = ql.weight, ql.weight_qparams, "weights"
    else:
        acts = collect_activations(qmodel, ds.x_train[:calib_n])
        values, qp, what = torch.cat(acts[layer]), ql.output_qparams, "output activations"
    channel = None
    if qp.per_channel:
        w2 = values.detach().reshape(values.shape[0], -1)
        widest = int((w2.amax(1) - w2.amin(1)).argmax())
        channel = int(st.number_input(f"Output channel (0–{values.shape[0] - 1}; the widest is {widest})", 0,
                                      values.shape[0] - 1, widest, key=f"q_ch_{layer}",
                                      help="Per-channel quantization gives each channel its own grid."))
        shown, qp_shown = values.detach()[channel], qviz.channel_qparams(qp, channel)
        label = f"{layer} {what}, channel {channel}"
    else:
        shown, qp_shown, label = values.detach(), qp, f"{layer} {what}"
    g1, g2 = st.columns(2)
    with g1:
        st.plotly_chart(qviz.weight_grid(shown, qp_shown, title=label), key="q_grid_fig")
        st.caption("Grey: the float values. Dotted red: the representable levels S·(q − Z) (drawn up to 256). "
                   "Red stems: how many values land on each level. Shaded red: clipped. Drag to zoom.")
    with g2:
        st.plotly_chart(qviz.staircase(qp_shown, float(shown.min()), float(shown.max()), title="The mapping r → q → r̂"),
                        key="q_stair_fig")
        r = float(shown.reshape(-1)[0])
        q = int(quantize(torch.tensor([r]), qp_shown))
        s, z = float(qp_shown.scale), int(qp_shown.zero_point)
        st.markdown(f"Example, the first value: r = {r:.5f} → q = clamp(round({r:.5f} / {s:.5g}) + {z}) = **{q}** → "
                    f"r̂ = {s:.5g}·({q} − {z}) = **{float(dequantize(torch.tensor([q]), qp_shown)):.5f}**.")

    # --- Per-channel ranges ----------------------------------------------------------------------------
    st.header("2 · Why per-channel helps")
    w = ql.weight.detach()
    layer_bits = cfg.bits_for(layer)
    pt, pc = (weight_qparams_for(w, replace(cfg, per_channel=pc), layer_bits) for pc in (False, True))
    s_pt, s_pc = sqnr_db(w, fake_quantize(w, pt)), sqnr_db(w, fake_quantize(w, pc))
    p1, p2 = st.columns([3, 1])
    p1.plotly_chart(qviz.channel_ranges(w, pc, pt, title=f"{layer}: weight range of each output channel"),
                    key="q_channels_fig")
    p2.metric(f"SQNR per tensor ({layer_bits} bits)", "exact" if math.isinf(s_pt) else f"{s_pt:.1f} dB")
    p2.metric("SQNR per channel", "exact" if math.isinf(s_pc) else f"{s_pc:.1f} dB",
              None if math.isinf(s_pt) or math.isinf(s_pc) else f"{s_pc - s_pt:+.1f} dB")
    p2.caption("One shared grid must stretch to the widest channel, so narrow channels get only a few levels. "
               "Green diamonds: how much finer each channel's own grid is.")

    # --- Error per layer -------------------------------------------------------------------------------
    st.header("3 · Error per layer")
    st.plotly_chart(qviz.layer_errors(report, title="Quantization error of every quantized tensor"), key="q_err_fig")
    table = pd.DataFrame(report)
    if not table.empty:
        show = table[["layer", "tensor", "bits", "granularity", "scheme", "scale", "zero_point", "range_min",
                      "range_max", "clip_fraction", "mse", "sqnr_db"]]
        st.dataframe(show.style.format({"scale": "{:.4g}", "range_min": "{:.4g}", "range_max": "{:.4g}",
                                        "clip_fraction": "{:.2%}", "mse": "{:.3g}", "sqnr_db": "{:.1f}",
                                        "zero_point": "{:.4g}"}), hide_index=True, width="stretch")
        d1, d2 = st.columns(2)
        d1.download_button("Download the report (CSV)", table.to_csv(index=False), "quantization_report.csv",
                           "text/csv", key="q_dl_csv")
        d2.download_button("Download setting + results (JSON)", json.dumps(
            {"selection": sel.as_query(), "config": cfg.to_dict(), "mode": ss.q_mode, "calibration_examples": calib_n,
             "float_accuracy": fm.accuracy, "quantized_accuracy": qm.accuracy, "size_kb": size["kb"],
             "float_kb": fsize["kb"], "layers": report}, indent=1, default=str), "quantization.json",
            "application/json", key="q_dl_json")
    if ds.kind == "points":
        b1, b2 = st.columns(2)
        xt, yt = ds.x_test.numpy(), ds.y_test.numpy()
        b1.plotly_chart(viz.decision_boundary(viz.model_predictor(b.model), xt, yt, list(ds.class_names),
                                              title="Float model"), key="q_db_float")
        b2.plotly_chart(viz.decision_boundary(viz.model_predictor(qmodel), xt, yt, list(ds.class_names),
                                              title=f"Quantized ({desc})"), key="q_db_quant")

    # --- Curves ----------------------------------------------------------------------------------------
    st.header("4 · Accuracy against bits and size")
    act_curve = 8 if (target == "both" and ss.q_act8) else None
    base_cfg = replace(cfg, weight_bits=8, act_bits=8, layer_bits=()).to_json()
    series = {}
    prog = st.progress(0.0, text="Sweeping bit widths…")
    st.toggle("Include the QAT curve (fine-tunes one model per bit width, then cached)", key="q_qatcurve")
    remember("q_qatcurve")
    kinds = [("ptq_tensor", "PTQ per tensor"), ("ptq_channel", "PTQ per channel"), ("qat", "QAT per channel")]
    if not cfg.quantize_weights:
        kinds = [("ptq_channel", "PTQ"), ("qat", "QAT")]
    if not ss.q_qatcurve:
        kinds = kinds[:-1]
    # QAT retrains one model per bit width: its curve uses one fixed recipe (symmetric per-channel weights,
    # min-max) so that changing the scheme or calibration method does not retrain it
    qat_cfg = QuantConfig(target=target).to_json()
    for i, (kind, name) in enumerate(kinds):
        series[name] = cache.curve(key, qat_cfg if kind == "qat" else base_cfg, calib_n, kind, act_curve,
                                   cache.QAT_CURVE_EPOCHS, bool(ss.q_lsq),
                                   progress=lambda f, i=i, name=name: prog.progress(
                                       min(1.0, (i + f) / len(kinds)), text=f"Sweeping: {name}…"))
    prog.empty()
    current = {"bits": bits, "accuracy": qm.accuracy, "kb": size["kb"]}
    k1, k2 = st.columns(2)
    k1.plotly_chart(qviz.accuracy_curves(series, fm.accuracy, "bits", current, title="Test accuracy vs bit width"),
                    key="q_curve_bits")
    k2.plotly_chart(qviz.accuracy_curves(series, fm.accuracy, "kb", current, float_kb=fsize["kb"],
                                         title="Test accuracy vs model size"), key="q_curve_kb")
    st.caption(f"Each point quantizes the whole model at that bit width with the settings above "
               f"({'activations at 8 bits' if act_curve else 'activations at the same width' if cfg.quantize_activations else 'weights only'}). "
               + (f"QAT: {cache.QAT_CURVE_EPOCHS} epochs of fine-tuning per point{' with LSQ' if ss.q_lsq else ''}, "
                  "always from symmetric per-channel min-max ranges (so it is trained once per model). "
                  if ss.q_qatcurve else "") + "The star is the current setting.")

    # --- Mixed precision -------------------------------------------------------------------------------
    st.header("5 · Mixed precision: which layers tolerate fewer bits?")
    scan_cfg = replace(cfg, target="weights", weight_bits=8, act_bits=8, layer_bits=()).to_json()
    with st.spinner("Scanning each layer at 2–8 bits…"):
        rows = cache.scan(key, scan_cfg, calib_n)
    url_value("q_tol", 1.0, cast=float, check=lambda v: 0.1 <= v <= 10.0)
    tol = st.slider("Accuracy you are willing to lose (points)", 0.1, 10.0, step=0.1, key="q_tol",
                    help="Each layer gets the fewest bits whose own drop is within this budget ÷ number of layers.")
    remember("q_tol")
    suggestion = suggest_bits(rows, tol)
    h1, h2 = st.columns([3, 2])
    h1.plotly_chart(qviz.sensitivity_heatmap(rows, dict(suggestion), title="Validation accuracy drop with only "
                                             "that layer's weights quantized"), key="q_sens_fig")
    try:
        mixed_cfg = replace(cfg, layer_bits=suggestion, target="both" if cfg.quantize_activations else "weights")
        mixed = cache.ptq(key, mixed_cfg.to_json(), calib_n)
    except ValueError as e:
        h2.error(f"The suggested mix cannot be built: {e}")
        return
    h2.dataframe(pd.DataFrame([{"layer": n, "suggested bits": bb} for n, bb in suggestion]), hide_index=True)
    h2.metric("Mixed-precision accuracy (test)", f"{mixed['metrics'].accuracy:.2%}",
              f"{100 * (mixed['metrics'].accuracy - fm.accuracy):+.2f} pts vs float")
    h2.metric("Mixed-precision size", f"{mixed['size']['kb']:.1f} KB", f"{mixed['size']['ratio']:.1f}× smaller than float",
              delta_color="off")
    h2.caption("Outlined cells: the suggestion. Activations follow the settings above. The drops were measured one "
               "layer at a time on the validation set; together, on the test set, they need not add up exactly.")


live_view()

# --- Explainer and published figures ------------------------------------------------------------------
st.header("6 · How it works")
explainer("Why lower precision?", (
    "- **Memory and bandwidth:** an 8-bit weight is 4× smaller than float32; a DRAM read costs hundreds of times "
    "the energy of an 8-bit add (Horowitz, ISSCC 2014), so moving fewer bytes matters most.\n"
    "- **Integer arithmetic:** int8 multipliers are far smaller and cheaper than float32 ones; products are summed "
    "in int32 and rescaled by an integer multiply and a shift (Jacob et al. 2018)."), expanded=True)
explainer("How are S and Z found?", (
    "Pick a range [min, max] (**calibration**: min-max, a moving average over batches, a percentile, the range that "
    "minimises the MSE, or the one that minimises the KL divergence between the histograms). Extend it to include 0. "
    "Then **S = (max − min) / (qmax − qmin)** and **Z = qmin − round(min / S)**, so that real 0 is exactly the "
    "integer Z (zero padding and ReLU stay exact). Symmetric: **S = max(|min|, |max|) / ((qmax − qmin)/2)**, Z = 0. "
    "Quantize with **q = clamp(round(r / S) + Z, qmin, qmax)**; the error inside the range is at most S/2, values "
    "outside are clipped. A wide range means few clipped values but coarse steps; a narrow one the reverse."))
explainer("PTQ or QAT — and how do you train a quantized model?", (
    "**Post-training quantization (PTQ)** rounds a trained network: no training, a few hundred calibration "
    "examples. It is nearly free at 8 bits and breaks down at 2–4 bits.\n\n"
    "**Quantization-aware training (QAT)** fine-tunes with the rounding in the forward pass. Rounding has zero "
    "gradient almost everywhere, so the backward pass uses the **straight-through estimator**: it treats "
    "round() as the identity inside the range and blocks the gradient of clipped values. The float weights keep "
    "receiving small updates that eventually move them across a rounding boundary. **LSQ** (Esser et al. 2020) "
    "also learns each scale S by gradient descent."))
explainer("Batch norm?", (
    "Networks with batch norm fold it into the preceding layer before quantizing: W' = W·γ/σ, b' = (b − μ)·γ/σ + β "
    "(Jacob et al. 2018), so only one weight tensor is quantized. The models in this lab have no batch norm, so "
    "there is nothing to fold; `compress_core.quant.fold_batchnorm` does it (tested) for models that do."))
st.subheader("Published results")
st.plotly_chart(qviz.published_whitepaper(), key="q_published_fig")
published("Krishnamoorthi 2018, “Quantizing deep convolutional networks for efficient inference: a whitepaper”",
          "8-bit weights, PTQ — MobileNet-v1: per-layer 0.1 %, per-channel 59.1 % (symmetric) / 70.4 % (asymmetric), "
          "float 70.9 %; ResNet-v1-50: 75.0 / 75.1 / 75.2 %, float 75.2 %. With 4-bit weights only per-channel QAT "
          "stays close to float (chart above). About 100 mini-batches suffice for calibration.")
published("Jacob et al. 2018, “Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
          "Inference”", "r = S(q − Z); ResNet-50 on ImageNet 76.4 % in float → 74.9 % with integer-only 8-bit inference.")
st.caption("Published figures are ImageNet results on large networks; ours are small networks on small data sets. "
           "Compare the shape (per-channel and QAT rescue low bit widths), not the digits.")
