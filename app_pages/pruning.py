"""Pruning: how much of the network can be cut, which parts, and what it costs.

Unstructured and structured pruning (Han et al. 2015; Li et al. 2017), N:M semi-structured sparsity,
one-shot / iterative / gradual schedules (Zhu & Gupta 2017), sensitivity, honest size and latency.
"""
import json

import pandas as pd
import streamlit as st
from torch import nn

from compress_core.models import weighted_layers
from compress_core.pruning import (
    SCHEDULES,
    PruneSettings,
    latency_report,
    prune,
    semi_structured_benchmark,
    size_report,
    threshold,
    weight_values,
)
from compress_core.viz import common as viz
from compress_core.viz import pruning as pviz
from ui import pruning as cache
from ui.explain import explainer, published
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import remember, url_value

sel = selection()
ds = dataset(sel.dataset, sel.seed)
st.title("✂️ Pruning")
st.markdown("How much of this network can be cut, which parts, and what does it cost? Move the sparsity "
            "slider: the weights, the mask, the accuracy and the size below are recomputed for every position.")
b = baseline(sel)
base = b.test_metrics
model = b.model  # a fresh copy of the trained baseline, built once per run; everything below only reads it
layers = [n for n, _ in weighted_layers(model)]

GRAN = {"weight": "weights (unstructured)", "neuron": "neurons / channels (structured)",
        "nm": "2:4 semi-structured"}
CRIT = {"magnitude": "magnitude |w|", "random": "random"}
SCOPE = {"layer": "per layer", "global": "global"}
OUTPUT = {1.0: "same rate", 0.5: "half rate", 0.0: "not pruned"}
FT_LR = (0.003, 0.01, 0.03, 0.1)
SCHED = {"one-shot": "one-shot", "iterative": "iterative (prune → fine-tune → repeat)",
         "gradual": "gradual, cubic (Zhu & Gupta)"}

url_value("pr_criterion", "magnitude", allowed=list(CRIT))
url_value("pr_granularity", "weight", allowed=list(GRAN))
url_value("pr_scope", "layer", allowed=list(SCOPE))
url_value("pr_output", 0.5, cast=float, allowed=list(OUTPUT))
url_value("pr_sparsity", 90.0, cast=float, allowed=cache.SPARSITY_STEPS)
url_value("pr_schedule", "one-shot", allowed=list(SCHEDULES))
url_value("pr_rounds", 4, cast=int, check=lambda v: 2 <= v <= 10)
url_value("pr_ft", 0, cast=int, check=lambda v: 0 <= v <= 10)
url_value("pr_ft_lr", 0.03, cast=float, allowed=list(FT_LR))
url_value("pr_layer", layers[0], allowed=layers)
url_value("pr_curve_ft", 3, cast=int, check=lambda v: 1 <= v <= 10)


@st.fragment
def live() -> None:
    # --- Controls ----------------------------------------------------------------------------------------
    st.header("Controls", anchor="controls")
    c1, c2, c3, c4 = st.columns(4)
    c1.radio("Criterion", list(CRIT), format_func=CRIT.get, key="pr_criterion",
             help="What decides which weights go: the smallest magnitudes first, or a random choice (the control "
                  "experiment: same count, no intelligence).")
    c2.radio("Granularity", list(GRAN), format_func=GRAN.get, key="pr_granularity",
             help="Single weights anywhere; whole neurons (Linear rows) and channels (Conv filters) ranked by L1 "
                  "norm; or 2 of every 4 consecutive weights, the pattern sparse tensor cores run.")
    c3.radio("Scope", list(SCOPE), format_func=SCOPE.get, key="pr_scope",
             help="Per layer: every layer loses the same fraction. Global: one ranking across layers, so "
                  "redundant layers lose more.")
    c4.radio("Output layer", list(OUTPUT), format_func=OUTPUT.get, key="pr_output",
             help="The classifier layer is small and sensitive; Frankle & Carbin prune it at half the rate.")
    gran = st.session_state["pr_granularity"]
    st.select_slider("Sparsity — fraction of weights removed (%)", cache.SPARSITY_STEPS, key="pr_sparsity",
                     format_func=lambda v: f"{v:g} %", disabled=gran == "nm",
                     help="Fine steps at the high end, where accuracy starts to fall. For neurons it is the "
                          "fraction of hidden neurons/channels removed; 2:4 is always 50 %.")
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    c1.radio("Schedule", list(SCHED), format_func=SCHED.get, key="pr_schedule", horizontal=True,
             help="One-shot prunes once. Iterative prunes the same fraction of the survivors each round and "
                  "fine-tunes in between. Gradual follows s_t = s_f(1 − (1 − t/n)³): big steps first, small at "
                  "the end. Schedules only differ when there is fine-tuning between steps.")
    c2.slider("Rounds", 2, 10, key="pr_rounds", disabled=st.session_state["pr_schedule"] == "one-shot",
              help="Pruning steps of the iterative and gradual schedules.")
    c3.slider("Fine-tune epochs after pruning", 0, 10, key="pr_ft",
              help="Training with the mask enforced after each pruning step (pruned weights stay zero). "
                   "0 = measure the pruned network as it is.")
    c4.select_slider("Fine-tune learning rate", FT_LR, key="pr_ft_lr", disabled=st.session_state["pr_ft"] == 0,
                     help="SGD with momentum 0.9 (also used for the fine-tuned curves below).")
    remember("pr_criterion", "pr_granularity", "pr_scope", "pr_output", "pr_sparsity", "pr_schedule", "pr_rounds",
             "pr_ft", "pr_ft_lr")
    s = PruneSettings(sparsity=0.5 if gran == "nm" else st.session_state["pr_sparsity"] / 100,
                      criterion=st.session_state["pr_criterion"], scope=st.session_state["pr_scope"],
                      granularity=gran, output_scale=st.session_state["pr_output"],
                      schedule=st.session_state["pr_schedule"], rounds=st.session_state["pr_rounds"],
                      finetune_epochs=st.session_state["pr_ft"], finetune_lr=st.session_state["pr_ft_lr"],
                      seed=sel.seed)
    if s.finetune_epochs and s.schedule != "one-shot" and gran != "nm":
        st.caption("Targets of the schedule: " + " → ".join(f"{t:.1%}" for t in s.targets()))
    elif s.finetune_epochs == 0 and s.schedule != "one-shot":
        st.caption("Without fine-tuning between steps every schedule gives the one-shot mask: the same weights "
                   "are ranked again. Add fine-tuning epochs to see the schedules differ.")
    try:
        if cache.OUTCOMES.has((sel.key, s)) or not s.finetune_epochs:
            res = cache.outcome(b, ds, sel, s)
        else:
            with st.spinner("Pruning and fine-tuning…"):
                res = cache.outcome(b, ds, sel, s)
    except ValueError as e:  # impossible settings: say so, keep the page
        st.error(f"Cannot prune with these settings: {e}")
        return
    for w in res.warnings:
        st.warning(w, icon="⚠️")
    mask, pruned = res.mask, res.model
    # to compare like with like, the structured rows remove the same fraction of neurons when this mask does not
    struct_mask, struct_label = None, ""
    if gran != "neuron":
        struct_mask = prune(model, s.sparsity, criterion=s.criterion, granularity="neuron", seed=s.seed)
        struct_label = f", {s.sparsity:.1%} of neurons cut"
    sizes = size_report(model, mask, structured_mask=struct_mask, structured_label=struct_label)
    by_format = {r["format"]: r for r in sizes}
    best = min((r for r in sizes if r["same_mask"] and not r["format"].startswith(("masked", "PyTorch"))),
               key=lambda r: r["bytes"])

    # --- Metrics -----------------------------------------------------------------------------------------
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Test accuracy", f"{res.metrics.accuracy:.2%}", f"{100 * (res.metrics.accuracy - base.accuracy):+.2f} pts",
              help=f"Baseline: {base.accuracy:.2%}. Measured on the {len(ds.y_test)} test examples.")
    m2.metric("Test loss", f"{res.metrics.loss:.3f}", f"{res.metrics.loss - base.loss:+.3f}", delta_color="inverse",
              help=f"Baseline cross-entropy: {base.loss:.3f}.")
    m3.metric("Weights kept", f"{mask.kept():,}", f"-{mask.sparsity():.1%} of {mask.total():,}", delta_color="off",
              help="Counted over the weights of every Linear/Conv layer (biases excluded).")
    m4.metric("Smallest honest size", f"{best['bytes'] / 1024:.1f} KB", f"{best['vs_dense'] - 1:+.0%} vs dense",
              delta_color="inverse", help=f"{best['format']}: {best['detail']}. Dense float32 is "
                                          f"{by_format['dense float32']['bytes'] / 1024:.1f} KB.")

    # --- Weights and mask --------------------------------------------------------------------------------
    left, right = st.columns(2)
    with left:
        st.selectbox("Layer", layers, key="pr_layer", help="Which layer's weights and mask to show.")
        remember("pr_layer")
        layer = st.session_state["pr_layer"]
        key = f"{layer}.weight"
        orig = weight_values(model, layer)
        t = threshold(model, mask, layer) if s.criterion == "magnitude" and gran == "weight" else None
        st.plotly_chart(pviz.weight_histogram(orig.numpy(), mask[key].reshape(-1).numpy(), t, layer),
                        key="pr_hist")
        st.caption("The trained weights of the baseline. Magnitude pruning removes the red centre — the weights "
                   "closest to zero — up to the dashed threshold; random pruning takes from everywhere; "
                   "structured and 2:4 pruning cut by neuron or by group, so the cut is not a clean threshold."
                   + ("" if not s.finetune_epochs else " (Fine-tuning then moves the survivors: the histogram shows "
                                                       "the weights before it.)"))
    with right:
        first = layers[0]
        if layer == first and ds.kind == "image" and isinstance(dict(weighted_layers(model))[first], nn.Linear):
            h, w = ds.input_shape[1:]
            st.plotly_chart(pviz.neuron_tiles(mask[key].numpy(), (h, w), count=24, cols=6,
                                              title=f"What the first 24 {layer} neurons still see"),
                            key="pr_tiles")
            st.caption("Each tile is one hidden neuron's 8×8 input mask: blue pixels keep their connection, the "
                       "number above counts them. "
                       "Magnitude pruning first cuts the border pixels, which are blank in every digit.")
        else:
            st.plotly_chart(pviz.mask_heatmap(mask[key].numpy(), layer), key="pr_heat")
            st.caption("Rows are output neurons/filters, columns their inputs (conv kernels flattened). "
                       "Structured pruning empties whole rows; 2:4 keeps two of every four columns.")
    han = ({"fc1": 0.92, "fc2": 0.91, "fc3": 0.74} if sel.model == "mlp" else None)
    st.plotly_chart(pviz.layer_bars(mask.layer_sparsity(), han), key="pr_bars")
    if han:
        st.caption("Grey: the per-layer sparsity Han et al. (2015) *published* for LeNet-300-100 on MNIST "
                   "(8 % / 9 % / 26 % of weights kept), shown for shape, not measured here.")
    if ds.kind == "points":
        a, bcol = st.columns(2)
        x, y = ds.x_test.numpy(), ds.y_test.numpy()
        a.plotly_chart(viz.decision_boundary(viz.model_predictor(model), x, y, list(ds.class_names),
                                             title=f"Baseline ({base.accuracy:.1%})"), key="pr_db_base")
        bcol.plotly_chart(viz.decision_boundary(viz.model_predictor(pruned), x, y, list(ds.class_names),
                                                title=f"Pruned ({res.metrics.accuracy:.1%})"), key="pr_db_pruned")
    if res.steps:
        st.markdown(f"**The {s.schedule} schedule, step by step** (test set)")
        steps = pd.DataFrame(res.steps)[["step", "target", "sparsity", "acc_pruned", "test_acc", "test_loss"]]
        pct = st.column_config.NumberColumn(format="percent")
        st.dataframe(steps.rename(columns={"acc_pruned": "acc before fine-tune", "test_acc": "acc after fine-tune",
                                           "test_loss": "loss after fine-tune"}), hide_index=True, width="stretch",
                     column_config={"target": pct, "sparsity": pct, "acc before fine-tune": pct,
                                    "acc after fine-tune": pct})
    if gran == "nm":
        st.subheader("2:4 semi-structured sparsity")
        st.plotly_chart(pviz.nm_pattern(orig.reshape(mask[key].shape).numpy(), mask[key].numpy()), key="pr_nm")
        st.markdown("In every group of 4 consecutive weights of a row, the 2 largest survive (red × = pruned). "
                    "Because every group has exactly the same shape, NVIDIA's sparse tensor cores (Ampere and "
                    "newer) store 2 values plus 2-bit positions and skip the zeros in hardware, for up to 2× "
                    "matrix-multiply throughput (Mishra et al. 2021). Unstructured sparsity has no such regular "
                    "shape, which is why dense hardware cannot exploit it.")

    # --- Curves --------------------------------------------------------------------------------------------
    st.header("Accuracy vs sparsity")
    st.slider("Fine-tune epochs per point (curves)", 1, 10, key="pr_curve_ft",
              help="Training after each pruning step for the fine-tuned curves.")
    remember("pr_curve_ft")
    epochs = st.session_state["pr_curve_ft"]
    bar = st.empty()  # a progress bar only while the curves are computed (once per setting)
    rows = cache.curves(b, ds, sel, s, epochs, progress=lambda f, lab: bar.progress(f, text=lab))
    bar.empty()
    st.plotly_chart(pviz.curves_figure(rows, base.accuracy, mask.sparsity()), key="pr_curves")
    st.caption(f"Each point prunes the baseline with the current criterion, scope and granularity"
               f"{' (2:4 has one sparsity, so the curves use weights)' if gran == 'nm' else ''}. Fine-tuning: "
               f"{epochs} epochs per point (SGD, learning rate {s.finetune_lr:g}); iterative walks the grid, fine-tuning after each step. Pruning without "
               "retraining falls early; with retraining most weights can go — Han et al. report 92 % of "
               "LeNet-300-100's weights removed at no loss.")
    st.download_button("Download curves (CSV)", pd.DataFrame(rows).to_csv(index=False), "pruning_curves.csv",
                       "text/csv", key="pr_dl_curves")

    # --- Sensitivity ------------------------------------------------------------------------------------------
    st.header("Which layers can take it?")
    bar = st.empty()  # a progress bar only while the layers are scanned (once per setting)
    sens = cache.sensitivity(b, ds, sel, s.criterion, gran, s.seed, progress=lambda f, lab: bar.progress(f, text=lab))
    bar.empty()
    st.plotly_chart(pviz.sensitivity_figure(sens, base.accuracy), key="pr_sens")
    st.caption("Each line prunes only that layer (no fine-tuning), the others stay dense. Flat lines mark "
               "redundant layers that deserve a higher rate — the reason global pruning can beat per-layer.")
    st.download_button("Download sensitivity (CSV)", pd.DataFrame(sens).to_csv(index=False),
                       "pruning_sensitivity.csv", "text/csv", key="pr_dl_sens")

    # --- Does it get faster? ------------------------------------------------------------------------------------
    st.header("Does it get faster?")
    st.markdown("Size is counted, latency is measured: the forward pass of each variant, timed on this machine. "
                + ("The structured rows remove the same fraction of *neurons* instead of weights, to compare "
                   "the two kinds of pruning at one setting." if struct_mask is not None else ""))
    fc1, fc2 = st.columns(2)
    fc1.plotly_chart(pviz.size_figure(sizes), key="pr_sizes")
    if not any(r["format"].startswith("structured") for r in sizes):
        fc1.caption("No structured row: at this setting some hidden layer would keep no neuron, so there is "
                    "no smaller network to build.")
    with fc2:
        bc1, bc2 = st.columns(2)
        batch = bc1.selectbox("Batch size", [1, 64, 512, 2048], index=2, key="pr_batch")
        measure = bc2.button("⏱ Measure latency", key="pr_measure", help="Times each variant: median of 30 runs.")
        lat_key = json.dumps([sel.key, s.to_dict(), batch])
        if measure:
            with st.spinner("Timing…"):
                lat = latency_report(model, mask, ds.input_shape, batch=batch, structured_mask=struct_mask,
                                     structured_label=struct_label)
                semi = semi_structured_benchmark(repeats=20) if gran == "nm" else None
                st.session_state["pr_latency"] = (lat_key, lat, semi)
        if "pr_latency" in st.session_state:
            measured_key, lat, semi = st.session_state["pr_latency"]
            st.plotly_chart(pviz.timing_figure(lat), key="pr_timing")
            if measured_key != lat_key:
                st.caption("Measured for earlier settings: press the button to measure these.")
            if semi and semi["available"]:
                st.success(f"2:4 on this GPU ({semi['shape']}): dense {semi['dense_ms']:.3f} ms, 2:4 "
                           f"{semi['sparse_ms']:.3f} ms — ×{semi['speedup']:.2f} faster, measured.")
            elif semi:
                st.info(f"2:4 speed cannot be measured here: {semi['reason']}.")
        else:
            st.info("Press **Measure latency** to time the dense, masked, sparse and shrunk models on this machine.")
    with st.expander("Size and latency tables"):
        st.dataframe(pd.DataFrame(sizes)[["format", "bytes", "vs_dense", "detail"]], hide_index=True,
                     width="stretch", column_config={"bytes": st.column_config.NumberColumn(format="localized"),
                                                     "vs_dense": st.column_config.NumberColumn("× dense", format="%.3f")})
        if "pr_latency" in st.session_state:
            st.dataframe(pd.DataFrame(st.session_state["pr_latency"][1]), hide_index=True, width="stretch")
    st.markdown(
        "**In plain words.** A masked model still multiplies every zero: same shapes, same time, same memory. "
        "Sparse formats skip the zeros but pay for the positions of the survivors and for irregular memory "
        "access, so on CPUs and GPUs they only win at very high sparsity, if at all. Removing whole neurons "
        "and channels is different: the layers become genuinely smaller dense matrices, which every kind of "
        "hardware runs faster. 2:4 sits in between — a regular pattern that recent GPUs accelerate.")
    st.download_button("Download mask summary (JSON)",
                       json.dumps({"settings": s.to_dict(), "layers": mask.summary(), "sizes": sizes,
                                   "test_accuracy": res.metrics.accuracy}, indent=1),
                       "pruning_mask.json", "application/json", key="pr_dl_mask")


live()

# --- Explainer (static) -------------------------------------------------------------------------------------
st.header("What is pruning?")
explainer("Pruning in five questions", """
Pruning sets parameters to zero (or removes them) after — or during — training. **Why:** a trained network
has far more weights than it needs; fewer weights mean less memory and bandwidth, possibly less compute, and
(lottery tickets) the hope of training small networks from the start. The price is accuracy, usually won
back by fine-tuning, which costs training time.

| question | choices | try it with |
| --- | --- | --- |
| **what** is pruned | single weights (unstructured) · neurons / channels / filters (structured) · N:M groups | [Granularity](#controls) |
| **by which criterion** | magnitude \\|w\\| · norm of a neuron · random (the control) | [Criterion](#controls) |
| **where** the rate applies | the same rate per layer · one global ranking | [Scope](#controls), [Output layer](#controls) |
| **when** | after training (one-shot) · between fine-tuning rounds · gradually during training | [Schedule](#controls) |
| **how often** | once · iteratively, a fraction of the survivors each round | [Rounds](#controls), [Fine-tune epochs](#controls) |

Unstructured pruning reaches the highest sparsity at equal accuracy, but only a sparse format saves memory
and dense hardware does not get faster. Structured pruning removes less before accuracy drops, but the
result is a smaller dense network. See *Does it get faster?* above for numbers measured on this machine.
""", expanded=True)
published("Han et al. 2015, *Learning both Weights and Connections for Efficient Neural Networks*, Table 1",
          "LeNet-300-100 on MNIST: 267K → 22K weights (12× fewer), error 1.64 % → 1.59 %; kept per layer "
          "8 % / 9 % / 26 % (fc1 / fc2 / fc3). LeNet-5: 431K → 36K (12×), 0.80 % → 0.77 %. Threshold = a quality "
          "parameter × the layer's standard deviation; retraining at 1/10 of the original learning rate.")
published("Zhu & Gupta 2017, *To prune, or not to prune*",
          "Gradual pruning: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³, pruning every Δt steps from t0 for n steps.")
