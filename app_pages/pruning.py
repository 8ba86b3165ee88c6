"""Pruning: how much of the network can be cut, which parts, and what it costs.

Unstructured and structured pruning (Han et al. 2015; Li et al. 2017), N:M semi-structured sparsity,
one-shot / iterative / gradual schedules (Zhu & Gupta 2017), sensitivity, honest size and latency.
"""
import json

import pandas as pd
import streamlit as st
from torch import nn

from compress_core.models import weighted_layers
from compress_core.pruning import PruneOutcome, PruneSettings, gpt_summary, weight_values
from compress_core.pruning.report import PUBLISHED_LAYER_SPARSITY, PruneReport, layer_threshold
from compress_core.viz import common as viz_common
from compress_core.viz import lottery as viz_lottery
from compress_core.viz import pruning as viz_pruning
from ui.explain import gap_words
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import url_widget, view_tabs
from ui.topics import pruning as ui_pruning
from ui.topics import pruning_recover as ui_pruning_recover

sel = selection()
ds = dataset(sel.dataset, sel.seed)
st.title("✂️ Pruning")
st.markdown("How much of this network can be cut, which parts, and what does it cost? Move the sparsity "
            "slider: the weights, the mask, the accuracy and the size below are recomputed for every position.")
b = baseline(sel)
base = b.test_metrics
model = b.model  # a fresh copy of the trained baseline, built once per run; everything below only reads it
layers = [n for n, _ in weighted_layers(model)]
text = ds.kind == "text"  # the language model: every Linear layer inside its blocks, the tied head left whole


def weights_and_mask(s: PruneSettings, res: PruneOutcome) -> None:
    """The chosen layer's weight histogram beside its mask, and the 2:4 pattern when that is the granularity."""
    mask = res.mask
    left, right = st.columns(2)
    with left:
        layer = url_widget(st.selectbox, "pr_layer", layers[0], "Layer", layers, allowed=layers,
                           help="Which layer's weights and mask to show.")
        ui_pruning.follow_layer(layer)
        key = f"{layer}.weight"
        t = layer_threshold(model, mask, layer, s)
        st.plotly_chart(viz_pruning.weight_histogram(weight_values(model, layer).numpy(),
                                                     mask[key].reshape(-1).numpy(), t,
                                              layer), key="pr_hist")
        st.caption("The trained weights of the baseline. Magnitude pruning removes the red centre — the weights "
                   "closest to zero — up to the dashed threshold; random pruning takes from everywhere; "
                   "structured and 2:4 pruning cut by neuron or by group, so the cut is not a clean threshold."
                   + ("" if not s.finetune_epochs else " (Fine-tuning then moves the survivors: the histogram shows "
                                                       "the weights before it.)"))
    with right:
        first = layers[0]
        if layer == first and ds.kind == "image" and isinstance(dict(weighted_layers(model))[first], nn.Linear):
            n = mask[key].shape[0]
            title = f"How many of the {n} {layer} neurons<br>still read each pixel"
            st.plotly_chart(viz_lottery.first_layer_inputs(mask[key].numpy(), ds.input_shape, ds.kind, 0, title=title),
                            key="pr_pixels")
            st.caption("Each pixel of the 8×8 input, coloured by the number of first-layer connections it keeps. "
                       "Magnitude pruning empties the border first: those pixels are blank in every digit, so their "
                       "weights never grew. Random pruning thins every pixel alike.")
        else:
            st.plotly_chart(viz_pruning.mask_heatmap(mask[key].numpy(), layer), key="pr_heat")
            st.caption("Rows are output neurons/filters, columns their inputs (conv kernels flattened). "
                       "Structured pruning empties whole rows; 2:4 keeps two of every four columns.")
    if s.granularity == "nm":
        st.subheader("2:4 semi-structured sparsity")
        st.plotly_chart(viz_pruning.nm_pattern(weight_values(model, layer).reshape(res.mask[key].shape).numpy(),
                                        res.mask[key].numpy()), key="pr_nm")
        st.markdown("In every group of 4 consecutive weights of a row, the 2 largest survive (red × = pruned). "
                    "Because every group has exactly the same shape, NVIDIA's sparse tensor cores (Ampere and "
                    "newer) store 2 values plus 2-bit positions and skip the zeros in hardware, for up to 2× "
                    "matrix-multiply throughput (Mishra et al. 2021). Unstructured sparsity has no such regular "
                    "shape, which is why dense hardware cannot exploit it.")


def network_view(s: PruneSettings, res: PruneOutcome) -> None:
    """Sparsity per layer, decision boundaries (2-D data) and the schedule's steps."""
    han = PUBLISHED_LAYER_SPARSITY.get(sel.model)
    if text and s.granularity in ("neuron", "head"):
        st.plotly_chart(viz_pruning.gpt_blocks_figure(gpt_summary(model, res.mask)), key="pr_gpt_blocks")
        st.caption("What surgery keeps of each transformer block. Every block keeps at least one attention head and "
                   "one MLP neuron; the width of the residual stream never changes.")
    st.plotly_chart(viz_pruning.layer_bars(res.mask.layer_sparsity(), han), key="pr_bars")
    if han:
        st.caption("Grey: the per-layer sparsity Han et al. (2015) *published* for LeNet-300-100 on MNIST "
                   "(8 % / 9 % / 26 % of weights kept), shown for shape, not measured here.")
    if ds.kind == "points":
        a, bcol = st.columns(2)
        x, y = ds.x_test.numpy(), ds.y_test.numpy()
        names = list(ds.class_names)
        a.plotly_chart(viz_common.decision_boundary(viz_common.model_predictor(model), x, y, names,
                                                    title=f"Baseline ({base.accuracy:.1%})"), key="pr_db_base")
        bcol.plotly_chart(viz_common.decision_boundary(viz_common.model_predictor(res.model), x, y, names,
                                                       title=f"Pruned ({res.metrics.accuracy:.1%})"),
                          key="pr_db_pruned")
    if res.steps:
        st.markdown(f"**The {s.schedule} schedule, step by step** (test set)")
        ui_pruning.steps_table(res.steps)


def curves(s: PruneSettings, rep: PruneReport) -> None:
    c1, c2 = st.columns(2)
    epochs = url_widget(c1.slider, "pr_curve_ft", 3, "Fine-tune epochs per point (curves)", 1, 10, cast=int,
                        check=lambda v: 1 <= v <= 10,
                        help="Training after each pruning step for the fine-tuned curves.")
    gradual = url_widget(c2.radio, "pr_gradual", "none", "Gradual pruning (Zhu & Gupta 2017)", list(ui_pruning.GRADUAL),
                         allowed=list(ui_pruning.GRADUAL), format_func=ui_pruning.GRADUAL.get, horizontal=True,
                         help="The mask follows s_t = s_f·(1 − (1 − t/T)³) inside one training run, updated "
                              "every Δt steps. 'While fine-tuning' starts from the trained model and prunes "
                              "in the first 3/4 of the fine-tuning epochs; 'also from θ0' runs the paper's "
                              "setting: the baseline's whole training from its initial weights, pruning from "
                              "1/4 to 3/4 of it (slow: one full training per point).")
    modes = ("oneshot", "oneshot_ft", "iterative") + ui_pruning.GRADUAL_MODES[gradual]
    rows = ui_pruning.curves(b, ds, sel, s, epochs, modes)
    if not rows:  # every curve cancelled
        return
    fair = ui_pruning.control(b, ds, sel, PruneSettings(finetune_epochs=epochs, finetune_lr=s.finetune_lr,
                                                   finetune_optimizer=s.finetune_optimizer, seed=s.seed))
    st.plotly_chart(viz_pruning.curves_figure(rows, base.accuracy, rep.sparsity, fair.accuracy if fair else None),
                    key="pr_curves")
    st.caption(f"Each point prunes the baseline with the current criterion, scope and granularity"
               f"{' (2:4 has one sparsity, so the curves use weights)' if s.granularity == 'nm' else ''}. "
               f"Fine-tuning: {epochs} epochs per point (SGD, learning rate {s.finetune_lr:g}); iterative walks "
               "the grid, fine-tuning after each step. The dashed line is the fair reference for one-shot + "
               "fine-tuning: the dense model given the same fine-tuning. Pruning without retraining falls early; with "
               "retraining "
               "most weights can go — Han et al. report 92 % of LeNet-300-100's weights removed at no loss.")
    st.download_button("Download curves (CSV)", pd.DataFrame(rows).to_csv(index=False), "pruning_curves.csv",
                       "text/csv", key="pr_dl_curves")


def sensitivity(s: PruneSettings) -> None:
    sens = ui_pruning.sensitivity(b, ds, sel, s)
    if not sens:  # cancelled
        return
    st.plotly_chart(viz_pruning.sensitivity_figure(sens, base.accuracy), key="pr_sens")
    st.caption("Each line prunes only that layer (no fine-tuning), the others stay dense. Flat lines mark "
               "redundant layers that deserve a higher rate — the reason global pruning can beat per-layer."
               + (" On the GPT this scan prunes single weights: a head or an MLP neuron spans several layers."
                  if text and s.granularity in ("neuron", "head") else ""))
    st.download_button("Download sensitivity (CSV)", pd.DataFrame(sens).to_csv(index=False),
                       "pruning_sensitivity.csv", "text/csv", key="pr_dl_sens")


def speed(s: PruneSettings, res: PruneOutcome, rep: PruneReport) -> None:
    st.markdown("Size is counted, latency is measured: the forward pass of each variant, timed on this machine. "
                + ("The structured rows remove the same fraction of *neurons* instead of weights, to compare "
                   "the two kinds of pruning at one setting." if rep.structured_mask is not None else ""))
    fc1, fc2 = st.columns(2)
    fc1.plotly_chart(viz_pruning.size_figure(list(rep.sizes)), key="pr_sizes")
    if text:
        fc1.caption("The language model's sizes count every parameter (embeddings and LayerNorms at 4 bytes). "
                    + ("The structured row is the GPT rebuilt without the cut heads or MLP neurons."
                       if rep.has_structured_row else "No structured row: this mask cuts no whole attention head or "
                       "MLP neuron. Choose MLP neurons or attention heads as the granularity to build a smaller GPT."))
    elif not rep.has_structured_row:
        fc1.caption("No structured row: at this setting some hidden layer would keep no neuron, so there is "
                    "no smaller network to build.")
    with fc2:
        ui_pruning.latency_panel(model, res.mask, ds, sel, s, rep)
    ui_pruning.size_tables(rep)
    ui_pruning.plain_words_speed()
    st.download_button("Download mask summary (JSON)", json.dumps(rep.summary(s, res.mask), indent=1),
                       "pruning_mask.json", "application/json", key="pr_dl_mask")


@st.fragment
def live() -> None:
    st.header("Controls", anchor="controls")
    s = ui_pruning.controls(sel.seed, text)
    ui_pruning.schedule_caption(s)
    try:
        res = ui_pruning.outcome(b, ds, sel, s)
    except ValueError as e:  # impossible settings: say so, keep the page
        st.error(f"Cannot prune with these settings: {e}")
        return
    for w in res.warnings:
        st.warning(w, icon="⚠️")
    rep = ui_pruning.report(b, sel, s, res)
    ui_pruning.metrics_row(s, rep, ds)
    fair = ui_pruning.control(b, ds, sel, s)
    if fair is not None:
        st.info(f"**Fair comparison.** The pruned model had extra training. The dense network trained the same way "
                f"(the same fine-tuning, no pruning) scores **{fair.accuracy:.2%}**: the pruned model is "
                f"{gap_words(100 * (rep.accuracy - fair.accuracy))} it "
                f"({gap_words(rep.accuracy_delta_pts)} the baseline). Compare with this one.", icon="⚖️")
    views = {"Weights and mask": lambda: weights_and_mask(s, res), "Per layer": lambda: network_view(s, res),
             "Accuracy vs sparsity": lambda: curves(s, rep), "Which layers can take it?": lambda: sensitivity(s),
             "Does it get faster?": lambda: speed(s, res, rep), "Which layer broke it?":
                 lambda: ui_pruning_recover.which_layer_view(b, ds, sel, s, res.model),
             "Meet an accuracy budget": lambda: ui_pruning_recover.budget_view(b, ds, sel, s)}
    view_tabs("pr_view", views)  # only the open tab runs


live()
ui_pruning.drag_view(model, layers)
ui_pruning.about()
