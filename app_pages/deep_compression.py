"""Deep compression: prune, share the survivors' values, write them as a Huffman-coded file with relative indices,
and count every byte (Han et al. 2016).

Controls, cached runs and the file's download: ui.topics.deep_compression; the pipeline: compress_core.deep_compression
(the page's numbers: its report module), the file format: compress_core.export.han_format (docs/FORMAT.md),
figures compress_core.viz.deep_compression.
"""
import json

import pandas as pd
import streamlit as st

from compress_core.deep_compression.report import (
    file_breakdown,
    file_layers,
    formula_rows,
    published_comparison,
    stage_summary,
    used_centroids,
)
from compress_core.viz import deep_compression as viz_deep_compression
from ui.explain import gap_words, published
from ui.loaders import baseline, dataset
from ui.sidebar import classifier_page, selection
from ui.state import url_widget, view_tabs
from ui.topics import deep_compression as ui_deep_compression

sel = selection()
classifier_page(sel, "Deep compression", "its pipeline (prune, fine-tune, k-means weight sharing, Huffman coding into"
                " a .clab file) stores plain stacks of Linear and Conv layers, which a "
                "transformer is not.", "dc_classic")
ds = dataset(sel.dataset, sel.seed)
st.title("🧩 Deep compression")
st.markdown("Han et al. 2016 chained the methods: **prune** the small weights and fine-tune, let the survivors of "
            "each layer **share** a few values (a codebook of k = 2^bits centroids), so each weight is stored as a "
            "short code, then write a **file**: each survivor's position as a short *relative* index, codes and "
            "indices **Huffman-coded**. Every byte below is counted; the last stage's size is the file's length.")
b = baseline(sel)


def run(cfg):
    """The pipeline, cached per setting: computed on the heavy-run pool the first time (with progress)."""
    try:
        res = ui_deep_compression.pipeline(sel, b, ds, cfg)  # read only
    except ValueError as e:
        st.error(f"The pipeline stopped: {e}")
        st.stop()
    if res is None:  # this session cancelled it
        st.stop()
    return res


def headline(res, s) -> None:
    """The four numbers that matter and what to know about this setting, above the tabs."""
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Dense size", f"{s.dense['bytes'] / 1024:.1f} KB", help="float32, every parameter")
    m2.metric("File size", f"{s.final['bytes'] / 1024:.2f} KB", delta=f"{s.final['ratio']:.1f}× smaller",
              delta_color="off", help=f"The length of the compressed file: {s.final['bytes']:,} bytes")
    m3.metric("Dense accuracy", f"{s.dense['test_acc']:.1%}")
    m4.metric("File accuracy", f"{s.final['test_acc']:.1%}", delta=f"{s.accuracy_change * 100:+.1f} pts",
              help="The network loaded back from the file's bytes")
    fair = ui_deep_compression.control(sel, b, ds, res.config)
    if fair is not None:
        st.info(f"**Fair comparison.** Pruning came with {res.config.rounds} × {res.config.epochs} epochs of "
                f"fine-tuning. The dense network trained the same way, nothing pruned, scores "
                f"**{fair.accuracy:.1%}**: the compressed model is "
                f"{gap_words(100 * (s.final['test_acc'] - fair.accuracy), 1)} it.", icon="⚖️")
    if s.one_bit_uniform:
        st.info("A signed 1-bit symmetric grid has only two levels, −S and 0: every positive weight rounds to zero, "
                "which is why accuracy collapses. k-means with k = 2 keeps one negative and one positive value.")
    if s.sparse_costs_more:
        st.info("At this low sparsity the sparse format costs more than dense storage: every survivor also stores "
                "its column index. Sparse storage pays off only when most weights are gone.")
    if s.dead_layers:
        st.warning(f"Layer(s) {', '.join(s.dead_layers)} lost every weight: the network is cut there. "
                   "Use per-layer scope or a lower sparsity.")


def stages_section(res, s) -> None:
    # small tables as st.table of text: drawn with the page (a dataframe grid redraws itself up to 0.4 s after a move)
    st.table(pd.DataFrame(viz_deep_compression.stage_frame_rows(res.stages)), hide_index=True)
    d1, d2, d3 = st.columns([1, 1, 2])
    d1.download_button("Download CSV", pd.DataFrame(res.stages).to_csv(index=False), "deep_compression.csv",
                       "text/csv", key="dc_csv")
    d2.download_button("Download JSON", json.dumps(dict(res.to_dict(), dataset=sel.dataset, model=sel.model),
                                                   indent=2), "deep_compression.json", "application/json",
                       key="dc_json")
    ui_deep_compression.download_file(res, sel, d3)
    st.plotly_chart(viz_deep_compression.stages_chart(res.stages), width="stretch", key="dc_stages")
    st.table(pd.DataFrame(published_comparison(res)), hide_index=True)
    published("Han, Mao & Dally 2016, \"Deep Compression\", Table 1 (MNIST; pruning, trained quantization and "
              "Huffman coding)", "LeNet-300-100: **1070 KB → 27 KB (40×)** at **1.58 %** error (1.64 % before). "
              "LeNet-5: 1720 KB → 44 KB (39×) at 0.74 % error. Pruning alone kept 8 % of LeNet-300-100's weights "
              "(Han et al. 2015). Our data set and models are smaller: compare the shape, not the digits.")
    st.caption(f"Measured here ({sel.model} on {sel.dataset}): {s.dense['bytes'] / 1024:.1f} KB → "
               f"{s.final['bytes']:,} bytes ({s.final['ratio']:.1f}×) at {1 - s.final['test_acc']:.2%} error; "
               f"pruning alone {s.pruned['ratio']:.1f}×, sharing {s.shared['ratio']:.1f}× (CSR-counted).")


@st.fragment
def layer_view(res) -> None:
    st.markdown("The surviving weights after pruning (bars) and the values they are stored as. k-means puts its "
                f"{res.config.k} centroids (dashed lines) where the weights are; the pruned weights (exact zeros) are "
                "not shown: they cost index bits, not codes.")
    names = [k[: -len(".weight")] for k in res.mask]
    layer = url_widget(st.selectbox, "dc_layer", names[0], "Layer", names, allowed=names)
    key = f"{layer}.weight"
    st.plotly_chart(viz_deep_compression.shared_histogram(res.pruned_state[key], res.mask[key], res.final_state[key],
                                          res.centroids.get(key, []), layer), width="stretch", key="dc_hist")
    used = used_centroids(res, key)
    if used is not None:
        st.caption(f"{used} of {res.config.k} centroids hold at least one weight of {layer}. Linear initialisation "
                   "spreads them evenly over [min, max]; after heavy pruning the band around zero is empty, so "
                   "centroids that start there keep no weight and their codes go unused.")


def file_section(res, s) -> None:
    layers = file_layers(res)
    fillers = sum(r["filler zeros"] for r in layers)
    widths = ", ".join(f"{r['layer']} {r['index bits']} bits" for r in layers)
    st.markdown(f"Each survivor stores the **gap** to the previous one in a b-bit index; a gap longer than 2^b − 1 "
                f"gets a **filler zero** entry (Han 2016, figure 2). b is chosen per layer to make the layer "
                f"smallest: here {widths}, with "
                f"{fillers:,} filler zeros in all. Codes and gaps are then "
                + ("**Huffman-coded** where that is smaller (Huffman 1952; the file stores each code's length, not "
                   "a tree)." if res.config.huffman else "written with **fixed-width** codes (Huffman coding off).")
                + f" The file is **{len(res.file):,} bytes**: {s.final['ratio']:.1f}× smaller than the float32 "
                "parameters, and the network read back from it gives the accuracy in the table.")
    f1, f2 = st.columns([1, 1.2])
    f1.plotly_chart(viz_deep_compression.file_bytes(file_breakdown(res), len(res.file)), width="stretch", key="dc_file")
    f2.dataframe(pd.DataFrame(layers), hide_index=True, width="stretch")


def formula_section(res, s) -> None:
    """Han's sharing-ratio formula next to the measured ratios."""
    st.latex(r"r = \frac{n\,b}{n \log_2 k + k\,b}")
    cfg = res.config
    st.markdown(f"n = surviving weights of a layer, b = 32 bits, k = {cfg.k}. Han's formula counts the sharing step "
                "alone (values vs codes + codebook); the measured ratio rounds codes up to whole bytes"
                + (" and, for uniform quantization, counts one float scale per output channel instead of a codebook"
                   if cfg.method == "uniform" else "")
                + "; the last column adds the CSR index cost, which sharing does not shrink (the file's relative "
                  "indices do: see the file's tab). "
                + (f"Whole model: formula {s.formula_ratio:.2f}× for n = {s.n_kept:,}." if s.n_kept else ""))
    f1, f2 = st.columns([1.1, 1])
    f1.dataframe(pd.DataFrame(formula_rows(res)), hide_index=True, width="stretch")
    f2.plotly_chart(viz_deep_compression.formula_bars(res.formula), width="stretch", key="dc_formula")
    if s.sharing_grows:
        st.caption(f"In {', '.join(s.sharing_grows)} sharing makes the layer *bigger* (measured below 1×): too few "
                   "weights survive for their codes to pay for the codebook. Adding the same index cost to both sides "
                   "then pulls the ratio towards 1, which is why its 'with index' ratio is the higher one.")


@st.fragment
def live() -> None:
    """Controls, headline and the open tab: a control's move reruns this, not the page around it."""
    cfg = ui_deep_compression.controls(sel.seed)
    res = run(cfg)
    s = stage_summary(res)
    headline(res, s)
    views = {"Stage by stage": lambda: stages_section(res, s), "Shared values of one layer": lambda: layer_view(res),
             "Han's formula vs measured": lambda: formula_section(res, s),
             "The file: relative indices and Huffman coding": lambda: file_section(res, s)}
    view_tabs("dc_view", views)  # only the open tab runs
    ui_deep_compression.stages_explainer(cfg)


live()
