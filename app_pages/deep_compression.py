"""Deep compression: prune, then share the survivors' values, and count every stored bit (Han et al. 2016).

Controls read here; the pipeline is compress_core.deep_compression, figures compress_core.viz.deep_compression.
"""
import json

import pandas as pd
import streamlit as st

from compress_core.deep_compression import PipelineConfig, han_ratio
from compress_core.viz import deep_compression as dviz
from ui import deep_compression as dc_cache
from ui.explain import explainer, published
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import remember, url_value

SPARSITY = [0.0, 50.0, 70.0, 80.0, 90.0, 95.0, 97.0, 98.0, 99.0, 100.0]
SCOPE = {"layer": "per layer", "global": "global"}
METHOD = {"kmeans": "k-means weight sharing", "uniform": "uniform per-channel"}

sel = selection()
ds = dataset(sel.dataset, sel.seed)
st.title("🧩 Deep compression")
st.markdown("Han et al. 2016 chained the methods: **prune** the small weights and fine-tune, then let the "
            "survivors of each layer **share** a few values (a codebook of k = 2^bits centroids), so each "
            "weight is stored as a short code. Every byte below is counted: values, codes, codebooks, the "
            "positions of the survivors (index) and the float biases.")
b = baseline(sel)

url_value("dc_sparsity", 90.0, cast=float, allowed=SPARSITY)
url_value("dc_scope", "layer", allowed=list(SCOPE))
url_value("dc_rounds", 3, cast=int, check=lambda v: 1 <= v <= 5)
url_value("dc_epochs", 3, cast=int, check=lambda v: 0 <= v <= 5)
url_value("dc_method", "kmeans", allowed=list(METHOD))
url_value("dc_bits", 4, cast=int, check=lambda v: 1 <= v <= 8)
url_value("dc_cepochs", 1, cast=int, check=lambda v: 0 <= v <= 3)

# --- Controls -------------------------------------------------------------------------------------------
st.header("Controls")
c1, c2, c3 = st.columns([2, 1, 1])
c1.select_slider("Target sparsity (%)", SPARSITY, key="dc_sparsity",
                 help="Fraction of all weights removed by magnitude by the end of pruning.")
c2.radio("Scope", list(SCOPE), key="dc_scope", format_func=SCOPE.get, horizontal=True,
         help="Per layer: every layer loses the same fraction. Global: one ranking of |w| across all layers.")
c3.slider("Pruning rounds", 1, 5, key="dc_rounds",
          help="Prune the same fraction of the survivors each round, then fine-tune under the mask.")
c1, c2, c3, c4 = st.columns([1, 1.3, 1.2, 1])
c1.slider("Fine-tune epochs per round", 0, 5, key="dc_epochs",
          help="Training with the pruned weights held at zero; 0 = prune only.")
c2.radio("Sharing method", list(METHOD), key="dc_method", format_func=METHOD.get, horizontal=True,
         help="k-means: k shared values per layer, placed where the weights are. Uniform: an evenly spaced "
              "grid per output channel (compress_core.quant, symmetric so zero stays zero).")
c3.slider("Bits per weight", 1, 8, key="dc_bits", help="Each surviving weight is stored as a code of this many "
          "bits: k = 2^bits shared values (centroids) or quantization levels.")
c4.slider("Centroid fine-tune epochs", 0, 3, key="dc_cepochs", disabled=st.session_state.dc_method != "kmeans",
          help="k-means only: train the centroids (a centroid's gradient is the sum of its weights' gradients). "
               "0 = re-evaluate only.")
remember("dc_sparsity", "dc_scope", "dc_rounds", "dc_epochs", "dc_method", "dc_bits", "dc_cepochs")
ss = st.session_state

if ss.dc_sparsity >= 100.0:
    st.warning("At 100 % sparsity no weight is left: there is nothing to share and the network outputs only its "
               "biases. Choose 99 % or less.")
    st.stop()
try:
    cfg = PipelineConfig(sparsity=ss.dc_sparsity / 100, scope=ss.dc_scope, rounds=int(ss.dc_rounds),
                         epochs=int(ss.dc_epochs), method=ss.dc_method, bits=int(ss.dc_bits),
                         centroid_epochs=int(ss.dc_cepochs), seed=sel.seed)
except ValueError as e:
    st.error(f"These settings cannot run: {e}")
    st.stop()


# --- The run, cached per setting -------------------------------------------------------------------------
bar = st.empty()  # a progress bar only while the pipeline really runs (once per setting)
try:
    res = dc_cache.pipeline(sel, b, ds, cfg, progress=lambda f, t: bar.progress(min(1.0, f), text=t))  # read only
except ValueError as e:
    bar.empty()
    st.error(f"The pipeline stopped: {e}")
    st.stop()
bar.empty()
stages = res.stages
dense, last = stages[0], stages[-1]
pruned = [r for r in stages if r["stage"].startswith("pruned")][-1]

# --- 1 · Stage by stage ----------------------------------------------------------------------------------
st.header("1 · Stage by stage")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Dense size", f"{dense['bytes'] / 1024:.1f} KB", help="float32, every parameter")
m2.metric("Final size", f"{last['bytes'] / 1024:.1f} KB", delta=f"{last['ratio']:.1f}× smaller", delta_color="off")
m3.metric("Dense accuracy", f"{dense['test_acc']:.1%}")
m4.metric("Final accuracy", f"{last['test_acc']:.1%}",
          delta=f"{(last['test_acc'] - dense['test_acc']) * 100:+.1f} pts")
if cfg.method == "uniform" and cfg.bits == 1:
    st.info("A signed 1-bit symmetric grid has only two levels, −S and 0: every positive weight rounds to zero, "
            "which is why accuracy collapses. k-means with k = 2 keeps one negative and one positive value.")
if pruned["bytes"] > dense["bytes"]:
    st.info("At this low sparsity the sparse format costs more than dense storage: every survivor also stores "
            "its column index. Sparse storage pays off only when most weights are gone.")
if res.mask.dead_layers():
    st.warning(f"Layer(s) {', '.join(res.mask.dead_layers())} lost every weight: the network is cut there. "
               "Use per-layer scope or a lower sparsity.")
table = pd.DataFrame(dviz.stage_frame_rows(stages))
st.dataframe(table, hide_index=True, width="stretch")
d1, d2, _ = st.columns([1, 1, 3])
d1.download_button("Download CSV", pd.DataFrame(stages).to_csv(index=False), "deep_compression.csv", "text/csv",
                   key="dc_csv")
d2.download_button("Download JSON", json.dumps(dict(res.to_dict(), dataset=sel.dataset, model=sel.model), indent=2),
                   "deep_compression.json", "application/json", key="dc_json")
g1, g2 = st.columns(2)
g1.plotly_chart(dviz.size_by_stage(stages), width="stretch", key="dc_size")
g2.plotly_chart(dviz.accuracy_by_stage(stages), width="stretch", key="dc_acc")


# --- 2 · The shared weights of one layer --------------------------------------------------------------------
@st.fragment
def layer_view() -> None:
    names = [k[: -len(".weight")] for k in res.mask]
    url_value("dc_layer", names[0], allowed=names)
    st.selectbox("Layer", names, key="dc_layer")
    remember("dc_layer")
    key = f"{ss.dc_layer}.weight"
    st.plotly_chart(dviz.shared_histogram(res.pruned_state[key], res.mask[key], res.final_state[key],
                                          res.centroids.get(key, []), ss.dc_layer), width="stretch", key="dc_hist")
    if key in res.centroids and res.mask.kept(key):
        used = int(res.final_state[key][res.mask[key].bool()].unique().numel())
        st.caption(f"{used} of {cfg.k} centroids hold at least one weight of {ss.dc_layer}. Linear initialisation "
                   "spreads them evenly over [min, max]; after heavy pruning the band around zero is empty, so "
                   "centroids that start there keep no weight and their codes go unused.")


st.header("2 · Shared values of one layer")
st.markdown("The surviving weights after pruning (bars) and the values they are stored as. k-means puts its "
            f"{cfg.k} centroids (dashed lines) where the weights are; the pruned weights (exact zeros) are not "
            "shown: they cost index bits, not codes.")
layer_view()

# --- 3 · Han's formula next to the measurement -------------------------------------------------------------------
st.header("3 · Han's formula vs measured")
st.latex(r"r = \frac{n\,b}{n \log_2 k + k\,b}")
n_all = sum(r["n"] for r in res.formula)
st.markdown(f"n = surviving weights of a layer, b = 32 bits, k = {cfg.k}. Han's formula counts the sharing step "
            "alone (values vs codes + codebook); the measured ratio rounds codes up to whole bytes"
            + (" and, for uniform quantization, counts one float scale per output channel instead of a codebook"
               if cfg.method == "uniform" else "")
            + "; the last column adds the index cost, which sharing does not shrink. "
            + (f"Whole model: formula {han_ratio(n_all, cfg.k):.2f}× for n = {n_all:,}." if n_all else ""))
f1, f2 = st.columns([1.1, 1])
f1.dataframe(pd.DataFrame(res.formula).drop(columns="b").round(2).rename(columns={
    "n": "n kept", "han_formula": "formula ×", "measured": "measured ×", "measured_with_index": "with index ×"}),
    hide_index=True, width="stretch")
f2.plotly_chart(dviz.formula_bars(res.formula), width="stretch", key="dc_formula")
published("Han, Mao & Dally 2016, \"Deep Compression\", Tables 1–2 (MNIST, with Huffman coding, which this page "
          "does not do)", "LeNet-300-100: **1070 KB → 27 KB (40×)** at **1.58 %** error. LeNet-5: 1720 KB → 44 KB "
          "(39×) at 0.74 % error. Our data sets and models are smaller: compare the shape (pruning gives roughly "
          "10×, sharing multiplies it), not the digits.")
st.caption(f"Measured here ({sel.model} on {sel.dataset}): {dense['bytes'] / 1024:.1f} KB → {last['bytes'] / 1024:.1f} KB "
           f"({last['ratio']:.1f}×) at {1 - last['test_acc']:.2%} error; pruning alone {pruned['ratio']:.1f}×.")

explainer("What each stage stores, and why the ratio is smaller than 32 / bits", f"""
- **Dense**: every parameter as a 4-byte float.
- **Pruned** (magnitude, {SCOPE[cfg.scope]}, {cfg.rounds} round(s), fine-tuned under the mask): a CSR matrix per
  layer: 4-byte values of the survivors, a column index for each (1 byte when a row has ≤ 256 columns, else 2),
  and one row pointer per row. The index is why 90 % sparsity gives less than 10×.
- **Shared**: each survivor becomes a {cfg.bits}-bit code into the layer's codebook ({cfg.k} × 32 bits for
  k-means; one float scale per output channel for uniform); the CSR index stays. Biases stay float32.
- Han et al. also Huffman-code the codes and store 4–5-bit *relative* indices; this page does neither, so its
  figures are an upper bound on what their full pipeline would store.
- k-means uses **linear initialisation** (centroids evenly spaced over [min, max]): it keeps centroids out at
  the rare large weights, which matter most (Han 2016, section 3.2).
""")
