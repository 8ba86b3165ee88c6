"""Quantization: store each number as r = S·(q − Z) in a few bits, and see what it costs the network.

Controls and cached work live in ui/quant.py; quantization, calibration, QAT and the numbers shown come from
compress_core.quant (report: the config, summaries, the widest channel, per-tensor vs per-channel SQNR);
figures from compress_core.viz.quant.
"""
from dataclasses import replace

import pandas as pd
import streamlit as st

from compress_core.layer_inputs import layers_of
from compress_core.quant import QuantConfig, quant_layers, suggest_bits
from compress_core.quant import report as qr
from compress_core.quant.report import QuantSummary
from compress_core.viz import quant as viz_quant
from ui.loaders import baseline, dataset
from ui.sidebar import lesson_switch, selection
from ui.state import to_bool, url_widget, view_tabs
from ui.topics import quant as ui_quant
from ui.topics import quant_recover as ui_quant_recover

sel = selection()
ds = dataset(sel.dataset, sel.seed)
text = ds.kind == "text"  # the GPT: bits per character, every nested Linear quantized (weights and inputs)
b = baseline(sel)
n_test = len(ds.y_test)
unit = qr.test_unit(sel.dataset)  # "image" or "example"
float_info = ui_quant.float_summary(sel)
layer_names = [n for n, _ in layers_of(b.model)]  # nested ones too: block1.attn.q, block1.mlp.fc, …

st.title("🔢 Quantization")
st.markdown("Store every weight and activation as a small integer **q** with a shared scale **S** and zero point "
            "**Z**: the real value is **r = S·(q − Z)**. Fewer bits mean a smaller, faster model — and rounding "
            "error. Move the controls and watch the grid, the error and the accuracy.")
lesson_switch(sel, "mnist1d", "cnn", "A small network on easy data shrugs off rounding (on digits, even 2-bit "
              "weights lose little). MNIST-1D's CNN shows the textbook picture — post-training quantization collapsing "
              "at 2–3 bits and quantization-aware training winning it back (the 'Accuracy vs bits and size' tab).",
              "q_lesson")


def se(acc: float) -> str:
    """E.g. "± 0.7 pts (1 s.e., 360 test images)"."""
    return qr.se_words(acc, n_test, sel.dataset)


def grid(rkey: tuple, qmodel, calib_n: int, layer: str) -> None:
    """The chosen layer's values on the quantization grid, and the staircase r → q → r̂ (of result ``rkey``)."""
    t = ui_quant.layer_view(rkey, qmodel, ds.x_train[:calib_n], layer)
    channel = None
    if t.per_channel:
        widest = t.widest_channel
        n = t.channels
        channel = int(url_widget(st.number_input, f"q_ch_{layer}", widest,
                                 f"Output channel (0–{n - 1}; the widest is {widest})", 0, n - 1, cast=int,
                                 check=lambda v: 0 <= v < n, help="Per-channel quantization gives each channel its "
                                                                  "own grid."))
        t = t.channel(channel)
    st.plotly_chart(ui_quant.grid_figure(rkey, t, layer, channel), key="q_grid_fig")
    st.caption("**Top**, the values on the grid. Grey: the float values (left axis). Dotted red: the representable "
               "levels S·(q − Z), drawn up to 64 (above, the blue band stands for them). Red stems: how many values "
               "land on each level (the red scale on the right). Blue band: values that round onto the grid, up to "
               "half a step past the end levels; shaded red: clipped. **Below**, on the same value axis, the mapping "
               "r → q → r̂ that sends each value to its level, with the integer codes q on the right. Drag to zoom.")
    ex = qr.round_trip(float(t.values.reshape(-1)[0]), t.qparams)
    st.markdown(f"Example, the first value: r = {ex.r:.5f} → q = clamp(round({ex.r:.5f} / {ex.scale:.5g}) + "
                f"{ex.zero_point}) = **{ex.q}** → r̂ = {ex.scale:.5g}·({ex.q} − {ex.zero_point}) = "
                f"**{ex.r_hat:.5f}**.")


def per_channel(qmodel, cfg: QuantConfig, layer: str) -> None:
    w = dict(quant_layers(qmodel))[layer].weight.detach()
    cmp = qr.compare_granularity(w, cfg, cfg.bits_for(layer))
    p1, p2 = st.columns([3, 1])
    p1.plotly_chart(viz_quant.channel_ranges(w, cmp.per_channel, cmp.per_tensor,
                                        title=f"{layer}: weight range of each output channel"), key="q_channels_fig")
    p2.metric("SQNR per tensor", qr.format_db(cmp.sqnr_tensor_db),
              help=f"Signal-to-quantization-noise ratio of this layer's weights at {cmp.bits} bits, one grid for all.")
    p2.metric("SQNR per channel", qr.format_db(cmp.sqnr_channel_db),
              None if cmp.gain_db is None else f"{cmp.gain_db:+.1f} dB")
    p2.caption("One shared grid must stretch to the widest channel, so narrow channels get only a few levels. "
               "Green diamonds: how much finer each channel's own grid is.")


def errors(res: dict, cfg: QuantConfig, ch: ui_quant.Choices, sm: QuantSummary) -> None:
    report = res.report
    st.plotly_chart(viz_quant.layer_errors(report, title="Quantization error of every quantized tensor"),
                    key="q_err_fig")
    ui_quant.report_table(report, {
        "selection": sel.as_query(), "config": cfg.to_dict(), "mode": ch.mode, "calibration_examples": ch.calib,
        "float_accuracy": sm.float_accuracy, "quantized_accuracy": sm.accuracy, "size_kb": sm.kb,
        "float_kb": sm.float_kb, "layers": report})
    if ds.kind == "points":
        ui_quant.decision_boundaries(ds, b.model, res.model, f"Quantized ({qr.describe(cfg)})")


def curves(cfg: QuantConfig, ch: ui_quant.Choices, sm: QuantSummary, res: ui_quant.Quantized) -> None:
    if text:
        return ui_quant.lm_curves(sel, cfg, ch, sm, res, float_info)
    with_qat = url_widget(st.toggle, "q_qatcurve", True,
                          "Include the QAT curve (fine-tunes one model per bit width, then cached)", cast=to_bool)
    plan = qr.curve_plan(cfg, ch.keep_act8, bool(with_qat))
    series = ui_quant.curves(sel, plan, ch)
    current = {"bits": ch.bits, "accuracy": sm.accuracy, "kb": sm.kb}
    fair = ui_quant.qat_control(sel, ui_quant.QAT_CURVE_EPOCHS) if with_qat else None
    k1, k2 = st.columns(2)
    k1.plotly_chart(viz_quant.error_bars(viz_quant.accuracy_curves(series, sm.float_accuracy, "bits", current,
                                                          title="Test accuracy vs bit width",
                                                          control_acc=fair.accuracy if fair else None),
                                     series, n_test), key="q_curve_bits")
    k2.plotly_chart(viz_quant.error_bars(viz_quant.accuracy_curves(series, sm.float_accuracy, "kb", current,
                                                          float_kb=sm.float_kb, title="Test accuracy vs model size"),
                                     series, n_test), key="q_curve_kb")
    st.caption(f"Each point quantizes the whole model at that bit width with the settings above "
               f"({plan.activation_note}). "
               + (f"QAT: {ui_quant.QAT_CURVE_EPOCHS} epochs of fine-tuning per point{' with LSQ' if ch.lsq else ''}, "
                  "always from symmetric per-channel min-max ranges (so it is trained once per model); the dashed "
                  "green line is its fair reference, the float model given the same fine-tuning. "
                  if with_qat else "") + f"The star is the current setting. Error bars: ± 1 standard error, "
               f"√(p(1 − p)/n) on the {n_test:,} test {unit}s (e.g. {se(sm.float_accuracy)} at the "
               "float accuracy).")
    gains = qr.qat_gains(plan, series, n_test)
    if gains:
        st.info(qr.qat_gain_text(gains, sel.dataset), icon="⚖️")


def mixed_precision(cfg: QuantConfig, ch: ui_quant.Choices, sm: QuantSummary) -> None:
    st.markdown("**Which layers tolerate fewer bits?**")
    if text:
        return ui_quant.lm_mixed_precision(sel, cfg, ch, float_info)
    with st.spinner("Scanning each layer at 2–8 bits…"):
        rows = ui_quant.scan(sel, qr.scan_config(cfg).to_json(), ch.calib)
    tol = url_widget(st.slider, "q_tol", 1.0, "Accuracy you are willing to lose (points)", 0.1, 10.0, step=0.1,
                     cast=float, check=lambda v: 0.1 <= v <= 10.0,
                     help="Each layer gets the fewest bits whose own loss is within this budget ÷ number of layers, "
                          "counted in validation examples.")
    suggestion = suggest_bits(rows, tol)
    h1, h2 = st.columns([3, 2])
    h1.plotly_chart(viz_quant.sensitivity_heatmap(rows, dict(suggestion), title="Change in validation accuracy "
                                             "(points, negative = worse), only that layer's weights quantized"),
                    key="q_sens_fig")
    try:
        mixed = ui_quant.ptq(sel, qr.mixed_config(cfg, suggestion).to_json(), ch.calib)
    except ValueError as e:
        h2.error(f"The suggested mix cannot be built: {e}")
        return
    ms = qr.summarize(float_info.metrics, float_info.size, mixed.metrics, mixed.size, n_test)
    h2.dataframe(pd.DataFrame([{"layer": n, "suggested bits": bb} for n, bb in suggestion]), hide_index=True)
    h2.metric("Mixed-precision accuracy (test)", f"{ms.accuracy:.2%}", f"{ms.accuracy_delta_pts:+.2f} pts vs float",
              delta_color="off" if ms.vs_float.within_noise else "normal",
              help=f"{se(ms.accuracy)}; grey: the change from float is within noise.")
    h2.metric("Mixed-precision size", f"{ms.kb:.1f} KB", f"{ms.ratio:.1f}× smaller than float", delta_color="off")
    h2.caption("Outlined cells: the suggestion. Activations follow the settings above. The drops were measured one "
               "layer at a time on the validation set; together, on the test set, they need not add up exactly.")


@st.fragment
def live_view():
    ch = ui_quant.controls(text)
    if text and ch.fix != "none":
        st.info(ui_quant.FIX_ON_GPT + " Plain PTQ is shown.", icon="ℹ️")
        ch = replace(ch, fix="none")
    try:
        cfg = ch.config()
    except ValueError as e:
        st.error(f"These settings do not make a valid quantizer: {e} Change the bit width or turn off narrow range.")
        return
    ui_quant.setting_notes(cfg, ch, text)
    try:
        res = ui_quant.quantized(sel, cfg, ch)
    except ValueError as e:
        st.error(f"Cannot quantize this model: {e}")
        return
    if res is None:  # this session cancelled its QAT
        return
    sm = qr.summarize(float_info.metrics, float_info.size, res.metrics, res.size, n_test)
    if text:
        ui_quant.lm_metrics_row(res, float_info, sm, cfg, ch)
    else:
        ui_quant.metrics_row(sm, cfg, ch, n_test, sel.dataset)
        if ch.fixed:
            ui_quant.fix_gain(sel, res, ui_quant.ptq(sel, cfg.to_json(), ch.calib), ch, n_test)
    if ch.mode == "qat" and text:
        ui_quant.lm_qat_panel(sel, ch, res, cfg.to_json())
    elif ch.mode == "qat":
        ui_quant.qat_panel(sel, ch, res, sm.accuracy, n_test, cfg.to_json())
    layer = url_widget(st.selectbox, "q_layer", layer_names[0], "Layer", layer_names, allowed=layer_names,
                       help="Which layer's numbers the grid and per-channel views show.")
    views = {"The grid": lambda: grid(ui_quant.result_key(sel, cfg, ch), res.model, ch.calib, layer),
             "Why per-channel helps": lambda: per_channel(res.model, cfg, layer),
             "Error per layer": lambda: errors(res, cfg, ch, sm),
             "Accuracy vs bits and size": lambda: curves(cfg, ch, sm, res),
             "Mixed precision": lambda: mixed_precision(cfg, ch, sm),
             "Which layer broke it?": lambda: ui_quant_recover.which_layer(ui_quant.result_key(sel, cfg, ch), res, ch,
                                                                          sel, ds),
             "Meet an accuracy budget": lambda: ui_quant_recover.accuracy_budget(sel, ds, cfg, ch, sm)}
    view_tabs("q_view", views)  # only the open tab runs


live_view()

ui_quant.about()
