"""Integer inference: the quantized network run with integer arithmetic only, one layer at a time.

Controls read here; conversion and every number from compress_core (integer, integer_report, fixed_point);
figures from compress_core.viz.integer; caching in ui/integer.py (the quantized models come from ui/quant.py).
"""
import json

import numpy as np
import pandas as pd
import streamlit as st
import torch

from compress_core.integer import explain_multiplier, walk_through
from compress_core.quant import QuantConfig
from compress_core.viz import common as viz
from compress_core.viz import integer as iviz
from ui import integer as icache
from ui.explain import explainer, published
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import remember, url_value

W_BITS = [2, 3, 4, 5, 6, 7, 8, 10, 12, 16]
A_BITS = [4, 5, 6, 7, 8, 10, 12, 16]
MODES = {"ptq": "PTQ (post-training)", "qat": "QAT (3 epochs, LSQ)"}
QAT_EPOCHS = 3

sel = selection()
ds = dataset(sel.dataset, sel.seed)
b = baseline(sel)
key = sel.key
n_test = len(ds.y_test)

st.title("🧮 Integer-only inference")
st.markdown(
    "Once a network is quantized, it can run **without any floating point**. Inputs and weights are small integers; "
    "their products are summed in **int32**; and the rescale to the next layer's scale, the real number "
    "**M = S_w·S_x / S_out**, is stored as an integer **M0** and a shift **n** with M = M0·2^−n: "
    "multiplying by M becomes an integer multiply and a rounding right shift (Jacob et al. 2018). "
    "*Products become shifts.* Pick a setting, then follow one number through one layer.")

# --- Controls: the quantized model (a change here re-converts; seeded from the URL) ---------------------
url_value("int_mode", "ptq", allowed=list(MODES))
url_value("int_wbits", 8, cast=int, allowed=W_BITS)
url_value("int_abits", 8, cast=int, allowed=A_BITS)
url_value("int_gran", "per channel", allowed=["per channel", "per tensor"])
url_value("int_wscheme", "symmetric", allowed=["symmetric", "asymmetric"])
url_value("int_calib", 256, cast=int, check=lambda v: 16 <= v <= 1024)
c1, c2, c3, c4 = st.columns([1.3, 1.3, 1, 1])
c1.select_slider("Weight bits", W_BITS, key="int_wbits",
                 help="Bits per stored weight. Codes of up to 8 bits are held in int8 and multiplied with "
                      "PyTorch's int8 matrix kernel; wider ones need int16 and an int32 product.")
c2.select_slider("Activation bits", A_BITS, key="int_abits",
                 help="Bits per activation. Above 8 the codes need int16 and an int32 matrix product. With 16-bit "
                      "weights and activations the int32 accumulator could overflow, and the converter refuses.")
c3.radio("Weights", ["per channel", "per tensor"], key="int_gran", horizontal=True,
         help="One scale per output channel (one M0, n per channel) or one for the whole layer.")
c4.radio("Weight grid", ["symmetric", "asymmetric"], key="int_wscheme", horizontal=True,
         help="Asymmetric weights have a zero point Z_w ≠ 0, which adds a run-time term Z_w·Σq_x.")
c1, c2 = st.columns([2.6, 2])
c1.radio("Quantized by", list(MODES), key="int_mode", format_func=MODES.get, horizontal=True,
         help="Post-training quantization, or quantization-aware fine-tuning with learned step sizes.")
c2.slider("Calibration examples", 16, 1024, key="int_calib", step=16,
          help="Training inputs used to set the activation ranges (S, Z) before conversion.")
remember("int_mode", "int_wbits", "int_abits", "int_gran", "int_wscheme", "int_calib")
ss = st.session_state

cfg = QuantConfig(target="both", weight_bits=int(ss.int_wbits), act_bits=int(ss.int_abits),
                  weight_symmetric=ss.int_wscheme == "symmetric", per_channel=ss.int_gran == "per channel")
cfg_json = cfg.to_json()
try:
    if ss.int_mode == "qat":
        box = st.status("Quantization-aware training…", expanded=False)
        bar = box.progress(0.0)
        res = icache.integer_model(key, cfg_json, int(ss.int_calib), "qat", QAT_EPOCHS, True,
                                   progress=lambda f, t: bar.progress(f, text=t))
        box.update(label="QAT done: the fine-tuned model is converted below", state="complete")
    else:
        res = icache.integer_model(key, cfg_json, int(ss.int_calib), "ptq")
except ValueError as e:
    st.error(f"This model cannot run on integers with these settings. {e}")
    st.info("Lower the activation or weight bits: 8-bit weights with 8-bit activations always convert.")
    st.stop()
program, qmodel, cmp, sizes = res["program"], res["qmodel"], res["compare"], res["bytes"]
layers = [op.name for op in program.layers]
fmodel = b.model

# --- 1 · The whole model --------------------------------------------------------------------------------
st.header("1 · The whole model, on integers")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Float accuracy", f"{cmp['float']:.2%}", help="The float32 baseline on the test set.")
m2.metric("Fake-quant accuracy", f"{cmp['fake_quant']:.2%}", f"{100 * (cmp['fake_quant'] - cmp['float']):+.2f} pts",
          help="The quantized model simulated in float: every tensor rounded to its grid.")
m3.metric("Integer-only accuracy", f"{cmp['integer']:.2%}",
          f"{100 * (cmp['integer'] - cmp['fake_quant']):+.2f} pts vs fake-quant", delta_color="off",
          help="The integer program: int8 tensors, int32 accumulators, M0·2^−n rescales. No float op.")
m4.metric("Logits identical to fake-quant", f"{cmp['frac_logits_equal']:.1%}",
          help=f"Share of the integer logit codes equal to the fake-quant model's; the largest difference is "
               f"{cmp['max_step_diff']} step(s). Differences come from rounding the bias to int32 and from the "
               "fixed-point rescale's own rounding.")
g1, g2 = st.columns(2)
g1.plotly_chart(iviz.accuracy_bars(cmp, title="Test accuracy"), key="int_acc_fig")
g2.plotly_chart(iviz.memory_bars(sizes, cfg.weight_bits, title="Model memory"), key="int_mem_fig")
st.caption(f"Memory counts every stored byte: weights ({sizes['weights']:,}) at 4, 1 or ½ byte; biases "
           f"({sizes['biases']:,}) as int32 in the integer models; and per output channel the rescale M0 (int32) "
           "and n (one byte), plus zero points. The float32 model stores weights and biases at 4 bytes.")


# --- 2 · Walk through one layer ------------------------------------------------------------------------
def show_example(i: int) -> None:
    x = ds.x_test[i].numpy()
    label = ds.class_names[int(ds.y_test[i])]
    if ds.kind == "image":
        fig = viz.image_grid(x[None, 0], [f"test #{i}: {label}"], cols=1)
        fig.update_layout(height=260, width=260)
    elif ds.kind == "sequence":
        fig = viz.sequence_lines(x[None, 0], [f"test #{i}: digit {label}"])
        fig.update_layout(height=260)
    else:
        fig = viz.scatter_points(ds.x_test.numpy(), ds.y_test.numpy(), list(ds.class_names), title=f"test #{i}")
        fig.add_scatter(x=[x[0]], y=[x[1]], mode="markers", name="this example",
                        marker=dict(size=18, color="black", symbol="x"))
        fig.update_layout(height=300)
    st.plotly_chart(fig, key="int_example_fig")


def fmt_codes(v: np.ndarray, k: int = 8) -> str:
    head = ", ".join(str(int(a)) for a in v[:k])
    return f"[{head}{', …' if len(v) > k else ''}]"


def fmt_reals(v: np.ndarray, k: int = 6) -> str:
    head = ", ".join(f"{a:.3f}" for a in v[:k])
    return f"[{head}{', …' if len(v) > k else ''}]"


@st.fragment
def walk_view():
    url_value("int_example", 0, cast=int, check=lambda v: 0 <= v < n_test)
    url_value("int_layer", layers[0], allowed=layers)
    e1, e2 = st.columns([1, 2])
    e1.number_input(f"Test example (0–{n_test - 1})", 0, n_test - 1, key="int_example", step=1,
                    help="Which test input to follow through the network.")
    e2.selectbox("Layer", layers, key="int_layer", help="Which layer's arithmetic to show step by step.")
    remember("int_example", "int_layer")
    i, layer = int(ss.int_example), ss.int_layer
    x = ds.x_test[i]
    with torch.no_grad():
        f_logits = fmodel(x[None]).numpy()[0]
        q_logits = qmodel(x[None]).numpy()[0]
        codes = program(x[None])
        i_logits = program.dequantize(codes).numpy()[0]
    preds = [int(np.argmax(v)) for v in (f_logits, q_logits, codes.numpy()[0])]
    p1, p2 = st.columns([1, 2])
    with p1:
        show_example(i)
        st.markdown(f"True class **{ds.class_names[int(ds.y_test[i])]}** · predicted class in each model:")
        k1, k2, k3 = st.columns(3)
        for col, name, p in zip((k1, k2, k3), ("Float", "Fake-quant", "Integer"), preds):
            col.metric(name, ds.class_names[p], help=f"The class the {name.lower()} model predicts for this example.")
    p2.plotly_chart(iviz.logits_bars(list(ds.class_names), f_logits, q_logits, i_logits,
                                     title="Logits of this example in the three models (outlined: predicted)"),
                    key="int_logits_fig")

    walk = walk_through(program, qmodel, x, layer)
    op, u = walk.layer, walk.units
    n_units = len(u["acc"])
    ukey = f"int_unit_{layer}"
    url_value(ukey, int(np.argmax(u["float_out"])), cast=int, check=lambda v: 0 <= v < n_units)
    if ss[ukey] >= n_units:
        ss[ukey] = 0
    what = "neuron" if op.kind == "linear" else "value (channel · position)"
    unit = int(st.number_input(f"Output {what} to follow (0–{n_units - 1}; starts at the largest float output)",
                               0, n_units - 1, key=ukey, step=1))
    remember(ukey)
    t = walk.unit_terms(unit)
    c = t["channel"]
    Sx, Zx = float(op.x.qp.scale), int(op.x.qp.zero_point)
    Sw = float(op.w_qp.scale.reshape(-1)[c if op.w_qp.per_channel else 0])
    Sy, Zy = float(op.y.qp.scale), int(op.y.qp.zero_point)
    m = dict(qmodel.named_children())[layer]
    b_real = float(m.bias.detach()[c]) if m.bias is not None else 0.0
    M0, n, L = int(u["M0"][unit]), int(u["n"][unit]), op.headroom
    acc = int(u["acc"][unit])
    scaled = acc << L
    high, shifted, plus_z, out = (int(u[k][unit]) for k in ("high", "shifted", "plus_zero", "out_code"))
    y_float = float(u["float_out"][unit])
    # the float computation of the same unit on the same real input, before its ReLU
    dot = float(t["float_products"].sum())
    pre = dot + b_real
    lo, hi = op.lo + op.y.offset, op.y.hi + op.y.offset
    pos = "" if op.kind == "linear" else f", position {t['position']}"
    st.subheader(f"{layer}: output {what.split(' ')[0]} {unit} (channel {c}{pos})")

    first = layer == layers[0]
    input_line = (f"r → q = clamp(round(r / {Sx:.4g}) + {Zx}) = {fmt_codes(walk.q_in.reshape(-1))}" if first else
                  f"q from the previous integer layer: {fmt_codes(walk.q_in.reshape(-1))}")
    rows = [
        ("1 · input", input_line + f" ({op.x.qp.bits}-bit, S_x = {Sx:.4g}, Z_x = {Zx})",
         f"r = S_x·(q − Z_x) = {fmt_reals(walk.x_real.reshape(-1))}"),
        ("2 · products", f"Σ (q_x − {Zx})·(q_w − {t['Z_w']}) over {len(t['products'])} terms = {t['sum']:,} (int32)",
         f"Σ x·w = {dot:.5f}"),
        ("3 · bias", f"q_b = round(b / (S_w·S_x)) = round({b_real:.5f} / {Sw * Sx:.4g}) = {t['bias']:,}",
         f"+ b = {b_real:.5f}"),
        ("4 · accumulator", f"acc = {t['sum']:,} + {t['bias']:,} = **{acc:,}**", f"y = {pre:.5f}"),
        ("5 · multiplier", f"M = S_w·S_x / S_out = {Sw:.4g}·{Sx:.4g} / {Sy:.4g} = {float(u['M'][unit]):.6g} "
                           f"≈ M0·2^−n = {M0:,}/2^31 · 2^−{n}", f"y / S_out = {pre / Sy:.4f} steps"),
        ("6 · headroom", f"acc·2^L = {acc:,}·2^{L} = {scaled:,} (fits int32: any accumulator of this layer is "
                         f"at most {op.acc_bound:,} in size)", "—"),
        ("7 · multiply", f"high = round(acc·2^L · M0 / 2^31) = **{high:,}**",
         f"(y / S_out)·2^{n + L} = {pre / Sy * 2.0 ** (n + L):,.1f}"),
        ("8 · shift", f"round(high / 2^{n + L}) = **{shifted:,}** (halves away from zero)",
         f"round(y / S_out) = {np.round(pre / Sy):.0f}"),
        ("9 · zero point", f"{shifted:,} + Z_out ({Zy}) = {plus_z:,}", f"+ Z_out = {np.round(pre / Sy) + Zy:.0f}"),
        ("10 · clamp", f"clamp to [{lo}, {hi}]" + (" (ReLU fused: the lower end is Z_out)" if op.relu else "")
         + f" → **q_out = {out}**", ("ReLU → " if op.relu else "") + f"{y_float:.5f}"),
        ("11 · real value", f"S_out·(q_out − Z_out) = {Sy:.4g}·({out} − {Zy}) = **{float(u['real_out'][unit]):.5f}**",
         f"float: **{y_float:.5f}** · difference {float(u['diff'][unit]):+.5f} "
         f"({float(u['diff'][unit]) / Sy:+.2f} steps)"),
    ]
    st.markdown("| step | integer-only | float, same layer and input |\n|---|---|---|\n"
                + "\n".join(f"| {a} | {b_} | {c_} |" for a, b_, c_ in rows))
    st.caption(f"Fake-quant code of this unit: {int(u['fq_code'][unit])} (the integer result is {out}). "
               "Steps 6–8 are TFLite's MultiplyByQuantizedMultiplier: gemmlowp's SaturatingRoundingDoublingHighMul "
               "then RoundingDivideByPOT. Step 6 costs nothing at run time: 2^L is folded into M0.")

    d1, d2 = st.columns([3, 2])
    d1.plotly_chart(iviz.int_vs_float(u, Sy, title=f"Every output of {layer} on this example: integer vs float"),
                    key="int_scatter_fig")
    with d2:
        prods = t["products"]
        top = np.argsort(-np.abs(prods))[:10]
        st.markdown(f"**The largest of the {len(prods)} products** (q_x − Z_x)(q_w − Z_w)")
        st.dataframe(pd.DataFrame({"term": top, "q_x": t["q_x"][top], "q_w": t["q_w"][top],
                                   "(q_x−Z_x)(q_w−Z_w)": prods[top], "float x·w": t["float_products"][top]}),
                     hide_index=True, width="stretch")
        st.plotly_chart(iviz.rescale_steps([("acc", acc), ("acc·2^L", scaled), ("high", high),
                                            ("shifted", shifted), ("+Z", plus_z), ("q_out", out)],
                                           title="How big each number is"), key="int_steps_fig")
    ss["_int_M_default"] = float(u["M"][unit])


st.header("2 · One layer, step by step")
st.markdown("Follow one output number of one layer from its integer inputs to its integer output, next to the "
            "float computation of the same layer on the same input. Change the example or the layer: every number "
            "below is recomputed.")
walk_view()


# --- 3 · Multiplier explorer ----------------------------------------------------------------------------
def _use_layer_M() -> None:
    ss["int_M"] = f"{ss['_int_M_default']:.8g}"  # a callback runs before the text box is drawn


@st.fragment
def multiplier_view():
    url_value("int_M", "0.0042", check=lambda v: len(v) < 40)
    url_value("int_acc", 12345, cast=int, check=lambda v: -2 ** 31 <= v < 2 ** 31)
    left, right = st.columns([2, 3])
    with left:
        st.text_input("Multiplier M (e.g. 0.0042 or 3.1e-4)", key="int_M",
                      help="Any real number in (0, 1): the rescale of a layer, S_w·S_x / S_out.")
        st.button("Use the layer's M from the walk-through", key="int_M_use", on_click=_use_layer_M,
                  disabled="_int_M_default" not in ss,
                  help="Copy the multiplier of the output unit followed in section 2.")
        st.number_input("An int32 accumulator to rescale", -2 ** 31, 2 ** 31 - 1, key="int_acc", step=1000)
        remember("int_M", "int_acc")
        try:
            M = float(ss.int_M)
        except ValueError:
            st.error(f"“{ss.int_M}” is not a number. Type a decimal such as 0.0042 or 3.1e-4.")
            return
        if not 0 < M < 1:
            st.error(f"M = {M:g} is outside (0, 1). A layer's multiplier S_w·S_x/S_out must be below 1 to be "
                     "M0·2^−n with a right shift (n ≥ 0); the converter rejects such a layer by name.")
            return
        e = explain_multiplier(M, int(ss.int_acc))
        st.markdown(
            f"- **M0** = round(M·2^(31+n)) = **{e['M0']:,}** = `{e['M0_hex']}` (int32, in [2^30, 2^31): "
            f"M0/2^31 = {e['M0_fraction']:.10f})\n"
            f"- **n** = **{e['n']}** (M = M0/2^31 · 2^−n)\n"
            f"- represented value: {e['value']:.12g}\n"
            f"- error: {e['abs_error']:+.3g} (relative {e['rel_error']:+.2e})\n"
            f"- acc·M in float: {e['float_result']:,.4f} → integer rescale: **{e['int_result']:,}**")
    right.plotly_chart(iviz.multiplier_error(M, title="How exactly does M0·2^−n represent M?"), key="int_M_fig")


st.header("3 · The multiplier explorer")
st.markdown("Type a multiplier and see its fixed-point form. M0 keeps 31 significant bits, so the representation "
            "error is below one part in two billion: the rounding that matters happens elsewhere (next section).")
multiplier_view()

# --- 4 · Every layer ------------------------------------------------------------------------------------
st.header("4 · Every layer of the integer program")
table = pd.DataFrame(res["summary"])
st.dataframe(table.style.format({"S_in": "{:.4g}", "S_out": "{:.4g}", "max |acc| / 2^31": "{:.2e}"}),
             hide_index=True, width="stretch")
st.caption("S, Z: scale and zero point of each tensor (weights: the range over channels). M = S_w·S_x/S_out, "
           "M0 and n its fixed-point form (ranges over channels). Clamp: the output codes' range; a fused ReLU "
           "starts it at Z_out. max |acc| / 2^31: how much of the int32 accumulator the worst input could use. "
           "Kernel: torch._int_mm when both operands fit int8, an int32 matrix product otherwise.")
dl1, dl2 = st.columns(2)
dl1.download_button("Download the layer table (CSV)", table.to_csv(index=False), "integer_layers.csv", "text/csv",
                    key="int_dl_csv")
dl2.download_button("Download setting + results (JSON)", json.dumps(
    {"selection": sel.as_query(), "config": cfg.to_dict(), "mode": ss.int_mode, "calibration_examples": int(ss.int_calib),
     "accuracy": {k: cmp[k] for k in ("float", "fake_quant", "integer")},
     "logits_identical_fraction": cmp["frac_logits_equal"], "max_step_difference": cmp["max_step_diff"],
     "bytes": sizes, "layers": res["summary"]}, indent=1, default=str), "integer_inference.json",
    "application/json", key="int_dl_json")

# --- 5 · How it works -----------------------------------------------------------------------------------
st.header("5 · How it works")
explainer("Why integer-only?", (
    "Integer units are small, cheap and frugal: an 8-bit multiply takes a fraction of the energy and chip area of "
    "a 32-bit float multiply (Horowitz, ISSCC 2014), and many microcontrollers, DSPs and NPUs have no float unit "
    "at all. Running the whole network on integers also makes the result exactly reproducible on every device."),
    expanded=True)
explainer("How does the float multiply become an integer multiply and a shift?", (
    "With r = S(q − Z) for the input x, the weights w and the output y of a layer, "
    "y = Σ w·x + b becomes  **q_y = Z_y + M·(Σ (q_w − Z_w)(q_x − Z_x) + q_b)**  with **M = S_w·S_x / S_y** "
    "(Jacob et al. 2018, eq. 4). The sum is an int32 accumulation of int8 products; the bias is stored as "
    "int32 with scale S_w·S_x and zero point 0, so it adds straight into the accumulator. M is the only real "
    "number left, and it is known before inference: write it once as **M = M0·2^−n** with M0 an int32 in "
    "[2^30, 2^31). At run time, multiply the accumulator by M0 keeping the high 32 bits, then shift right by n. "
    "The zero-point terms that involve only weights (−Z_x·Σq_w and K·Z_x·Z_w) are folded into the bias at "
    "conversion time; with symmetric weights (Z_w = 0) there is nothing left to do at run time."))
explainer("Where does rounding happen?", (
    "1. **Input**: r → q = round(r/S) + Z, once, at the boundary.\n"
    "2. **Bias**: b → round(b / (S_w·S_x)) — tiny, the accumulator's unit is very fine.\n"
    "3. **Multiplier**: M → M0/2^31·2^−n — at most one part in 2^31 (the explorer above).\n"
    "4. **High multiply**: round(acc·M0 / 2^31) — gemmlowp's SaturatingRoundingDoublingHighMul. Shifting the "
    "accumulator left first (by L bits, when it has room) makes this rounding 2^L times finer.\n"
    "5. **Shift**: round(high / 2^n), halves away from zero — RoundingDivideByPOT. This is the rounding that "
    "matters: it is the output's own quantization step.\n"
    "6. **Clamp** to the output range; a ReLU is just clamping at Z_out (real zero). Max-pool and flatten act on the "
    "integers unchanged, because q ↦ S(q − Z) is increasing.\n\n"
    "The fake-quant model rounds only at steps 1 and 5 (in float), so the two agree except when a value sits "
    "within a hair of a rounding boundary — then they differ by one step."))
published("Jacob et al. 2018, “Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
          "Inference” (CVPR)",
          "ResNet-50 on ImageNet: **76.4 %** top-1 in float → **74.9 %** with integer-only 8-bit inference "
          "(quantization-aware training). M = S1·S2/S3 = 2^−n·M0 with M0 in [0.5, 1) held as an int32; int32 bias "
          "with scale S1·S2 and zero point 0; ReLU fused as a clamp.")
st.caption(f"Measured here: {sel.model} on {sel.dataset}, float {cmp['float']:.2%} → integer-only "
           f"{cmp['integer']:.2%} ({cfg.weight_bits}-bit weights, {cfg.act_bits}-bit activations). A far smaller "
           "network on far smaller data: compare the shape (a small drop at 8 bits), not the digits.")
