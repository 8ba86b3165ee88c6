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
from compress_core.viz import recover as viz_recover
from ui.loaders import baseline, dataset
from ui.sidebar import lesson_switch, selection
from ui.state import to_bool, url_widget, view_tabs
from ui.topics import quant as ui_quant
from ui.topics import recover as ui_recover

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


def which_layer(rkey: tuple, res: ui_quant.Quantized, ch: ui_quant.Choices) -> None:
    """The drop debugger of the current quantized model: per-layer errors, float toggles, the flipped examples."""
    try:
        dbg = ui_recover.debugger(rkey, ui_quant.reference_model(sel, ch), res.model, ds)
    except ValueError as e:
        st.error(f"The drop debugger cannot read this model: {e}")
        return
    rows = dbg.layers()
    scale = url_widget(st.radio, "q_dbg_scale", "SQNR (dB)", "Error measured as", ["SQNR (dB)", "relative MSE"],
                       allowed=["SQNR (dB)", "relative MSE"], horizontal=True,
                       help="SQNR = 10·log10(Σx² / Σ(x − x̂)²), higher is better; relative MSE = Σ(x − x̂)² / Σx² = "
                            "10^(−SQNR/10), lower is better.")
    st.plotly_chart(viz_recover.error_split_figure(rows, "db" if scale == "SQNR (dB)" else "rel",
                                           title="Error at each layer's output: that layer alone vs all layers"),
                    key="q_dbg_fig")
    st.caption("**Top**: the error at each layer's output (after its ReLU, where one follows) when only that layer "
               "is quantized "
               "(every other layer float), next to the error accumulated up to it when every layer is quantized. "
               "A layer whose own error is small but whose accumulated one is large inherits damage from below. "
               "**Bottom**: that layer's own error, split: weight clipping (weights outside the grid's range) and "
               "weight rounding (inside it), each ÷ Σw², and its output activations' clipping and rounding ÷ Σa². "
               + ("After cross-layer equalization the float reference is the equalized float model (the same "
                  "function, its channels rescaled). " if ch.fixed and ch.fix == "cle_bc" else "")
               + ("Measured on the test split." if not text else
                  f"Measured on the first {len(dbg.y):,} test windows; on the GPT the accuracy is next-character "
                  "accuracy and the examples lost are characters. Its Linear layers quantize their inputs, not "
                  "their outputs: that error is inside 'only this layer'."))
    st.dataframe(ui_recover.layer_table(rows), hide_index=True, width="stretch")
    st.markdown("**Keep a layer in float** — each switch puts that layer back to float (its weights and its "
                "activation grid) and re-scores the model on the same test " + ("windows." if text else "examples."))
    cols = st.columns(min(len(dbg.units), 6))
    kept = tuple(u for i, u in enumerate(dbg.units)
                 if url_widget(cols[i % len(cols)].toggle, f"q_float_{u}", False, u, cast=to_bool,
                               help=f"Keep {u} in float32."))
    r = ui_recover.revert(rkey, dbg, kept)
    base = ui_recover.revert(rkey, dbg, ())
    r1, r2, r3 = st.columns(3)
    if text:
        ui_recover.lm_revert_panel(rkey, dbg, ui_quant.reference_model(sel, ch), res.model, ds, (r1, r2, r3),
                                   kept)
        return
    r1.metric("Float accuracy (test)", f"{dbg.float_accuracy:.2%}")
    r2.metric("Quantized accuracy (test)", f"{base.accuracy:.2%}", f"{base.change_pts:+.2f} pts vs float",
              delta_color="off")
    r3.metric("With the kept layers in float", f"{r.accuracy:.2%}",
              f"{100 * (r.accuracy - base.accuracy):+.2f} pts vs quantized" if kept else None,
              help=f"{se(r.accuracy)}. Kept in float: {', '.join(kept) or 'none'}; {r.lost} test {unit}s lost "
                   "against float (negative: gained).")
    flipped = ui_recover.flips(rkey, dbg)
    st.markdown(f"**{len(flipped)} test {unit}s change their prediction** between the float and the quantized model "
                f"(of {dbg.n:,}).")
    if not flipped:
        return
    st.plotly_chart(ui_recover.flips_figure(rkey, ds, flipped), key="q_flips_fig")
    st.dataframe(ui_recover.flips_table(flipped, ds.class_names), hide_index=True, width="stretch",
                 column_config={"quantized p(true)": st.column_config.NumberColumn(format="percent")})
    st.caption(f"The first {min(len(flipped), ui_recover.FLIPS_SHOWN)} flipped {unit}s: true label, then the float "
               "and the quantized prediction with its probability. The first divergent layer is the first whose "
               "output, for this example, differs from the float model's by more than 10 % of its energy (SQNR "
               "under 10 dB, every layer quantized); the largest jump is where that error grows most.")


def accuracy_budget(cfg: QuantConfig, ch: ui_quant.Choices, sm: QuantSummary) -> None:
    """The smallest mixed-precision / partly float model within an accuracy budget, on the heavy-run pool."""
    if text:
        st.info(ui_recover.BUDGET_ON_GPT, icon="ℹ️")
        return
    if ch.mode != "ptq":
        st.info("The budget search starts from post-training quantization of the settings above; switch the method "
                "to PTQ to run it.", icon="ℹ️")
        return
    if ch.fixed:
        st.caption(f"The search starts from plain round-to-nearest PTQ of these settings, without "
                   f"{ui_quant.FIXES[ch.fix].lower()}.")
    pts = url_widget(st.slider, "q_budget", 0.5, "Accuracy you may lose (points)", 0.1, 5.0, step=0.1, cast=float,
                     check=lambda v: 0.1 <= v <= 5.0,
                     help="The search keeps the loss against float within this many points on the validation "
                          "split.")
    go = url_widget(st.toggle, "q_budget_run", False, "Run the search", cast=to_bool,
                    help="Ranks the layers by the drop debugger, raises or un-quantizes the most harmful first, "
                         "then lowers bits again while the budget holds (seconds; on the heavy-run pool).")
    if not go:
        st.caption("Measured on the validation split, reported on the test split. Turn on 'Run the search'.")
        return
    try:
        res = ui_recover.budget(sel, cfg, ch.calib, pts)
    except ValueError as e:
        st.error(f"The budget search cannot run on these settings: {e}")
        return
    if res is None:
        return
    ui_recover.budget_panel(res, sm.kb, qr.describe(cfg), se, unit)

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
    if ch.bits == 1:
        st.warning("1 bit leaves two levels, and the affine scheme must keep real 0 exact: the grid is {0, S} or "
                   "{−S, 0}, so half the signs are lost. Binary networks use {−α, +α} instead, which is not affine.")
    if text and ch.mode == "qat":
        st.caption(ui_quant.QAT_ON_GPT)
    if ch.method == "moving_average" and cfg.quantize_weights:
        st.caption("Moving-average min-max needs a stream of batches: for weights (a single tensor) it is min-max.")
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
             "Which layer broke it?": lambda: which_layer(ui_quant.result_key(sel, cfg, ch), res, ch),
             "Meet an accuracy budget": lambda: accuracy_budget(cfg, ch, sm)}
    view_tabs("q_view", views)  # only the open tab runs


live_view()

ui_quant.about()
