"""Home: where compression starts — the data, the model, and the trained baseline.

Its first tab shows a cached baseline from the numbers the cache wrote next to its weights (compress_core.settings,
no PyTorch), so a fresh server's first page comes up about as fast as a one-line Streamlit app; the other tabs load
the data set and the network (figures and tables are imported there, not at the top, for the same reason).
"""
import math

import streamlit as st

from compress_core.catalog import PUBLISHED_BASELINES, built_architecture, data_info, param_count, weighted_layer_count
from ui.explain import published
from ui.sidebar import selection
from ui.state import view_tabs
from ui.topics import home as ui_home

sel = selection()
info = data_info(sel.dataset)
arch = built_architecture(sel.model, info.input_shape)
n_params = param_count(arch, info)

st.title("Compression Lab")
st.markdown(
    "Neural networks are bigger than they need to be. **Pruning** removes weights or whole neurons; "
    "**quantization** stores the rest in fewer bits. This lab trains a small network on a built-in data "
    "set, then lets you cut and squeeze it and watch what happens — to the weights, the size, the speed "
    "and the accuracy. Pick the data set and model in the sidebar; every page uses the same choice."
)


def overview() -> None:
    test, hist = ui_home.baseline_numbers(sel)
    c1, c2, c3 = st.columns(3)
    c1.metric("Parameters", f"{n_params:,}")
    c2.metric("Size (float32)", f"{n_params * 4 / 1024:.1f} KB")
    c3.metric("Weighted layers", weighted_layer_count(arch))
    c1, c2, c3, c4 = st.columns(4)
    if info.kind == "text":  # a language model: the next character's accuracy, the loss in bits per character
        c1.metric("Next character right", f"{test['accuracy']:.2%}", help="Test accuracy of the top prediction.")
        c2.metric("Bits / char", f"{test['loss'] / math.log(2):.3f}", help="Mean cross-entropy per held-out "
                  "character in bits (lower is better); its test loss in nats is " f"{test['loss']:.3f}.")
    else:
        c1.metric("Test accuracy", f"{test['accuracy']:.2%}")
        c2.metric("Test loss", f"{test['loss']:.3f}")
    if sel.weights:
        st.info("These are **your uploaded weights**: the accuracy above is theirs on this data set's test split. "
                "They came without a training history, and θ0 for lottery tickets is this seed's fresh "
                "initialisation.", icon="📤")
    else:
        c3.metric("Training steps", f"{hist['iterations']:,}")
        c4.metric("Training time", f"{hist['seconds']:.1f} s", help="Wall time when this baseline was trained; "
                  "later visits load it from the disk cache.")
    if sel.dataset in PUBLISHED_BASELINES:
        paper = PUBLISHED_BASELINES[sel.dataset]
        published(paper["citation"], " · ".join(f"{m.upper() if len(m) <= 3 else m} {a:.0%}" for m, a in
                                                paper["accuracy"].items())
                  + f". Measured here, {sel.model}: **{test['accuracy']:.1%}** (seed {sel.seed}; the paper's "
                  "models and training differ in detail, so compare the level, not the digits).")
    st.caption(f"**{sel.dataset}** — {info.description} This trained network is the **baseline** that every other "
               f"page compresses. Its initial weights θ0 and an early checkpoint θk (after "
               f"{sel.train.rewind_iteration} steps) are kept for lottery tickets.")


def data_view() -> None:
    from compress_core.viz import common as viz_common
    from ui.loaders import dataset

    ds = dataset(sel.dataset, sel.seed)
    st.markdown(f"**{sel.dataset}** — {ds.description} Split with seed {sel.seed}: "
                f"{ds.sizes['train']:,} train · {ds.sizes['val']:,} validation · {ds.sizes['test']:,} test.")
    st.plotly_chart(viz_common.data_samples(ds.x_train.numpy(), ds.y_train.numpy(), ds.kind, list(ds.class_names)),
                    key="home_data")


def model_view() -> None:
    import pandas as pd

    from compress_core.models import summary
    from ui.loaders import baseline

    table = summary(baseline(sel).model, info.input_shape)
    table = pd.DataFrame([{**r, "output_shape": " × ".join(map(str, r["output_shape"]))} for r in table["layers"]])
    table.columns = ["layer", "type", "output shape", "weights", "biases", "parameters", "bytes"]
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="localized")
                                for c in ("weights", "biases", "parameters", "bytes")})
    st.caption("Every weighted layer is a Linear or a Conv layer (ReLU, pooling and flatten carry no parameters); the "
               "compression pages work on these, one layer at a time.")


def training_view() -> None:
    from compress_core.viz import common as viz_common
    from ui.loaders import baseline, dataset

    b = baseline(sel)
    if b.history.records:
        st.plotly_chart(viz_common.training_curves(b.history.records, title="Training curves"), key="home_curves")
    elif sel.weights:
        st.info("Your uploaded weights came without a training history.", icon="📤")
    ds = dataset(sel.dataset, sel.seed)
    if ds.kind == "points":
        st.plotly_chart(viz_common.decision_boundary(viz_common.model_predictor(b.model), ds.x_test.numpy(),
                                                     ds.y_test.numpy(),
                                              list(ds.class_names), title="Decision boundary on the test points"),
                        key="home_boundary")


views = {"The trained baseline": overview, "The data": data_view, "The model": model_view, "Training": training_view}
view_tabs("home_view", views)  # only the open tab runs: the first needs no PyTorch


# --- Where to go next ----------------------------------------------------------------------------------
def topic_links(*pages: tuple[str, str, str]) -> None:
    """Links to topic pages (file stem, icon, label) that carry the current selection along."""
    for stem, icon, label in pages:
        st.page_link(f"app_pages/{stem}.py", label=label, icon=icon, query_params=sel.as_query())


st.header("Two ways to compress")
left, right = st.columns(2)
with left:
    st.subheader("✂️ Pruning")
    st.markdown("Set small weights to zero (unstructured), or remove whole neurons and channels (structured). "
                "With a little retraining most weights can go. Unstructured zeros save memory only with a "
                "sparse format, and dense hardware does not run faster; removing neurons makes the dense "
                "layers genuinely smaller. The *lottery ticket hypothesis* says a sparse subnetwork, "
                "trained from the original initialization, could have done the job from the start.")
    topic_links(("pruning", "✂️", "Pruning: cut weights and neurons, watch accuracy and speed"),
                ("lottery", "🎟️", "Lottery tickets: find the subnetwork that trains alone"))
with right:
    st.subheader("🔢 Quantization")
    st.markdown("Store each number in 8, 4 or even 2 bits instead of 32. A real value r is written as "
                "r = S·(q − Z): an integer q, a scale S and a zero point Z. Calibration picks S and Z; "
                "quantization-aware training teaches the network to live with the rounding. Taken to the end, "
                "the network runs on integers only: int8 products summed in int32, rescaled by an integer "
                "multiply and a bit shift.")
    topic_links(("quantization", "🔢", "Quantization: bits, scales, zero points, PTQ and QAT"),
                ("integer", "🧮", "Integer inference: run the network with no float at all"))
st.markdown("**Both together.** Han et al. (2016) pruned first, then let the surviving weights share a few "
            "values: each step multiplies the other's savings.")
topic_links(("deep_compression", "🧩", "Deep compression: prune, share weights, count every byte"),
            ("compare", "⚖️", "Compare recipes: side by side on size, latency and energy, with the Pareto front"))
st.markdown("**And transformers.** A language model is compressed after training, from a little calibration "
            "text: weights in 4 or 3 bits with GPTQ and AWQ, activation outliers and SmoothQuant, pruning with Wanda "
            "and SparseGPT, and a quantized KV cache.")
st.page_link("app_pages/language_models.py", label="Language models: a tiny GPT, compressed the way large ones are",
             icon="🤖", query_params={"dataset": "pydoc", "model": "gpt", "seed": str(sel.seed)})  # the GPT's page
ui_home.why_compress()
