"""Streamlit glue for the Integer inference page: its URL-bound controls, its cached integer programs, the
example plot, the step-by-step table of one output, and the explainers.

The quantized model comes from ``ui.topics.quant`` (the Quantization page's own PTQ/QAT caches, so both pages share
one model per setting); this module converts it with ``compress_core.integer.to_integer`` and keeps the
program and its whole-test-set comparison. Every cache key is the selection (``Selection.key``) plus the
frozen ``QuantConfig`` as JSON and the run's plain values. Results are shared across sessions: never change
them in place.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from compress_core.export import compare_with_integer, time_runtimes, to_onnx
from compress_core.integer import compare_models, explain_multiplier, layer_summary, model_bytes, to_integer
from compress_core.integer.report import UnitTrace, example_logits
from compress_core.quant import QuantConfig
from compress_core.viz import common as viz_common
from compress_core.viz import integer as viz_integer
from ui import jobs
from ui.explain import explainer, published
from ui.loaders import baseline_of, dataset
from ui.memo import Memo
from ui.sidebar import Selection
from ui.state import to_bool, url_widget
from ui.topics import quant as ui_quant

W_BITS = [2, 3, 4, 5, 6, 7, 8, 10, 12, 16]
A_BITS = [4, 5, 6, 7, 8, 10, 12, 16]
MODES = {"ptq": "PTQ (post-training)", "qat": "QAT (3 epochs, LSQ)"}
GRANULARITIES = ["per channel", "per tensor"]
SCHEMES = ["symmetric", "asymmetric"]
QAT_EPOCHS = 3

_PROGRAMS, _ONNX = Memo(48), Memo(32)
TIMING_BATCH = 1024


def integer_model(sel: Selection, cfg_json: str, calib_size: int, mode: str, epochs: int = 3, lsq: bool = True,
                  headroom: bool = False) -> dict | None:
    """The quantized model, its integer program, per-layer summary, bytes and test-set comparison.

    Args:
        sel: the sidebar selection (its baseline is quantized).
        cfg_json: a ``QuantConfig`` as sorted JSON.
        calib_size: calibration examples (the first of the training split).
        mode: "ptq" or "qat" (fine-tuning ``epochs`` epochs on the heavy-run pool, LSQ when ``lsq``; its
            progress and a Cancel button are drawn while it trains).
        headroom: convert with ``to_integer(headroom=True)``, the refinement, instead of TFLite's exact rescale.

    Returns None if this session cancelled the QAT. Raises ValueError (``ConversionError`` included) with a
    message naming the layer.
    """
    res = (ui_quant.qat(sel, cfg_json, calib_size, epochs, lsq) if mode == "qat"
           else ui_quant.ptq(sel, cfg_json, calib_size))
    if res is None:
        return None

    def compute() -> dict:
        qmodel, ds = res.model, dataset(sel.dataset, sel.seed)
        program = to_integer(qmodel, ds.input_shape, headroom=headroom)
        return {"key": key, "qmodel": qmodel, "program": program, "summary": layer_summary(program),
                "bytes": model_bytes(program),
                "compare": compare_models(baseline_of(sel).model, qmodel, program, ds.x_test, ds.y_test)}

    key = (sel.key, cfg_json, calib_size, mode, epochs if mode == "qat" else 0, lsq if mode == "qat" else False,
           headroom)
    return _PROGRAMS.get(key, compute)


def controls() -> tuple[QuantConfig, str, int, bool]:
    """The quantized model's setting (a change here re-converts; seeded from the link): config, mode, calibration,
    and whether the rescale uses the headroom refinement."""
    c1, c2, c3, c4 = st.columns([1.3, 1.3, 1, 1])
    wbits = url_widget(c1.select_slider, "int_wbits", 8, "Weight bits", W_BITS, cast=int, allowed=W_BITS,
                       help="Bits per stored weight. Codes of up to 8 bits are held in int8 and multiplied with "
                            "PyTorch's int8 matrix kernel; wider ones need int16 and an int32 product.")
    abits = url_widget(c2.select_slider, "int_abits", 8, "Activation bits", A_BITS, cast=int, allowed=A_BITS,
                       help="Bits per activation. Above 8 the codes need int16 and an int32 matrix product. With "
                            "16-bit weights and activations the int32 accumulator could overflow, and the converter "
                            "refuses.")
    gran = url_widget(c3.radio, "int_gran", "per channel", "Weights", GRANULARITIES, allowed=GRANULARITIES,
                      horizontal=True,
                      help="One scale per output channel (one M0, n per channel) or one for the whole layer.")
    scheme = url_widget(c4.radio, "int_wscheme", "symmetric", "Weight grid", SCHEMES, allowed=SCHEMES,
                        horizontal=True,
                        help="Asymmetric weights have a zero point Z_w ≠ 0, which adds a run-time term Z_w·Σq_x.")
    c1, c2, c3 = st.columns([2.6, 1.3, 1])
    mode = url_widget(c1.radio, "int_mode", "ptq", "Quantized by", list(MODES), allowed=list(MODES),
                      format_func=MODES.get, horizontal=True,
                      help="Post-training quantization, or quantization-aware fine-tuning with learned step sizes.")
    calib = url_widget(c2.slider, "int_calib", 256, "Calibration examples", 16, 1024, step=16, cast=int,
                       check=lambda v: 16 <= v <= 1024,
                       help="Training inputs used to set the activation ranges (S, Z) before conversion.")
    headroom = url_widget(c3.checkbox, "int_headroom", False, "Headroom rescale", cast=to_bool,
                          help="Off: TFLite's MultiplyByQuantizedMultiplier bit for bit — round(acc·M0/2^31), then "
                               "a rounding right shift: two roundings. On: the accumulator is first scaled by the "
                               "largest 2^L that cannot overflow int32 (folded into M0, free at run time), so the "
                               "two roundings almost always equal one rounding of acc·M; a few codes move by ±1 "
                               "and the result no longer matches TFLite's.")
    cfg = QuantConfig(target="both", weight_bits=int(wbits), act_bits=int(abits),
                      weight_symmetric=scheme == "symmetric", per_channel=gran == "per channel")
    return cfg, mode, int(calib), bool(headroom)


def convert(sel: Selection, cfg: QuantConfig, mode: str, calib: int, headroom: bool = False) -> dict:
    """The cached integer program of this setting (QAT on the heavy-run pool, with its progress); stops the page
    if it cannot convert or its QAT was cancelled."""
    try:
        res = integer_model(sel, cfg.to_json(), calib, mode, QAT_EPOCHS, True, headroom=headroom)
    except ValueError as e:
        st.error(f"This model cannot run on integers with these settings. {e}")
        st.info("Lower the activation or weight bits: 8-bit weights with 8-bit activations always convert.")
        st.stop()
    if res is None:  # this session cancelled its QAT
        st.stop()
    if mode == "qat":
        fair = ui_quant.qat_control(sel, QAT_EPOCHS)
        if fair is not None:
            st.info(f"**Fair comparison.** The QAT model had {QAT_EPOCHS} more epochs of training; the float model "
                    f"fine-tuned the same way scores **{fair.accuracy:.2%}** (the float accuracy below is the "
                    "baseline's).", icon="⚖️")
    return res


# One test example through the three models and its two figures, per integer program: stepping back to an
# example seen before, by this student or another, recomputes nothing (shared between sessions: never changed).
_EXAMPLES = Memo(256)


def example(res: dict, ds, float_model, i: int) -> tuple[dict, object, object]:
    """(``example_logits`` of test example ``i``, its picture, its logits chart) for the program ``res``."""
    def compute():
        logits = example_logits(float_model, res["qmodel"], res["program"], ds.x_test[i])
        bars = viz_integer.logits_bars(list(ds.class_names), logits["float"], logits["fake_quant"], logits["integer"],
                                title="Logits of this example in the three models (outlined: predicted)")
        return logits, example_figure(ds, i), bars
    return _EXAMPLES.get((res["key"], i), compute)


def example_figure(ds, i: int):
    """Test example ``i`` as the data set draws it: an image, a signal, or a point among the others."""
    x = ds.x_test[i].numpy()
    label = ds.class_names[int(ds.y_test[i])]
    if ds.kind == "image":
        fig = viz_common.image_grid(x[None, 0], [f"test #{i}: {label}"], cols=1)
        fig.update_layout(height=260, width=260)
    elif ds.kind == "sequence":
        fig = viz_common.sequence_lines(x[None, 0], [f"test #{i}: digit {label}"])
        fig.update_layout(height=260)
    else:
        fig = viz_common.scatter_points(ds.x_test.numpy(), ds.y_test.numpy(), list(ds.class_names), title=f"test #{i}")
        fig.add_scatter(x=[x[0]], y=[x[1]], mode="markers", name="this example",
                        marker=dict(size=18, color="black", symbol="x"))
        fig.update_layout(height=300)
    return fig


def fmt_codes(v: np.ndarray, k: int = 8) -> str:
    head = ", ".join(str(int(a)) for a in v[:k])
    return f"[{head}{', …' if len(v) > k else ''}]"


def fmt_reals(v: np.ndarray, k: int = 6) -> str:
    head = ", ".join(f"{a:.3f}" for a in v[:k])
    return f"[{head}{', …' if len(v) > k else ''}]"


def ledger(t: UnitTrace, q_in: np.ndarray, x_real: np.ndarray, first: bool) -> str:
    """The step-by-step table of one output (``trace_unit``): integer-only next to float, as Markdown."""
    input_line = (f"r → q = clamp(round(r / {t.S_x:.4g}) + {t.Z_x}) = {fmt_codes(q_in.reshape(-1))}" if first else
                  f"q from the previous integer layer: {fmt_codes(q_in.reshape(-1))}")
    rows = [
        ("1 · input", input_line + f" ({t.x_bits}-bit, S_x = {t.S_x:.4g}, Z_x = {t.Z_x})",
         f"r = S_x·(q − Z_x) = {fmt_reals(x_real.reshape(-1))}"),
        ("2 · products", f"Σ (q_x − {t.Z_x})·(q_w − {t.Z_w}) over {t.n_terms} terms = {t.sum:,} (int32)",
         f"Σ x·w = {t.dot:.5f}"),
        ("3 · bias", f"q_b = round(b / (S_w·S_x)) = round({t.bias_real:.5f} / {t.S_w * t.S_x:.4g}) = {t.bias_code:,}",
         f"+ b = {t.bias_real:.5f}"),
        ("4 · accumulator", f"acc = {t.sum:,} + {t.bias_code:,} = **{t.acc:,}**", f"y = {t.pre:.5f}"),
        ("5 · multiplier", f"M = S_w·S_x / S_out = {t.S_w:.4g}·{t.S_x:.4g} / {t.S_y:.4g} = {t.M:.6g} "
                           f"≈ M0·2^−n = {t.M0:,}/2^31 · 2^−{t.n}", f"y / S_out = {t.pre_steps:.4f} steps"),
        ("6 · headroom", (f"acc·2^L = {t.acc:,}·2^{t.L} = {t.scaled:,} (fits int32: any accumulator of this layer "
                          f"is at most {t.acc_bound:,} in size)") if t.L else
         "L = 0: TFLite's rescale, no headroom (tick *Headroom rescale* to scale the accumulator first)", "—"),
        ("7 · multiply", f"high = round(acc·2^L · M0 / 2^31) = **{t.high:,}**",
         f"(y / S_out)·2^{t.n + t.L} = {t.pre_scaled:,.1f}"),
        ("8 · shift", f"round(high / 2^{t.n + t.L}) = **{t.shifted:,}** (halves away from zero)",
         f"round(y / S_out) = {t.pre_rounded:.0f}"),
        ("9 · zero point", f"{t.shifted:,} + Z_out ({t.Z_y}) = {t.plus_zero:,}",
         f"+ Z_out = {t.pre_rounded + t.Z_y:.0f}"),
        ("10 · clamp", f"clamp to [{t.lo}, {t.hi}]" + (" (ReLU fused: the lower end is Z_out)" if t.relu else "")
         + f" → **q_out = {t.out}**", ("ReLU → " if t.relu else "") + f"{t.y_float:.5f}"),
        ("11 · real value", f"S_out·(q_out − Z_out) = {t.S_y:.4g}·({t.out} − {t.Z_y}) = **{t.real_out:.5f}**",
         f"float: **{t.y_float:.5f}** · difference {t.diff:+.5f} ({t.diff_steps:+.2f} steps)"),
    ]
    return ("| step | integer-only | float, same layer and input |\n|---|---|---|\n"
            + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows))


def how_it_works(model: str, data: str, compare: dict, weight_bits: int, act_bits: int) -> None:
    """Why integers, how the multiply becomes a shift, where rounding happens, the paper's numbers."""
    st.header("How it works")
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
        "6. **Clamp** to the output range; a ReLU is just clamping at Z_out (real zero). Max-pool and flatten act on "
        "the integers unchanged, because q ↦ S(q − Z) is increasing.\n\n"
        "The fake-quant model rounds only at steps 1 and 5 (in float), so the two agree except when a value sits "
        "within a hair of a rounding boundary — then they differ by one step."))
    published("Jacob et al. 2018, “Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
              "Inference” (CVPR)",
              "ResNet-50 on ImageNet: **76.4 %** top-1 in float → **74.9 %** with integer-only 8-bit inference "
              "(quantization-aware training). M = S1·S2/S3 = 2^−n·M0 with M0 in [0.5, 1) held as an int32; int32 "
              "bias with scale S1·S2 and zero point 0; ReLU fused as a clamp.")
    st.caption(f"Measured here: {model} on {data}, float {compare['float']:.2%} → integer-only "
               f"{compare['integer']:.2%} ({weight_bits}-bit weights, {act_bits}-bit activations). A far smaller "
               "network on far smaller data: compare the shape (a small drop at 8 bits), not the digits.")


def onnx_runs(sel: Selection, key: tuple, res: dict) -> dict | None:
    """The setting exported to ONNX (QDQ, our scales and zero points) and run by ONNX Runtime: its comparison with
    our integer program on the test set and the four runtimes timed at batch 1,024 and 1, one thread each. On the
    heavy-run pool, cached per setting; None if cancelled. {"error": text} when this setting cannot be exported."""
    def compute(report) -> dict:
        ds = dataset(sel.dataset, sel.seed)
        report(0.05, "Exporting to ONNX")
        try:
            onnx_bytes = to_onnx(res["qmodel"], ds.input_shape)
        except ValueError as e:
            return {"error": str(e)}
        report(0.2, "Running ONNX Runtime on the test set")
        cmp = compare_with_integer(res["qmodel"], res["program"], ds.x_test, ds.y_test, model_bytes=onnx_bytes)
        report(0.4, f"Timing four runtimes at batch {TIMING_BATCH:,}")
        x = ds.x_test.repeat(-(-TIMING_BATCH // len(ds.x_test)), *[1] * (ds.x_test.dim() - 1))[:TIMING_BATCH]
        float_model = baseline_of(sel).model.eval()
        times = time_runtimes(float_model, res["qmodel"], res["program"], x, repeats=15)
        report(0.8, "Timing at batch 1")
        times += time_runtimes(float_model, res["qmodel"], res["program"], x[:1], repeats=50)
        return {"onnx": onnx_bytes, "compare": cmp, "times": times}

    return jobs.run(_ONNX, key, compute, "ONNX Runtime: export, compare, time", "int_onnx_cancel")


def onnx_section(sel: Selection, key: tuple, res: dict) -> None:
    """ONNX Runtime's int8 run of the same setting beside ours, and the .onnx file."""
    st.markdown("The quantized network exported as an ONNX graph whose QuantizeLinear / DequantizeLinear nodes carry "
                "**our** scales and zero points; ONNX Runtime fuses them into its own integer kernels (QGemm, "
                "QLinearConv). Does a production runtime compute what our integer program computes, and how fast?")
    out = onnx_runs(sel, key, res)
    if out is None:
        return
    if "error" in out:
        st.info(f"This setting has no ONNX form here: {out['error']}")
        return
    c = out["compare"]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("ONNX Runtime int8 acc.", f"{c['ort_accuracy']:.2%}")
    m2.metric("Our integer acc.", f"{c['integer_accuracy']:.2%}")
    m3.metric("Same prediction", f"{c['agreement']:.2%}", help=f"Argmax agreement over {c['n']:,} test examples.")
    m4.metric("Largest logit difference", f"{c['max_step_diff']} step(s)",
              help=f"|q_ONNX − q_ours| over every logit, in output quantization steps; {c['exact']:.1%} of the "
                   "logits have identical codes. ONNX Runtime rescales with one float rounding, TFLite's fixed-point "
                   "rescale rounds twice (turn on the headroom rescale above and they match almost everywhere).")
    rows = out["times"]
    base = {r["batch"]: r["median_ms"] for r in rows if r["runtime"] == "torch float"}
    table = [{"runtime": r["runtime"], "batch": r["batch"], "median ms": r["median_ms"],
              "× torch float": r["median_ms"] / base[r["batch"]]} for r in rows]
    num = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"median ms": num(format="%.3f"), "× torch float": num(format="%.2f×")})
    ratio = {(r["runtime"], r["batch"]): r["× torch float"] for r in table}
    ours, ort = ratio[("our integer program", TIMING_BATCH)], ratio[("ONNX Runtime int8", TIMING_BATCH)]
    st.caption(f"Medians on this server, one thread each, measured together. At batch {TIMING_BATCH:,} our engine "
               f"takes {ours:.2f}× torch float's time and ONNX Runtime's int8 {ort:.2f}×. A production kernel "
               "packs int8 operands for the CPU's vector instructions and does the multiply, the int32 accumulation "
               "and the rescale in one pass through memory; our teaching engine runs each stage as a separate "
               "PyTorch op (a pass over the whole tensor) so that every stage can be shown. At batch 1 the fixed "
               "cost of each op call dominates both.")
    st.download_button(f"Download the ONNX model ({len(out['onnx']):,} bytes)", out["onnx"], "model_int8.onnx",
                       "application/octet-stream", key="int_dl_onnx",
                       help="Runs in ONNX Runtime: onnxruntime.InferenceSession('model_int8.onnx').")


def _use_layer_M() -> None:
    """The button's callback (it runs before the text box is drawn): the walk-through's M into the box."""
    st.session_state["int_M"] = f"{st.session_state['_int_M_default']:.8g}"


@st.fragment
def multiplier_explorer() -> None:
    """Type a multiplier M, see its fixed-point form M0·2^−n and rescale an accumulator with it."""
    st.markdown("Type a multiplier and see its fixed-point form. M0 keeps 31 significant bits, so the "
                "representation error is below one part in two billion: the rounding that matters happens elsewhere "
                "(the fixed-point rescale of each output, step by step).")
    left, right = st.columns([2, 3])
    with left:
        text = url_widget(st.text_input, "int_M", "0.0042", "Multiplier M (e.g. 0.0042 or 3.1e-4)",
                          check=lambda v: len(v) < 40,
                          help="A positive real number: the rescale of a layer, S_w·S_x / S_out (almost always "
                               "below 1).")
        st.button("Use the layer's M from the walk-through", key="int_M_use", on_click=_use_layer_M,
                  disabled="_int_M_default" not in st.session_state,
                  help="Copy the multiplier of the output unit followed in the step-by-step tab.")
        acc = url_widget(st.number_input, "int_acc", 12345, "An int32 accumulator to rescale", -2 ** 31, 2 ** 31 - 1,
                         step=1000, cast=int, check=lambda v: -2 ** 31 <= v < 2 ** 31)
        try:
            M = float(text)
        except ValueError:
            st.error(f"“{text}” is not a number. Type a decimal such as 0.0042 or 3.1e-4.")
            return
        if not 0 < M < 2 ** 30:
            st.error(f"M = {M:g} is not a usable multiplier: a layer's rescale S_w·S_x/S_out is a positive number "
                     "(below 1 in almost every layer; M ≥ 1 becomes a left shift).")
            return
        e = explain_multiplier(M, int(acc))
        st.markdown(
            f"- **M0** = round(M·2^(31+n)) = **{e['M0']:,}** = `{e['M0_hex']}` (int32, in [2^30, 2^31): "
            f"M0/2^31 = {e['M0_fraction']:.10f})\n"
            + (f"- **n** = **{e['n']}** (M = M0/2^31 · 2^−n: a rounding right shift)\n" if e["n"] >= 0 else
               f"- **shift** = **{e['shift']}** (M = M0/2^31 · 2^{e['shift']}: M ≥ 1, so TFLite shifts the accumulator "
               "left first; the converter checks that the shifted accumulator still fits int32)\n")
            + f"- represented value: {e['value']:.12g}\n"
            f"- error: {e['abs_error']:+.3g} (relative {e['rel_error']:+.2e})\n"
            f"- acc·M in float: {e['float_result']:,.4f} → integer rescale: "
            + (f"**{e['int_result']:,}**" if e["int_result"] is not None else
               f"**impossible**: acc·2^{e['shift']} leaves int32 (the converter refuses such a layer)"))
    right.plotly_chart(viz_integer.multiplier_error(M, title="How exactly does M0·2^−n represent M?"), key="int_M_fig")
