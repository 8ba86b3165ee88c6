"""Integer inference: the quantized network run with integer arithmetic only, one layer at a time.

Controls read here; conversion and every number from compress_core.integer (program, report, fixed_point);
figures from compress_core.viz.integer; caching and the step-by-step table in ui/integer.py (the quantized models
come from ui/quant.py).
"""
import json

import pandas as pd
import streamlit as st

from compress_core.integer import walk_through
from compress_core.integer.report import download_record, trace_unit
from compress_core.quant import QuantConfig
from compress_core.viz import integer as viz_integer
from ui.loaders import baseline, dataset
from ui.sidebar import classifier_page, selection
from ui.state import keep, url_widget, view_tabs
from ui.topics import integer as ui_integer

sel = selection()
classifier_page(sel, "Integer inference", "the integer-only engine runs Linear, Conv, ReLU and pooling layers with "
                "int32 accumulators; a transformer also needs LayerNorm, softmax and GELU, "
                "which it has no integer kernels for.", "int_classic")
ds = dataset(sel.dataset, sel.seed)
fmodel = baseline(sel).model  # a fresh float copy, read by the walk-through
n_test = len(ds.y_test)
ss = st.session_state

st.title("🧮 Integer-only inference")
st.markdown(
    "Once a network is quantized, it can run **without any floating point**. Inputs and weights are small integers; "
    "their products are summed in **int32**; and the rescale to the next layer's scale, the real number "
    "**M = S_w·S_x / S_out**, is stored as an integer **M0** and a shift **n** with M = M0·2^−n: "
    "multiplying by M becomes an integer multiply and a rounding right shift (Jacob et al. 2018). "
    "*The multiply-accumulates stay integer products; only the rescale becomes a multiply and a shift.* Pick a "
    "setting, then follow one number through one layer.")


def whole_model(cfg: QuantConfig, cmp: dict, sizes: dict) -> None:
    st.caption("Test accuracy of the same network three ways; the deltas compare each with the one before it.")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Float acc.", f"{cmp['float']:.2%}", help="The float32 baseline on the test set.")
    m2.metric("Fake-quant acc.", f"{cmp['fake_quant']:.2%}",
              f"{100 * (cmp['fake_quant'] - cmp['float']):+.2f} pts",
              help="The quantized model simulated in float: every tensor rounded to its grid.")
    m3.metric("Integer-only acc.", f"{cmp['integer']:.2%}",
              f"{100 * (cmp['integer'] - cmp['fake_quant']):+.2f} pts", delta_color="off",
              help="The integer program: int8 tensors, int32 accumulators, M0·2^−n rescales. No float op.")
    m4.metric("Same logits", f"{cmp['frac_logits_equal']:.1%}",
              help=f"Share of the integer logit codes equal to the fake-quant model's; the largest difference is "
                   f"{cmp['max_step_diff']} step(s). Differences come from rounding the bias to int32 and from the "
                   "fixed-point rescale's own rounding.")
    g1, g2 = st.columns(2)
    g1.plotly_chart(viz_integer.accuracy_bars(cmp, title="Test accuracy"), key="int_acc_fig")
    g2.plotly_chart(viz_integer.memory_bars(sizes, cfg.weight_bits, title="Model memory"), key="int_mem_fig")
    st.caption(f"Memory counts every stored byte: weights ({sizes['weights']:,}) at 4, 1 or ½ byte; biases "
               f"({sizes['biases']:,}) as int32 in the integer models; and per output channel the rescale M0 (int32) "
               "and n (one byte), plus zero points. The float32 model stores weights and biases at 4 bytes.")


@st.fragment
def walk_view(res: dict) -> None:
    """One example through the three models, then one output of one layer step by step (a tab each: changing
    the example redraws the open one)."""
    st.markdown("Follow one output number of one layer from its integer inputs to its integer output, next to the "
                "float computation of the same layer on the same input. Change the example or the layer: every "
                "number below is recomputed.")
    layers = [op.name for op in res["program"].layers]
    e1, _ = st.columns([1, 2])
    i = int(url_widget(e1.number_input, "int_example", 0, f"Test example (0–{n_test - 1})", 0, n_test - 1, step=1,
                       cast=int, check=lambda v: 0 <= v < n_test,
                       help="Which test input to follow through the network."))
    x = ds.x_test[i]
    view_tabs("int_walk", {"The example in the three models": lambda: example_view(res, i),
                           "One output, step by step": lambda: output_view(res, x, layers)})


def example_view(res: dict, i: int) -> None:
    """Test example ``i``, the class each model predicts and their logits."""
    logits, picture, bars = ui_integer.example(res, ds, fmodel, i)
    p1, p2 = st.columns([1, 2])
    with p1:
        st.plotly_chart(picture, key="int_example_fig")
        st.markdown(f"True class **{ds.class_names[int(ds.y_test[i])]}** · predicted class in each model:")
        for col, name, p in zip(st.columns(3), ("Float", "Fake-quant", "Integer"), logits["predicted"]):
            col.metric(name, ds.class_names[p], help=f"The class the {name.lower()} model predicts for this example.")
    p2.plotly_chart(bars, key="int_logits_fig")


def output_view(res: dict, x, layers: list[str]) -> None:
    """One output of a layer on input ``x``, both chosen by the user, step by step."""
    layer = url_widget(st.selectbox, "int_layer", layers[0], "Layer", layers, allowed=layers,
                       help="Which layer's arithmetic to show step by step.")
    qmodel = res["qmodel"]
    walk = walk_through(res["program"], qmodel, x, layer)
    n_units = len(walk.units["acc"])
    ukey = f"int_unit_{layer}"
    if ss.get(ukey, 0) >= n_units:
        ss[ukey] = 0
    what = "neuron" if walk.layer.kind == "linear" else "value (channel · position)"
    unit = int(url_widget(st.number_input, ukey, walk.largest_unit, f"Output {what} to follow (0–{n_units - 1}; "
                          "starts at the largest float output)", 0, n_units - 1, step=1, cast=int,
                          check=lambda v: 0 <= v < n_units))
    unit_view(walk, qmodel, unit, what, first=layer == layers[0])


def unit_view(walk, qmodel, unit: int, what: str, first: bool) -> None:
    """The step-by-step table of one output, its layer's integer-vs-float scatter and its largest products."""
    t = trace_unit(walk, qmodel, unit)
    pos = "" if t.kind == "linear" else f", position {t.position}"
    st.subheader(f"{t.layer}: output {what.split(' ')[0]} {unit} (channel {t.channel}{pos})")
    st.markdown(ui_integer.ledger(t, walk.q_in, walk.x_real, first))
    st.caption(f"Fake-quant code of this unit: {t.fq_code} (the integer result is {t.out}). "
               "Steps 6–8 are TFLite's MultiplyByQuantizedMultiplier: gemmlowp's SaturatingRoundingDoublingHighMul "
               "then RoundingDivideByPOT" + (" applied to acc·2^L, a refinement: step 6 costs nothing at run time "
                                             "(2^L is folded into M0) but the codes can differ from TFLite's by ±1."
                                             if t.L else ", bit for bit."))
    d1, d2 = st.columns([3, 2])
    d1.plotly_chart(viz_integer.int_vs_float(walk.units, t.S_y,
                                      title=f"Every output of {t.layer} on this example: integer vs float"),
                    key="int_scatter_fig")
    with d2:
        st.markdown(f"**The largest of the {t.n_terms} products** (q_x − Z_x)(q_w − Z_w)")
        st.dataframe(pd.DataFrame(t.top), hide_index=True, width="stretch")
        st.plotly_chart(viz_integer.rescale_steps([("acc", t.acc), ("acc·2^L", t.scaled), ("high", t.high),
                                            ("shifted", t.shifted), ("+Z", t.plus_zero), ("q_out", t.out)],
                                           title="How big each number is"), key="int_steps_fig")
    ss["_int_M_default"] = t.M


def layer_table(cfg: QuantConfig, mode: str, calib: int, res: dict) -> None:
    table = pd.DataFrame(res["summary"])
    num = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "S_in": num(format="%.4g"), "S_out": num(format="%.4g"), "max |acc| / 2^31": num(format="%.2e")})
    st.caption("S, Z: scale and zero point of each tensor (weights: the range over channels). M = S_w·S_x/S_out, "
               "M0 and n its fixed-point form (ranges over channels). Clamp: the output codes' range; a fused ReLU "
               "starts it at Z_out. max |acc| / 2^31: how much of the int32 accumulator the worst input could use. "
               "Kernel: torch._int_mm when both operands fit int8, an int32 matrix product otherwise.")
    dl1, dl2 = st.columns(2)
    dl1.download_button("Download the layer table (CSV)", table.to_csv(index=False), "integer_layers.csv",
                        "text/csv", key="int_dl_csv")
    record = {"selection": sel.as_query(), **download_record(cfg.to_dict(), mode, calib, res["compare"],
                                                             res["bytes"], res["summary"])}
    dl2.download_button("Download setting + results (JSON)", json.dumps(record, indent=1, default=str),
                        "integer_inference.json", "application/json", key="int_dl_json")


# a refused setting stops the page before the walk-through and the explorer: keep their values for the way back
keep("int_example", "int_layer", "int_M", "int_acc", prefix="int_unit_")
cfg, mode, calib, headroom = ui_integer.controls()
res = ui_integer.convert(sel, cfg, mode, calib, headroom)

views = {"The whole model, on integers": lambda: whole_model(cfg, res["compare"], res["bytes"]),
         "One layer, step by step": lambda: walk_view(res), "The multiplier explorer": ui_integer.multiplier_explorer,
         "Every layer of the integer program": lambda: layer_table(cfg, mode, calib, res),
         "The same network in ONNX Runtime": lambda: ui_integer.onnx_section(sel, (sel.key, cfg.to_json(), calib, mode,
                                                                                 headroom), res)}
view_tabs("int_view", views)  # only the open tab runs
ui_integer.how_it_works(sel.model, sel.dataset, res["compare"], cfg.weight_bits, cfg.act_bits)
