"""Streamlit glue for the Pruning page: its URL-bound controls, process-wide memo caches, and the panels
that need session state (the latency measurement).

The expensive results (a fine-tuned pruning run, accuracy curves, sensitivity scans) are kept in
``ui.memo.Memo`` caches: they report progress to the page that asked for them. Every cache key is the
sidebar selection (``Selection.key``) plus a frozen ``PruneSettings`` as JSON, reduced to the fields the
result depends on. Every cached object is shared between sessions: read it, never change it.
"""
from __future__ import annotations

import json
import math

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from compress_core.pruning import (
    PruneOutcome,
    PruneSettings,
    accuracy_curves,
    extra_training_control,
    latency_report,
    prune_with,
    ranking_for,
    semi_structured_benchmark,
    sparsity_sensitivity,
    weight_values,
)
from compress_core.pruning.formats import LATENCY_REPEATS
from compress_core.pruning.outcome import calibration_for
from compress_core.pruning.report import PruneReport, prune_report
from compress_core.train import TrainConfig
from compress_core.viz import pruning as viz_pruning
from compress_core.viz.live import LIVE_HEIGHT, live_histogram_html
from ui import jobs
from ui.explain import explainer, published
from ui.memo import Memo
from ui.state import keep, url_widget

# 0-80 % in steps of 5 (plus a few tiny rates, to see them round to nothing in small layers), then finer
# and finer: the interesting things happen above 90 %.
SPARSITY_STEPS: list[float] = sorted({round(x, 4) for x in (
    [0.1, 0.5, 1.0, 2.0] + [i * 5.0 for i in range(17)] + [82.0 + 2 * i for i in range(5)]
    + [91.0 + i for i in range(5)] + [95.5 + 0.5 * i for i in range(6)]
    + [98.2 + 0.2 * i for i in range(5)] + [99.1 + 0.1 * i for i in range(9)])})
CURVE_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
SENSITIVITY_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)
BATCHES = [1, 64, 512, 2048]

GRAN = {"weight": "weights (unstructured)", "neuron": "neurons / channels (structured)",
        "nm": "2:4 semi-structured"}
# the GPT's structured choices: whole MLP neurons or whole attention heads, cut out by surgery (gpt_structured)
GPT_GRAN = {"weight": "weights (unstructured)", "neuron": "MLP neurons (structured)",
            "head": "attention heads (structured)", "nm": "2:4 semi-structured"}
CRIT = {"magnitude": "magnitude |w|", "random": "random"}
# the GPT's heads and MLP neurons can also be ranked by what they add to the residual stream (gpt_structured)
GPT_CRIT = {"magnitude": "magnitude |w|", "activation": "activation (heads, neurons)", "random": "random"}
SCOPE = {"layer": "per layer", "global": "global"}
OUTPUT = {1.0: "same rate", 0.5: "half rate", 0.0: "not pruned"}
FT_LR = (0.003, 0.01, 0.03, 0.1)
SCHED = {"one-shot": "one-shot", "iterative": "iterative (prune → fine-tune → repeat)",
         "gradual": "gradual, cubic (Zhu & Gupta)"}


def controls(seed: int, text: bool = False) -> PruneSettings:
    """Draw the criterion, granularity, scope, output rate, sparsity and schedule controls; return the settings.
    ``text``: the model is the GPT, whose structured choices are MLP neurons and attention heads."""
    gran_names = GPT_GRAN if text else GRAN
    c1, c2, c3, c4 = st.columns(4)
    crit_names = GPT_CRIT if text else CRIT
    crit = url_widget(c1.radio, "pr_criterion", "magnitude", "Criterion", list(crit_names), allowed=list(crit_names),
                      format_func=crit_names.get,
                      help="What decides which weights go: the smallest magnitudes first, or a random choice (the "
                           "control experiment: same count, no intelligence)."
                           + (" Activation (the GPT's MLP neurons and attention heads only): the size of what each "
                              "unit adds to the residual stream on 64 training windows, ‖X_j‖·‖fc2[:, j]‖ for a "
                              "neuron and ‖Y_h·proj_hᵀ‖ for a head." if text else ""))
    gran = url_widget(c2.radio, "pr_granularity", "weight", "Granularity", list(gran_names),
                      allowed=list(gran_names), format_func=gran_names.get,
                      help=("Single weights anywhere; whole MLP neurons (a row of fc and a column of fc2) or whole "
                            "attention heads (their rows of q, k, v and columns of proj, Michel et al. 2019) ranked "
                            "by the L2 norm of those weights and cut out by surgery; or 2 of every 4 consecutive "
                            "weights, the pattern sparse tensor cores run." if text else
                            "Single weights anywhere; whole neurons (Linear rows) and channels (Conv filters) ranked "
                            "by L1 norm; or 2 of every 4 consecutive weights, the pattern sparse tensor cores run."))
    scope = url_widget(c3.radio, "pr_scope", "layer", "Scope", list(SCOPE), allowed=list(SCOPE),
                       format_func=SCOPE.get,
                       help="Per layer: every layer loses the same fraction. Global: one ranking across layers, so "
                            "redundant layers lose more.")
    out = url_widget(c4.radio, "pr_output", 0.5, "Output layer", list(OUTPUT), cast=float, allowed=list(OUTPUT),
                     format_func=OUTPUT.get, disabled=text,
                     help="The GPT's output layer is its embedding matrix read back (a tied head): it stays dense, "
                          "as in Wanda and SparseGPT, so this setting does not apply to it." if text else
                          "The classifier layer is small and sensitive; Frankle & Carbin prune it at half the rate.")
    if gran == "nm":  # 2:4 fixes the sparsity: show the 50 % that applies, keep the slider's own value for later
        keep("pr_sparsity")
        st.select_slider("Sparsity — fraction of weights removed (%)", SPARSITY_STEPS, 50.0, key="pr_sparsity_nm",
                         format_func=lambda v: f"{v:g} %", disabled=True,
                         help="2:4 keeps 2 of every 4 consecutive weights: always 50 %.")
        pct = st.session_state.get("pr_sparsity", 90.0)
    else:
        pct = url_widget(st.select_slider, "pr_sparsity", 90.0, "Sparsity — fraction of weights removed (%)",
                         SPARSITY_STEPS, cast=float, allowed=SPARSITY_STEPS, format_func=lambda v: f"{v:g} %",
                         help="Fine steps at the high end, where accuracy starts to fall. For neurons it is the "
                              "fraction of hidden neurons/channels removed (the GPT's: of each block's MLP neurons, "
                              "or of its attention heads, every block keeping at least one); 2:4 is always 50 %.")
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    sched = url_widget(c1.radio, "pr_schedule", "one-shot", "Schedule", list(SCHED), allowed=list(SCHED),
                       format_func=SCHED.get, horizontal=True,
                       help="One-shot prunes once. Iterative prunes the same fraction of the survivors each round "
                            "and fine-tunes in between. Gradual follows s_t = s_f(1 − (1 − t/n)³): big steps first, "
                            "small at the end. Schedules only differ when there is fine-tuning between steps.")
    rounds = url_widget(c2.slider, "pr_rounds", 4, "Rounds", 2, 10, cast=int, check=lambda v: 2 <= v <= 10,
                        disabled=sched == "one-shot", help="Pruning steps of the iterative and gradual schedules.")
    ft = url_widget(c3.slider, "pr_ft", 0, "Fine-tune epochs after pruning", 0, 10, cast=int,
                    check=lambda v: 0 <= v <= 10,
                    help="Training with the mask enforced after each pruning step (pruned weights stay zero). "
                         "0 = measure the pruned network as it is.")
    lr = url_widget(c4.select_slider, "pr_ft_lr", 0.03, "Fine-tune learning rate", FT_LR, cast=float,
                    allowed=list(FT_LR), disabled=ft == 0,
                    help="SGD with momentum 0.9 (also used for the fine-tuned curves below).")
    return PruneSettings(sparsity=0.5 if gran == "nm" else pct / 100, criterion=crit, scope=scope, granularity=gran,
                         output_scale=out, schedule=sched, rounds=rounds, finetune_epochs=ft, finetune_lr=lr,
                         seed=seed)


def metrics_row(s: PruneSettings, rep: PruneReport, ds) -> None:
    """The four headline numbers of a pruned model: accuracy (a language model's next character), loss (in bits per
    character for a language model), weights kept with the share removed, and the smallest honest size."""
    text = ds.kind == "text"
    ln2 = math.log(2)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Next character right" if text else "Test accuracy", f"{rep.accuracy:.2%}",
              f"{rep.accuracy_delta_pts:+.2f} pts",
              help=f"Baseline: {rep.base_accuracy:.2%}. Measured on the {ds.y_test.numel():,} test "
                   f"{'characters' if text else 'examples'}.")
    if text:  # a language model's loss reads in bits per character; its accuracy is the next character's
        m2.metric("Bits / char", f"{rep.loss / ln2:.3f}", f"{rep.loss_delta / ln2:+.3f}", delta_color="inverse",
                  help=f"Baseline: {rep.base_loss / ln2:.3f} bits per held-out character (lower is better).")
    else:
        m2.metric("Test loss", f"{rep.loss:.3f}", f"{rep.loss_delta:+.3f}", delta_color="inverse",
                  help=f"Baseline cross-entropy: {rep.base_loss:.3f}.")
    m3.metric("Weights kept", f"{rep.kept:,}", f"{rep.removed_fraction:.1%} removed", delta_color="off",
              delta_arrow="off", help=f"{rep.kept:,} of {rep.total:,} weights. {rep.kept_note}")
    m4.metric("Honest size", f"{rep.best_kb:.1f} KB", f"{rep.best_change:+.0%} vs dense",
              delta_color="inverse", help=f"{rep.best['format']}: {rep.best['detail']}. Dense float32 is "
                                          f"{rep.dense_kb:.1f} KB.")
    if text and s.granularity in ("neuron", "head") and rep.has_structured_row:
        surgery_caption(rep)
    rate = {0.5: "at half the rate", 0.0: "not at all"}.get(s.output_scale, f"at {s.output_scale:g}× the rate")
    if not text and s.output_scale != 1 and s.granularity == "weight" and s.sparsity:
        # short numbers above (a pill ends longer words in "…" at 1280 px and on a projector); the why, here
        st.caption(f"{rep.removed_fraction:.1%} of the {rep.total:,} weights removed in all, where the slider says "
                   f"{s.sparsity:.1%}: the output layer is pruned {rate}.")


def surgery_caption(rep: PruneReport) -> None:
    """What surgery left of the GPT, in parameters (every one: embeddings and LayerNorms included)."""
    row = next(r for r in rep.sizes if r["format"].startswith("structured"))
    before, after = rep.dense_bytes // 4, row["bytes"] // 4
    st.caption(f"**Parameters after surgery: {after:,}** of {before:,} ({after / before - 1:+.1%}): the cut heads and "
               "neurons are gone from the matrices, so the smaller GPT runs dense, on any hardware.")


def schedule_caption(s: PruneSettings) -> None:
    if s.finetune_epochs and s.schedule != "one-shot" and s.granularity != "nm":
        st.caption("Targets of the schedule: " + " → ".join(f"{t:.1%}" for t in s.targets()))
    elif s.finetune_epochs == 0 and s.schedule != "one-shot":
        st.caption("Without fine-tuning between steps every schedule gives the one-shot mask: the same weights "
                   "are ranked again. Add fine-tuning epochs to see the schedules differ.")


OUTCOMES, REPORTS, CURVES, SENSITIVITY = Memo(64), Memo(64), Memo(48), Memo(32)
RANKINGS = Memo(16)  # one per (baseline, criterion, scope, granularity, output rate, seed)
CONTROLS = Memo(32)  # the dense model with the same extra training
GRADUAL = {"none": "off", "finetune": "while fine-tuning", "scratch": "also from θ0"}
GRADUAL_MODES = {"none": (), "finetune": ("gradual",), "scratch": ("gradual", "gradual_scratch")}


def outcome(baseline, ds, sel, settings: PruneSettings) -> PruneOutcome:
    """The pruned (and fine-tuned) model of ``settings``; a spinner only when it fine-tunes for the first time."""
    key = (sel.key, settings.to_json())

    def compute() -> PruneOutcome:
        model = baseline.model
        ranking = None
        if not settings.finetune_epochs and settings.granularity != "nm":  # rank once, then a move is a lookup
            s = settings
            ranking = RANKINGS.get((sel.key, s.criterion, s.scope, s.granularity, s.output_scale, s.seed),
                                   lambda: ranking_for(model, s))
        return prune_with(model, ds, settings, batch_size=sel.train.batch_size, ranking=ranking)

    if OUTCOMES.has(key) or not settings.finetune_epochs:
        return OUTCOMES.get(key, compute)
    with st.spinner("Pruning and fine-tuning…"):
        return OUTCOMES.get(key, compute)


def control(baseline, ds, sel, settings: PruneSettings):
    """The dense model fine-tuned exactly as ``settings`` fine-tune the pruned one (``extra_training_control``):
    it depends on the fine-tuning and the schedule's number of steps, not on the sparsity, so one run serves every
    slider position. Computed on the heavy-run pool; None without fine-tuning or if cancelled."""
    s = settings
    if not s.finetune_epochs:
        return None
    key = (sel.key, s.finetune_epochs, s.finetune_lr, s.finetune_optimizer, len(s.targets()), s.seed)
    return jobs.run(CONTROLS, key, lambda report: extra_training_control(
        baseline.model, ds, s, batch_size=sel.train.batch_size), "Control: the dense model, same extra training",
        "pr_cancel_control")


def report(baseline, sel, settings: PruneSettings, out: PruneOutcome) -> PruneReport:
    """Sizes and deltas of ``out`` (the outcome of ``settings``): deterministic, so cached beside it."""
    return REPORTS.get((sel.key, settings.to_json()),
                       lambda: prune_report(baseline.model, out, settings, baseline.test_metrics))


def _swept(s: PruneSettings) -> str:
    """2:4 has one sparsity of its own: sweeps over sparsity use single weights instead."""
    return "weight" if s.granularity == "nm" else s.granularity


def curves(baseline, ds, sel, settings: PruneSettings, epochs: int, modes: tuple[str, ...]) -> list[dict]:
    """Accuracy against sparsity for each curve mode, ``epochs`` of fine-tuning per point (cached per setting).

    "gradual_scratch" trains the whole baseline recipe from θ0 once per point, pruning inside that run.
    """
    # only what the curves depend on: schedule, rounds and sparsity of the current setting do not matter
    c = PruneSettings(criterion=settings.criterion, scope=settings.scope, granularity=_swept(settings),
                      output_scale=settings.output_scale, finetune_epochs=epochs, finetune_lr=settings.finetune_lr,
                      finetune_optimizer=settings.finetune_optimizer, seed=settings.seed)
    ft = TrainConfig(epochs=epochs, lr=c.finetune_lr, batch_size=sel.train.batch_size, optimizer=c.finetune_optimizer)

    def one(mode: str) -> list[dict]:
        scratch = mode == "gradual_scratch"
        calibration = calibration_for(baseline.model, ds, c)
        return jobs.run(CURVES, (sel.key, c.to_json(), mode), lambda report: accuracy_curves(
            baseline.model, ds, CURVE_GRID, finetune=ft, seed=c.seed, modes=(mode,), progress=report,
            init_model=baseline.build(baseline.init_state) if scratch else None,
            scratch_train=sel.train if scratch else None, criterion=c.criterion, scope=c.scope,
            granularity=c.granularity, output_scale=c.output_scale, calibration=calibration),
            f"Accuracy curve, {viz_pruning.MODE_NAMES[mode]}", f"pr_cancel_{mode}") or []

    return [row for mode in modes for row in one(mode)]


def sensitivity(baseline, ds, sel, settings: PruneSettings) -> list[dict]:
    """Accuracy with one layer pruned at a time (no fine-tuning), cached per criterion, granularity and seed."""
    gran = "weight" if ds.kind == "text" else _swept(settings)  # a GPT head or neuron spans several layers
    crit = "magnitude" if settings.criterion == "activation" else settings.criterion  # (it ranks whole units)
    c = PruneSettings(criterion=crit, granularity=gran, seed=settings.seed)
    return jobs.run(SENSITIVITY, (sel.key, c.to_json()), lambda report: sparsity_sensitivity(
        baseline.model, ds, SENSITIVITY_GRID, criterion=c.criterion, granularity=c.granularity, seed=c.seed,
        progress=report), "Sensitivity scan", "pr_cancel_sensitivity") or []


def steps_table(steps: list[dict]) -> None:
    """One row per step of a schedule with fine-tuning."""
    table = pd.DataFrame(steps)[["step", "target", "sparsity", "acc_pruned", "test_acc", "test_loss"]]
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(table.rename(columns={"acc_pruned": "acc before fine-tune", "test_acc": "acc after fine-tune",
                                       "test_loss": "loss after fine-tune"}), hide_index=True, width="stretch",
                 column_config={"target": pct, "sparsity": pct, "acc before fine-tune": pct,
                                "acc after fine-tune": pct})


def latency_panel(model, mask, ds, sel, s: PruneSettings, rep: PruneReport) -> None:
    """Batch size, a button that times every variant, and the last measurement (kept in this session)."""
    bc1, bc2 = st.columns(2)
    batch = bc1.selectbox("Batch size", BATCHES, index=2, key="pr_batch")
    measure = bc2.button("⏱ Measure latency", key="pr_measure", help=f"Times one forward pass of a batch of the "
                         f"chosen size: median of {LATENCY_REPEATS} runs.")
    lat_key = json.dumps([sel.key, s.to_dict(), batch])
    if measure:
        with st.spinner("Timing…"):
            lat = latency_report(model, mask, ds.input_shape, batch=batch, repeats=LATENCY_REPEATS,
                                 structured_mask=rep.structured_mask,
                                 structured_label=rep.structured_label, dataset=ds)
            semi = semi_structured_benchmark(repeats=20) if s.granularity == "nm" else None
            st.session_state["pr_latency"] = (lat_key, lat, semi)
    if "pr_latency" not in st.session_state:
        st.info("Press **Measure latency** to time the dense, masked, sparse and shrunk models on this machine.")
        return
    measured_key, lat, semi = st.session_state["pr_latency"]
    st.plotly_chart(viz_pruning.timing_figure(lat, batch, LATENCY_REPEATS), key="pr_timing")
    st.caption("Beside each time: the test accuracy of the model timed, as it is (no fine-tuning). "
               + ("The structured row is this very mask, its heads or neurons cut out by surgery: the same predictions "
                  "as the masked row, from smaller matrices." if rep.structured_mask is None else
                  "The structured row is a different, coarser cut: faster, and usually less accurate at the same "
                  "fraction removed."))
    if measured_key != lat_key:
        st.caption("Measured for earlier settings: press the button to measure these.")
    if semi and semi["available"]:
        st.success(f"2:4 on this GPU ({semi['shape']}): dense {semi['dense_ms']:.3f} ms, 2:4 "
                   f"{semi['sparse_ms']:.3f} ms — {semi['speedup']:.2f}× faster, measured.")
    elif semi:
        st.info(f"2:4 speed cannot be measured here: {semi['reason']}.")


def size_tables(rep: PruneReport) -> None:
    with st.expander("Size and latency tables"):
        st.dataframe(pd.DataFrame(list(rep.sizes))[["format", "bytes", "vs_dense", "detail"]], hide_index=True,
                     width="stretch", column_config={
                         "bytes": st.column_config.NumberColumn(format="localized"),
                         "vs_dense": st.column_config.NumberColumn("× dense", format="%.3f")})
        if "pr_latency" in st.session_state:
            st.dataframe(pd.DataFrame(st.session_state["pr_latency"][1]), hide_index=True, width="stretch")


def about() -> None:
    """The static explainer under the live view: the taxonomy of pruning and the published figures."""
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
""", expanded=True)  # noqa: E501 (a markdown table row cannot be wrapped)
    published("Han et al. 2015, *Learning both Weights and Connections for Efficient Neural Networks*, Table 1",
              "LeNet-300-100 on MNIST: 267K → 22K weights (12× fewer), error 1.64 % → 1.59 %; kept per layer "
              "8 % / 9 % / 26 % (fc1 / fc2 / fc3). LeNet-5: 431K → 36K (12×), 0.80 % → 0.77 %. Threshold = a "
              "quality parameter × the layer's standard deviation; retraining at 1/10 of the original learning rate.")
    published("Zhu & Gupta 2017, *To prune, or not to prune*",
              "Gradual pruning: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³, pruning every Δt steps from t0 for "
              "n steps. Measured here: the two gradual curves under *Accuracy vs sparsity*.")


def plain_words_speed() -> None:
    """Why zeros alone do not speed up dense hardware, under the measured sizes and times."""
    st.markdown(
        "**In plain words.** A masked model still multiplies every zero: same shapes, same time, same memory. "
        "Sparse formats skip the zeros but pay for the positions of the survivors and for irregular memory "
        "access, so on CPUs and GPUs they only win at very high sparsity, if at all. Removing whole neurons "
        "and channels is different: the layers become genuinely smaller dense matrices, which every kind of "
        "hardware runs faster. 2:4 sits in between — a regular pattern that recent GPUs accelerate.")


DRAG_LAYER = "_pr_drag_layer"  # the layer the drag view below shows


def follow_layer(layer: str) -> None:
    """Inside the live fragment, after the layer selector: when the layer changed in a fragment run, rerun the whole
    page once, so that the drag view (outside the fragment) shows the new layer and not the old one."""
    ctx = get_script_run_ctx()
    if ctx is not None and ctx.fragment_ids_this_run and st.session_state.get(DRAG_LAYER, layer) != layer:
        st.rerun(scope="app")


def drag_view(model, layers: list[str]) -> None:
    """The chosen layer's histogram following a slider *during* the drag, redrawn in the browser (no server round
    trip: ``viz.live``). Outside the page's live fragment, so a slider move there never re-sends its weights."""
    layer = st.session_state.get("pr_layer", layers[0])
    layer = layer if layer in layers else layers[0]
    st.session_state[DRAG_LAYER] = layer
    with st.expander(f"Follow the drag: {layer}'s weights redrawn in your browser while you move the slider"):
        st.iframe(live_histogram_html(weight_values(model, layer).numpy(), layer,
                                      st.session_state.get("pr_sparsity", 90.0) / 100), height=LIVE_HEIGHT)
        st.caption("Per-layer magnitude pruning of this one layer, computed by your browser at every position of "
                   "the drag (the weights were sent once, rounded to float16). Streamlit's own sliders send their "
                   "value on release, when the server recomputes the whole page.")
