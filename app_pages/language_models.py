"""Language models: what compression does to a transformer, live on a tiny GPT trained on pydoc's help texts.

Activation outliers and SmoothQuant (Xiao et al. 2023); weight-only quantization with round-to-nearest, GPTQ
(Frantar et al. 2023) and AWQ (Lin et al. 2024); pruning with magnitude, Wanda (Sun et al. 2024) and SparseGPT
(Frantar & Alistarh 2023); KV-cache quantization (KIVI, Liu et al. 2024); and the text each variant writes.
Variants and scores from compress_core.lm, figures from compress_core.viz.lm, caching in ui/lm.py.
"""
import streamlit as st

from compress_core import lm
from compress_core.catalog import data_info
from compress_core.viz import lm as viz_lm
from ui.loaders import baseline, dataset
from ui.sidebar import lesson_switch, selection
from ui.state import url_widget, view_tabs
from ui.topics import lm as ui_lm

sel = selection()
st.title("🤖 Language models")
st.markdown(
    "The other half of compression, as it is done to transformers today: **activation outliers** and "
    "**SmoothQuant**, **4- and 3-bit weights** with GPTQ and AWQ, **50 % and 2:4 pruning** with Wanda and "
    "SparseGPT, and a **quantized KV cache** — on a small GPT that learned Python's own help texts "
    "character by character (trained here, on this CPU). Its score is **bits per character** on text it never "
    "saw (lower is better; ± is a standard error over the held-out windows of 64 characters).")
if data_info(sel.dataset).kind != "text":
    lesson_switch(sel, "pydoc", "gpt", "This page needs a language model: the tiny GPT on pydoc's help texts. "
                  "The other pages work on it too.", "lm_switch")
    st.stop()

ds = dataset(sel.dataset, sel.seed)
b = baseline(sel)
ref = ui_lm.scores(sel, ds, ("float",), "Scoring the float model", "lm_cancel_float")
if ref is None:
    st.stop()
m1, m2, m3 = st.columns(3)  # three, not four: on a projector at 150 % zoom four columns cut their labels short
m1.metric("Float bits / char", f"{ref['float'].bpc:.3f}", f"± {ref['float'].se:.3f}", delta_color="off",
          delta_arrow="off", help="Mean cross-entropy per held-out character, in bits, ± its standard error over the "
                                  "windows: 0 = certain of every next character; log2 of the vocabulary (6.6) = "
                                  "guessing.")
m2.metric("Perplexity", f"{2 ** ref['float'].bpc:.2f}", help="2^(bits per character): the number of equally likely "
                                                                "characters the model hesitates between, on average.")
m3.metric("Next character right", f"{b.test_metrics.accuracy:.1%}", help="Test accuracy of the top prediction.")
st.caption(f"{sel.model}: {sum(p.numel() for p in b.model.parameters()):,} parameters, reading "
           f"{ds.input_shape[0]} characters at a time; {ref['float'].windows} held-out windows.")


def outliers_view() -> None:
    st.markdown("A transformer's activations carry a few **channels far larger than the rest**, the same channels "
                "on every token (Dettmers et al. 2022; Xiao et al. 2023). One 8-bit scale per tensor must stretch "
                "to cover them, leaving the ordinary channels a handful of levels.")
    table = ui_lm.outliers(sel, ds)
    layers = [r["layer"] for r in table]
    layer = url_widget(st.selectbox, "lm_layer", layers[0], "Layer", layers, allowed=layers,
                       help="Which Linear layer's inputs to show (q, k, v read the first LayerNorm; fc the second; "
                            "proj and fc2 the attention's and the MLP's own outputs).")
    row = next(r for r in table if r["layer"] == layer)
    st.plotly_chart(viz_lm.channel_chart(ui_lm.channel_magnitudes(sel, ds, layer), row["top"], layer, row["ratio"]),
                    key="lm_channels_fig")
    st.dataframe([dict(layer=r["layer"], channels=r["channels"], **{"largest ÷ median": round(r["ratio"], 1),
                       f"channels > {lm.OUTLIER_RATIO:g}× median": r["outliers"]}) for r in table],
                 hide_index=True, width="stretch")
    res = ui_lm.scores(sel, ds, ("w8a8_per_tensor", "w8a8_per_token"), "W8A8 per tensor and per token",
                       "lm_cancel_w8a8")
    if res:
        st.plotly_chart(viz_lm.bpc_bars(res, "8-bit weights and activations"), key="lm_w8a8_fig")
        st.markdown(ui_lm.verdict(res, "w8a8_per_token", "w8a8_per_tensor"))
        st.markdown(ui_lm.outlier_words(table, res, sum(p.numel() for p in b.model.parameters())))


def smoothquant_view() -> None:
    st.markdown("SmoothQuant divides each input channel by s_j = max|X_j|^α / max|W_j|^(1−α) and multiplies the "
                "weights' matching column by it: the layer computes the same function, but the activations' peaks "
                "move into the weights, which quantize per output channel. **α = 0** leaves all the difficulty on "
                "the activations (the weights' columns are normalised to a maximum of 1); **α = 1** moves it all "
                "into the weights (every activation channel's maximum becomes 1); at **0.5** both maxima meet.")
    layers = [r["layer"] for r in ui_lm.outliers(sel, ds)]
    c1, c2 = st.columns([2, 1])
    alpha = url_widget(c1.select_slider, "lm_alpha", 0.5, "Migration strength α", list(lm.ALPHAS), cast=float,
                       allowed=list(lm.ALPHAS), help="How much of the activations' range moves into the weights.")
    layer = url_widget(c2.selectbox, "lm_sq_layer", layers[0], "Layer", layers, allowed=layers)
    res = ui_lm.scores(sel, ds, tuple(f"w8a8_smoothquant_a{a:g}" for a in lm.ALPHAS) + (
        "w8a8_per_tensor", "w8a8_per_token"), "SmoothQuant at every α", "lm_cancel_alpha")
    if res:
        st.plotly_chart(viz_lm.alpha_chart(res, alpha, "W8A8 against α"), key="lm_alpha_fig")
        st.markdown(ui_lm.verdict(res, f"w8a8_smoothquant_a{alpha:g}", "w8a8_per_tensor"))
    st.plotly_chart(viz_lm.smoothing_chart(ui_lm.smoothing(sel, ds, layer, alpha), layer, alpha),
                    key="lm_smooth_fig")


def weight_view() -> None:
    st.markdown("Weights alone in 2–8 bits, a scale (and zero point) per **group** of input columns. "
                "**RTN** rounds each weight to the nearest level; **GPTQ** quantizes one column at a time and "
                "corrects the columns not yet quantized for the error, using the inputs' second moments "
                "(H = 2XXᵀ); **AWQ** first scales up the input channels that carry large activations, so their "
                "weights lose less to rounding.")
    c1, c2 = st.columns(2)
    bits = url_widget(c1.select_slider, "lm_bits", 3, "Weight bits", list(ui_lm.WEIGHT_BITS), cast=int,
                      allowed=list(ui_lm.WEIGHT_BITS))
    group = url_widget(c2.radio, "lm_group", "128", "Group size", list(ui_lm.GROUPS), allowed=list(ui_lm.GROUPS),
                       format_func=ui_lm.GROUPS.get, horizontal=True,
                       help="Input columns sharing one scale: smaller groups fit the weights better and store "
                            "more scales.")
    keys = tuple(f"{m}_w{bits}_g{group}" for m in ("rtn", "gptq", "awq"))
    res = ui_lm.scores(sel, ds, keys, f"RTN, GPTQ and AWQ at {bits} bits", "lm_cancel_weights")
    if not res:
        return
    st.plotly_chart(viz_lm.bpc_bars(res, f"Weight-only, {bits} bits, {ui_lm.GROUPS[group]}"), key="lm_wq_fig")
    st.markdown("- " + ui_lm.verdict(res, keys[1], keys[0]) + "\n- " + ui_lm.verdict(res, keys[2], keys[0]))
    obj = ui_lm.objectives(sel, ds, bits, "channel" if group == "ch" else int(group))
    if obj:
        below = sum(r["gptq"] <= r["rtn"] for r in obj)
        st.plotly_chart(viz_lm.objective_chart(obj, "Each layer's output error, relative to RTN"), key="lm_obj_fig")
        st.caption(f"GPTQ's layer-wise error ‖XWᵀ − XŴᵀ‖² is at or below RTN's on {below} of {len(obj)} layers "
                   "(the objective it minimizes); the bits per character above say what that buys the whole model. "
                   "AWQ's bars search a scale for each layer alone; the model scored above shares one scale among "
                   "q, k and v, folded into their LayerNorm, as the paper does.")
    ui_lm.published_table("weight")


def prune_view() -> None:
    st.markdown("Cut weights without retraining. **Magnitude** removes the smallest |W| in each layer; **Wanda** "
                "scores |W_ij|·‖X_j‖ and compares within each output row; **SparseGPT** picks the mask block by "
                "block from the inverse Hessian and **updates the surviving weights** to make up for the removed "
                "ones. 2:4 keeps two of every four consecutive weights (what sparse tensor cores run fast).")
    target = url_widget(st.radio, "lm_prune", "50", "Sparsity", list(ui_lm.PRUNE_TARGETS),
                        allowed=list(ui_lm.PRUNE_TARGETS), format_func=ui_lm.PRUNE_TARGETS.get, horizontal=True)
    keys = tuple(f"{m}_{target}" for m in ("magnitude", "wanda", "sparsegpt"))
    res = ui_lm.scores(sel, ds, keys, f"Magnitude, Wanda and SparseGPT at {ui_lm.PRUNE_TARGETS[target]}",
                       "lm_cancel_prune")
    if not res:
        return
    st.plotly_chart(viz_lm.bpc_bars(res, f"Pruned to {ui_lm.PRUNE_TARGETS[target]}, no retraining"),
                    key="lm_prune_fig")
    st.markdown("- " + ui_lm.verdict(res, keys[1], keys[0]) + "\n- " + ui_lm.verdict(res, keys[2], keys[1]))
    st.caption(ui_lm.wanda_words(res, keys, ui_lm.outliers(sel, ds)))
    ui_lm.published_table("prune")


def kv_view() -> None:
    st.markdown("While it writes, a transformer keeps every earlier token's **keys and values** (the KV cache): "
                "at long contexts they outweigh the weights. Quantizing them is like quantizing activations. "
                "KIVI (Liu et al. 2024) quantizes **keys per channel** (their outliers sit in fixed channels) and "
                "**values per token**.")
    axes = url_widget(st.radio, "lm_kv_axes", "kivi", "Grouping", ["kivi", "token"], allowed=["kivi", "token"],
                      format_func={"kivi": "keys per channel, values per token (KIVI)",
                                   "token": "both per token"}.get, horizontal=True)
    keys = tuple(f"kv{b}" + ("_token" if axes == "token" else "") for b in ui_lm.KV_BITS)
    res = ui_lm.scores(sel, ds, keys, "KV-cache quantization at 8, 4 and 2 bits", "lm_cancel_kv")
    if res:
        st.plotly_chart(viz_lm.bpc_bars(res, "Keys and values quantized, weights float"), key="lm_kv_fig")
        st.markdown("- " + "\n- ".join(ui_lm.float_words(res, k) for k in keys))


def generate_view() -> None:
    st.markdown("The same prompt, the same random draws: where the compressed model's text differs from the "
                "float model's, its probabilities did. Lower the temperature to see its single most likely text.")
    c1, c2 = st.columns([2, 1])
    options = list(ui_lm.SAMPLE_KEYS[1:])
    key = url_widget(c1.selectbox, "lm_gen", "gptq_w3_g128", "Compressed variant", options, allowed=options,
                     format_func=lm.label)
    prompt = url_widget(c1.text_input, "lm_prompt", "The return value of ", "Prompt", max_chars=64,
                        help="Up to 64 characters; a character outside the model's 97 becomes its fallback symbol '�'.")
    n = url_widget(c2.slider, "lm_chars", 200, "Characters", 20, 400, step=20, cast=int,
                   check=lambda v: 20 <= v <= 400)
    temperature = url_widget(c2.select_slider, "lm_temp", 0.8, "Temperature", [0.0, 0.5, 0.8, 1.0, 1.2], cast=float,
                             allowed=[0.0, 0.5, 0.8, 1.0, 1.2])
    seed = url_widget(c2.number_input, "lm_gen_seed", 0, "Sampling seed", 0, 9999, step=1, cast=int,
                      check=lambda v: 0 <= v <= 9999)
    texts = ui_lm.samples(sel, ds, ("float", key), prompt, n, temperature, seed)
    if texts:
        left, right = st.columns(2)
        left.markdown("**float32**")
        left.code(prompt + texts["float"], language=None, wrap_lines=True)
        right.markdown(f"**{lm.label(key)}**")
        right.code(prompt + texts[key], language=None, wrap_lines=True)


@st.fragment
def views() -> None:
    """The views as lazy tabs, in a fragment: a control move reruns the open view only, not the page above it."""
    view_tabs("lm_view", {"Outliers": outliers_view, "SmoothQuant": smoothquant_view,
                          "Weights: RTN, GPTQ, AWQ": weight_view, "Pruning: Wanda, SparseGPT": prune_view,
                          "KV cache": kv_view, "Generate": generate_view})


views()
