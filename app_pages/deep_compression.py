"""Deep compression: prune, then share the survivors' values, and count every stored bit (Han et al. 2016).

Controls read here; the pipeline is compress_core.deep_compression (the page's numbers: deep_compression_report),
figures compress_core.viz.deep_compression.
"""
import json

import pandas as pd
import streamlit as st

from compress_core.deep_compression import PipelineConfig
from compress_core.deep_compression_report import formula_rows, stage_summary, used_centroids
from compress_core.viz import deep_compression as dviz
from ui import deep_compression as dc_cache
from ui.explain import explainer, published
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import url_widget

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


def controls() -> PipelineConfig:
    """The pipeline's settings, seeded from the link; stops the page with a plain message when they cannot run."""
    st.header("Controls")
    c1, c2, c3 = st.columns([2, 1, 1])
    sparsity = url_widget(c1.select_slider, "dc_sparsity", 90.0, "Target sparsity (%)", SPARSITY, cast=float,
                          allowed=SPARSITY, help="Fraction of all weights removed by magnitude by the end of pruning, "
                          "the output layer included (Han et al. prune every layer; the Pruning page prunes the "
                          "output layer at half the rate by default, so its weight counts differ at the same %).")
    scope = url_widget(c2.radio, "dc_scope", "layer", "Scope", list(SCOPE), allowed=list(SCOPE),
                       format_func=SCOPE.get, horizontal=True,
                       help="Per layer: every layer loses the same fraction. Global: one ranking of |w| across all "
                            "layers.")
    rounds = url_widget(c3.slider, "dc_rounds", 3, "Pruning rounds", 1, 5, cast=int, check=lambda v: 1 <= v <= 5,
                        help="Prune the same fraction of the survivors each round, then fine-tune under the mask.")
    c1, c2, c3, c4 = st.columns([1, 1.3, 1.2, 1])
    epochs = url_widget(c1.slider, "dc_epochs", 3, "Fine-tune epochs per round", 0, 5, cast=int,
                        check=lambda v: 0 <= v <= 5, help="Training with the pruned weights held at zero; 0 = prune "
                                                          "only.")
    method = url_widget(c2.radio, "dc_method", "kmeans", "Sharing method", list(METHOD), allowed=list(METHOD),
                        format_func=METHOD.get, horizontal=True,
                        help="k-means: k shared values per layer, placed where the weights are. Uniform: an evenly "
                             "spaced grid per output channel (compress_core.quant, symmetric so zero stays zero).")
    bits = url_widget(c3.slider, "dc_bits", 4, "Bits per weight", 1, 8, cast=int, check=lambda v: 1 <= v <= 8,
                      help="Each surviving weight is stored as a code of this many bits: k = 2^bits shared values "
                           "(centroids) or quantization levels.")
    cepochs = url_widget(c4.slider, "dc_cepochs", 1, "Centroid fine-tune epochs", 0, 3, cast=int,
                         check=lambda v: 0 <= v <= 3, disabled=method != "kmeans",
                         help="k-means only: train the centroids (a centroid's gradient is the sum of its weights' "
                              "gradients). 0 = re-evaluate only.")
    if sparsity >= 100.0:
        st.warning("At 100 % sparsity no weight is left: there is nothing to share and the network outputs only its "
                   "biases. Choose 99 % or less.")
        st.stop()
    try:
        return PipelineConfig(sparsity=sparsity / 100, scope=scope, rounds=int(rounds), epochs=int(epochs),
                              method=method, bits=int(bits), centroid_epochs=int(cepochs), seed=sel.seed)
    except ValueError as e:
        st.error(f"These settings cannot run: {e}")
        st.stop()


def run(cfg: PipelineConfig):
    """The pipeline, cached per setting: computed on the heavy-run pool the first time (with progress)."""
    try:
        res = dc_cache.pipeline(sel, b, ds, cfg)  # read only
    except ValueError as e:
        st.error(f"The pipeline stopped: {e}")
        st.stop()
    if res is None:  # this session cancelled it
        st.stop()
    return res


def stages_section(res, s) -> None:
    st.header("1 · Stage by stage")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Dense size", f"{s.dense['bytes'] / 1024:.1f} KB", help="float32, every parameter")
    m2.metric("Final size", f"{s.final['bytes'] / 1024:.1f} KB", delta=f"{s.final['ratio']:.1f}× smaller",
              delta_color="off")
    m3.metric("Dense accuracy", f"{s.dense['test_acc']:.1%}")
    m4.metric("Final accuracy", f"{s.final['test_acc']:.1%}", delta=f"{s.accuracy_change * 100:+.1f} pts")
    fair = dc_cache.control(sel, b, ds, res.config)
    if fair is not None:
        st.info(f"**Fair comparison.** Pruning came with {res.config.rounds} × {res.config.epochs} epochs of "
                f"fine-tuning. The dense network trained the same way, nothing pruned, scores "
                f"**{fair.accuracy:.1%}**: the compressed model is "
                f"**{100 * (s.final['test_acc'] - fair.accuracy):+.1f} points** from it.", icon="⚖️")
    if s.one_bit_uniform:
        st.info("A signed 1-bit symmetric grid has only two levels, −S and 0: every positive weight rounds to zero, "
                "which is why accuracy collapses. k-means with k = 2 keeps one negative and one positive value.")
    if s.sparse_costs_more:
        st.info("At this low sparsity the sparse format costs more than dense storage: every survivor also stores "
                "its column index. Sparse storage pays off only when most weights are gone.")
    if s.dead_layers:
        st.warning(f"Layer(s) {', '.join(s.dead_layers)} lost every weight: the network is cut there. "
                   "Use per-layer scope or a lower sparsity.")
    st.dataframe(pd.DataFrame(dviz.stage_frame_rows(res.stages)), hide_index=True, width="stretch")
    d1, d2, _ = st.columns([1, 1, 1])
    d1.download_button("Download CSV", pd.DataFrame(res.stages).to_csv(index=False), "deep_compression.csv",
                       "text/csv", key="dc_csv")
    d2.download_button("Download JSON", json.dumps(dict(res.to_dict(), dataset=sel.dataset, model=sel.model),
                                                   indent=2), "deep_compression.json", "application/json",
                       key="dc_json")
    g1, g2 = st.columns(2)
    g1.plotly_chart(dviz.size_by_stage(res.stages), width="stretch", key="dc_size")
    g2.plotly_chart(dviz.accuracy_by_stage(res.stages), width="stretch", key="dc_acc")


@st.fragment
def layer_view(res) -> None:
    names = [k[: -len(".weight")] for k in res.mask]
    layer = url_widget(st.selectbox, "dc_layer", names[0], "Layer", names, allowed=names)
    key = f"{layer}.weight"
    st.plotly_chart(dviz.shared_histogram(res.pruned_state[key], res.mask[key], res.final_state[key],
                                          res.centroids.get(key, []), layer), width="stretch", key="dc_hist")
    used = used_centroids(res, key)
    if used is not None:
        st.caption(f"{used} of {res.config.k} centroids hold at least one weight of {layer}. Linear initialisation "
                   "spreads them evenly over [min, max]; after heavy pruning the band around zero is empty, so "
                   "centroids that start there keep no weight and their codes go unused.")


cfg = controls()
res = run(cfg)
s = stage_summary(res)
stages_section(res, s)
st.header("2 · Shared values of one layer")
st.markdown("The surviving weights after pruning (bars) and the values they are stored as. k-means puts its "
            f"{cfg.k} centroids (dashed lines) where the weights are; the pruned weights (exact zeros) are not "
            "shown: they cost index bits, not codes.")
layer_view(res)

# --- 3 · Han's formula next to the measurement -------------------------------------------------------------------
st.header("3 · Han's formula vs measured")
st.latex(r"r = \frac{n\,b}{n \log_2 k + k\,b}")
st.markdown(f"n = surviving weights of a layer, b = 32 bits, k = {cfg.k}. Han's formula counts the sharing step "
            "alone (values vs codes + codebook); the measured ratio rounds codes up to whole bytes"
            + (" and, for uniform quantization, counts one float scale per output channel instead of a codebook"
               if cfg.method == "uniform" else "")
            + "; the last column adds the index cost, which sharing does not shrink. "
            + (f"Whole model: formula {s.formula_ratio:.2f}× for n = {s.n_kept:,}." if s.n_kept else ""))
f1, f2 = st.columns([1.1, 1])
f1.dataframe(pd.DataFrame(formula_rows(res)), hide_index=True, width="stretch")
f2.plotly_chart(dviz.formula_bars(res.formula), width="stretch", key="dc_formula")
if s.sharing_grows:
    st.caption(f"In {', '.join(s.sharing_grows)} sharing makes the layer *bigger* (measured below 1×): too few "
               "weights survive for their codes to pay for the codebook. Adding the same index cost to both sides "
               "then pulls the ratio towards 1, which is why its 'with index' ratio is the higher one.")
published("Han, Mao & Dally 2016, \"Deep Compression\", Tables 1–2 (MNIST, with Huffman coding, which this page "
          "does not do)", "LeNet-300-100: **1070 KB → 27 KB (40×)** at **1.58 %** error. LeNet-5: 1720 KB → 44 KB "
          "(39×) at 0.74 % error. Our data sets and models are smaller: compare the shape (pruning gives roughly "
          "10×, sharing multiplies it), not the digits.")
st.caption(f"Measured here ({sel.model} on {sel.dataset}): {s.dense['bytes'] / 1024:.1f} KB → "
           f"{s.final['bytes'] / 1024:.1f} KB ({s.final['ratio']:.1f}×) at {1 - s.final['test_acc']:.2%} error; "
           f"pruning alone {s.pruned['ratio']:.1f}×.")

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
