"""The Lesson page's glue: each step's words, its one live figure and controls, predictions, preparing the
expensive results ahead, the presenter view and the offline handout.

The steps themselves (order, data set and model, the pages they open) are ``ui.topics.lesson_plan``. Every number comes
from ``compress_core.lesson`` (which calls the topic modules) and every figure from the topic figure builders
(``viz.pruning``, ``viz.lottery``, ``viz.quant``) plus ``viz.lesson``. Results are cached per seed and shared
between sessions (read, never changed).
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st

from compress_core import lesson, lm
from compress_core.baselines import default_train_config
from compress_core.lottery import run_lottery, summarize, verdict
from compress_core.lottery.report import mask_view
from compress_core.pruning import prune_to, weight_values
from compress_core.stats import compare_accuracies
from compress_core.viz import lesson as viz_lesson
from compress_core.viz import lm as viz_lm
from compress_core.viz import lottery as viz_lottery
from compress_core.viz import pruning as viz_pruning
from compress_core.viz import quant as viz_quant
from ui import jobs
from ui.loaders import baseline_of, dataset
from ui.memo import Memo
from ui.sidebar import Selection
from ui.topics import lm as ui_lm
from ui.topics.lesson_plan import STEPS, TAXONOMY, Step, step_named

SS = st.session_state
_RESULTS, _PREPARED = Memo(32), Memo(8)
HEAVY = ("retrain", "lottery", "quant", "llm")  # the results "Prepare the lesson" computes ahead
SPARSITIES = [50, 70, 80, 90, 95, 98]
PREDICT_SPARSITY = 0.98  # step 3 asks where the curves clearly part on digits·mlp (at 90 % they are a point apart)

TEXT = {
    "why": """**Pruning** sets weights to zero (*unstructured*) or removes whole neurons and channels (*structured*).
Why bother? Every weight costs memory (4 bytes in float32), a multiply-add at every inference, and the energy
to fetch it — reading 32 bits from DRAM costs about 170× a float multiply (Horowitz, ISSCC 2014). Below: this
network's own bill, measured here. Move the slider: the red weights are the ones magnitude pruning removes.""",
    "taxonomy": """Pruning methods differ along four axes. **What** is removed: single weights, whole neurons or
channels, or N of every M weights. **How** they are chosen: by magnitude, at random, or by measured sensitivity.
**When**: after training, during training (iteratively or gradually), or before training at all — the lottery
ticket. **Scope**: each layer at the same rate, or one global ranking. Click a branch to open that choice live.""",
    "retrain": """Cut the smallest weights of a trained network and its accuracy drops; train it a little more with
the cut weights held at zero (*fine-tuning*) and most of it comes back. How far can one go? With retraining,
often to about 90–95 % sparsity before accuracy falls off.""",
    "unstructured": """**Unstructured** pruning removes the smallest weights anywhere, then fine-tunes, and repeats
(Han et al. 2015). The zeros save memory only in a sparse format, and they do not save time on dense hardware:
a dense matrix multiply multiplies a zero like any other number. Measured on this server below: *masked dense*
takes the dense network's time. A sparse kernel can skip zeros on a CPU at high sparsity, but GPUs and
accelerators run dense blocks.""",
    "structured": """**Structured** pruning removes whole neurons (rows of a weight matrix, and the matching columns of
the next), so the result is a *smaller dense network*: every layer genuinely shrinks, and any hardware runs it
faster. The price: a neuron is a coarser unit than a weight, so accuracy falls sooner.""",
    "lottery": """**The lottery ticket hypothesis** (Frankle & Carbin 2019): a randomly initialized network contains a
subnetwork — a mask *m* over its *initial* weights θ0 — that, trained alone, reaches the accuracy of the whole
network in as many steps or fewer. **How to find one:** store θ0; train for *j* iterations; prune the smallest
surviving weights to a mask *m*; reset the survivors to their values in θ0; repeat. **Intuition:** the mask
projects the same loss onto fewer dimensions, and θ0's survivors start where that smaller problem is easy.
**Control:** the same mask with *new* random initial weights (re-init) — if it trains as well, the mask alone
was the ticket.""",
    "quant": """**Quantization** stores each number in fewer bits: a real value r is written as **r = S·(q − Z)**, an
integer q, a scale S and a zero point Z, found from the range of the values (S = (max − min)/(2^b − 1)).
*Post-training* quantization (PTQ) rounds a trained network; *quantization-aware training* (QAT) fine-tunes
through the rounding — *fake quantization* in the forward pass, the *straight-through estimator* (the rounding's
gradient taken as 1) in the backward pass; LSQ also learns the step S. Run on integers only, products are summed
in int32 and each layer's rescale M = S_w·S_x/S_out becomes an integer multiply and a bit shift.""",
    "llm": """**Language models** are compressed a little differently: nobody retrains a billion-parameter model, so
the weights are quantized *after* training from a few hundred sentences of calibration text. **RTN** rounds each
weight to its nearest level. **GPTQ** (Frantar et al. 2023) quantizes one input column at a time and shifts the
rounding error onto the columns not yet quantized, weighted by how the inputs correlate (H = 2XXᵀ), so the
layer's *outputs* stay close. **AWQ** (Lin et al. 2024) scales up the few input channels with large activations
first. Here: a small GPT trained on Python's help texts, scored in **bits per character** on text it never saw.""",
}


def selection_for(step: Step, seed: int) -> Selection:
    return Selection(step.dataset, step.model, seed, default_train_config(step.dataset, step.model))


# ---- results ---------------------------------------------------------------------------------------------------
def _compute(name: str, seed: int, report=lambda f, t: None):
    report(0.0, {"retrain": "digits·mlp baseline (trained once, a few seconds)", "lottery": "lottery run on MNIST-1D",
                 "quant": "MNIST-1D CNN baseline (trained once, under a minute)",
                 "llm": "the GPT baseline (trained once, about a minute)"}[name])
    if name == "retrain":
        sel = selection_for(step_named("retrain"), seed)
        return lesson.retraining(baseline_of(sel), dataset(sel.dataset, seed),
                                 progress=lambda f, *r: report(f, "accuracy vs sparsity"))
    if name == "lottery":
        return run_lottery(lesson.lottery_config(seed),
                           progress=lambda p: report(p.fraction, f"lottery round {p.round}"))
    if name == "llm":
        sel = selection_for(step_named("llm"), seed)
        return lesson.language_model(baseline_of(sel), dataset(sel.dataset, seed), seed,
                                     progress=lambda f, t: report(f, f"GPT at 3 bits: {t}"))
    sel = selection_for(step_named("quant"), seed)
    return lesson.quantization(baseline_of(sel), dataset(sel.dataset, seed),
                               progress=lambda f: report(f, "PTQ and QAT against bit width"))


def prepared(name: str, seed: int) -> bool:
    return _RESULTS.has((name, seed))


def heavy(name: str, seed: int):
    """A heavy result: cached, else computed on the heavy-run pool with progress and Cancel (None meanwhile)."""
    return jobs.run(_RESULTS, (name, seed), lambda report: _compute(name, seed, report),
                    {"retrain": "Accuracy vs sparsity", "lottery": "Lottery-ticket run",
                     "quant": "PTQ and QAT curves", "llm": "RTN, GPTQ and AWQ at 3 bits"}[name],
                    f"lesson_cancel_{name}")


def prepare(seed: int) -> bool:
    """Compute every heavy result ahead (one task on the pool, with progress); True when all are ready."""
    missing = [n for n in HEAVY if not prepared(n, seed)]
    if not missing:
        return True

    def run_all(report):
        for i, name in enumerate(missing):
            value = _compute(name, seed, lambda f, t, i=i: report((i + f) / len(missing), t))
            _RESULTS.get((name, seed), lambda v=value: v)
        return True

    return bool(jobs.run(_PREPARED, ("prepare", seed, tuple(missing)), run_all, "Preparing the lesson",
                         "lesson_cancel_prepare"))


# ---- predictions -----------------------------------------------------------------------------------------------
def predict(step: Step, kind: str = "percent") -> float | str | None:
    """The class's committed guess, or None while it is not committed (the answer stays hidden)."""
    key = f"lesson_guess_{step.key}"
    locked = f"{key}_locked" in SS  # the committed guess, kept apart from the widget (gone once it is not drawn)
    if locked:
        guess = SS[f"{key}_locked"]
        st.success(f"**Predict:** {step.predict} — the class said **{guess if kind != 'percent' else f'{guess}%'}**. "
                   "Here is what the network does:", icon="🎯")
    else:
        st.info(f"**Predict first:** {step.predict}", icon="🤔")
    # the same controls in the same places either way: locked, they show the guess greyed out and say so (a run that
    # waits for a heavy result would otherwise leave the old, clickable "Lock in the guess" on screen until it ends)
    c1, c2 = st.columns([3, 1])
    shown = f"{key}_shown" if locked else key  # another key once locked: its value is the guess, not a choice
    if kind == "percent":
        c1.slider("The class's guess (%)", 0, 100, guess if locked else 50, key=shown, disabled=locked)
    else:
        c1.radio("The class's guess", ["yes", "no"], ["yes", "no"].index(guess) if locked else 0, horizontal=True,
                 key=shown, disabled=locked)
    if locked:
        c2.button("Guess locked ✓", key=f"{key}_lock_done", disabled=True)
        return guess
    c2.button("Lock in the guess", key=f"{key}_lock", type="primary",
              on_click=lambda: SS.__setitem__(f"{key}_locked", SS[key]))
    return None


def revealed(step: Step, seed: int, kind: str = "percent") -> tuple | None:
    """(the class's guess, the step's heavy result) once the guess is committed and the result is ready; None
    before (the prediction is asked, or the result computes with its progress)."""
    guess = predict(step, kind)
    if guess is None:
        return None
    result = heavy(step.key, seed)
    return None if result is None else (guess, result)


# ---- the steps -------------------------------------------------------------------------------------------------
def step_why(seed: int) -> list[go.Figure]:
    sel = selection_for(step_named("why"), seed)
    b, ds = baseline_of(sel), dataset(sel.dataset, seed)
    c = _RESULTS.get(("cost", seed), lambda: lesson.cost(b, ds))
    m = st.columns(5)
    m[0].metric("Parameters", f"{c['params']:,}")
    m[1].metric("Stored (float32)", f"{c['bytes'] / 1024:.0f} KB")
    m[2].metric("Multiply-adds / inference", f"{c['macs']:,}")
    m[3].metric("Time / inference (batch 1)", f"{c['ms_one'] * 1000:.0f} µs",
                help=f"One forward pass of one example, median of {lesson.LATENCY_REPEATS}, on this server: measured "
                     f"as the Compare page measures it. In a batch of {lesson.SPEED_BATCH} it is "
                     f"{c['ms_per_example'] * 1000:.1f} µs per example (steps 4 and 5 time such batches).")
    m[4].metric("Energy / inference", f"{c['energy_uj']:.1f} µJ", help="Horowitz 2014 (45 nm): multiply-adds and "
                "weights read from DRAM; the Compare page says what the estimate leaves out.")
    st.caption(f"Training this baseline took {c['train_steps']:,} steps ({c['train_seconds']:.1f} s on this "
               f"server). A network a thousand times bigger costs a thousand times more, at every one of these.")
    sp = st.select_slider("Sparsity (%)", SPARSITIES, 90, key="lesson_why_sparsity")
    model = b.model
    mask = prune_to(model, sp / 100, output_scale=0.5)
    w = weight_values(model, "fc1")
    kept = mask["fc1.weight"].reshape(-1).bool()
    thr = float(w[kept].abs().min()) if kept.any() else None
    return [viz_pruning.weight_histogram(w.numpy(), kept.numpy(), thr, "fc1")]


def step_taxonomy(seed: int) -> list[go.Figure]:
    return [viz_lesson.taxonomy(TAXONOMY)]


def step_retrain(seed: int) -> list[go.Figure]:
    step = step_named("retrain")
    answer = revealed(step, seed)
    if answer is None:
        return []
    guess, rows = answer
    b = baseline_of(selection_for(step, seed))
    fig = viz_pruning.curves_figure(rows, b.test_metrics.accuracy, current=PREDICT_SPARSITY)
    viz_lesson.mark_guess(fig, round(100 * (1 - PREDICT_SPARSITY), 6), guess / 100)

    def at(sparsity: float) -> dict[str, float]:  # the grid point nearest ``sparsity`` (the output layer prunes less)
        return {mode: min((r for r in rows if r["mode"] == mode), key=lambda r: abs(r["sparsity"] - sparsity))
                ["test_acc"] for mode in ("oneshot", "oneshot_ft")}

    hi, mid = at(PREDICT_SPARSITY), at(0.9)
    st.markdown(f"At {PREDICT_SPARSITY:.0%} sparsity: **{hi.get('oneshot', float('nan')):.1%}** without "
                f"fine-tuning, **{hi.get('oneshot_ft', float('nan')):.1%}** with two epochs of it (dense: "
                f"{b.test_metrics.accuracy:.1%}; one test image is {100 / len(dataset('digits', seed).y_test):.2f} "
                f"points). At 90 % the two were still close ({mid.get('oneshot', float('nan')):.1%} and "
                f"{mid.get('oneshot_ft', float('nan')):.1%}): on a network this small, retraining shows its worth only "
                "once almost every weight is gone.")
    return [fig]


def _speed(step_key: str, seed: int, structured: bool) -> list[go.Figure]:
    sel = selection_for(step_named(step_key), seed)
    b, ds = baseline_of(sel), dataset(sel.dataset, seed)
    label = "Neurons removed (%)" if structured else "Sparsity (%)"
    sp = st.select_slider(label, SPARSITIES[:4] if structured else SPARSITIES, 50 if structured else 90,
                          key=f"lesson_{step_key}_sparsity")
    rows = _RESULTS.get((step_key, seed, sp), lambda: lesson.speed(b, ds, sp / 100, structured))
    fast = {r["variant"]: r for r in rows}
    if structured:
        s = fast["structured (shrunk)"]
        st.markdown(f"The shrunk network runs in **{s['vs_dense']:.2f}×** the dense time at **{s['test_acc']:.1%}** "
                    "accuracy (no fine-tuning; the Pruning page fine-tunes it).")
    else:
        st.markdown(f"Masked dense: **{fast['masked dense']['vs_dense']:.2f}×** the dense time — the zeros are "
                    f"multiplied anyway. Sparse CSR: {fast['sparse CSR']['vs_dense']:.2f}× (a sparse CPU kernel).")
    dense = fast["dense"]["median_ms"]
    st.caption(f"Timed: one forward pass of a batch of {lesson.SPEED_BATCH} test inputs, median of "
               f"{lesson.SPEED_REPEATS}: the dense network takes {dense:.2f} ms a batch, "
               f"{1000 * dense / lesson.SPEED_BATCH:.1f} µs per example (step 1's time is of one example alone, where "
               "the overhead of a call dominates).")
    return [viz_pruning.timing_figure(rows, lesson.SPEED_BATCH, lesson.SPEED_REPEATS)]


def step_unstructured(seed: int) -> list[go.Figure]:
    return _speed("unstructured", seed, False)


def step_structured(seed: int) -> list[go.Figure]:
    return _speed("structured", seed, True)


def step_lottery(seed: int) -> list[go.Figure]:
    step = step_named("lottery")
    cfg = lesson.lottery_config(seed)
    ds = dataset(step.dataset, seed)
    steps = -(-len(ds.y_train) // cfg.train.batch_size) * cfg.train.epochs
    st.markdown(f"Here: MNIST-1D's MLP; each round trains for **j = {steps:,} iterations**, prunes 20 % of the "
                f"surviving weights, and resets the survivors to θ0; {cfg.rounds} rounds.")
    answer = revealed(step, seed, "yesno")
    if answer is None:
        return []
    guess, run = answer
    rows = summarize([run])
    v = verdict([run])
    st.markdown(f"**What the run found:** {v.text}")
    r = st.slider("Round (the ticket's mask)", 0, run.rounds_done, run.rounds_done, key="lesson_lottery_round")
    view = mask_view(run, r, ds.input_shape, ds.kind)
    fig = viz_lottery.accuracy_vs_remaining(rows, "final test accuracy", title="Ticket vs controls")
    viz_lesson.note_guess(fig, f"re-init trains as well as the ticket — {guess}")
    return [fig, viz_lottery.first_layer_inputs(view.first, ds.input_shape, ds.kind, r)]


def step_quant(seed: int) -> list[go.Figure]:
    step = step_named("quant")
    answer = revealed(step, seed)
    if answer is None:
        return []
    guess, series = answer
    b = baseline_of(selection_for(step, seed))
    bits = st.select_slider("Weight bits", [2, 3, 4, 6, 8], 2, key="lesson_quant_bits")
    ptq = {r["bits"]: r["accuracy"] for r in series["PTQ (post-training)"]}
    qat = {r["bits"]: r["accuracy"] for r in series["QAT (straight-through)"]}
    n = len(dataset(step.dataset, seed).y_test)
    gap = compare_accuracies([qat[bits]], [ptq[bits]], n)
    st.markdown(f"At {bits} bits: PTQ **{ptq[bits]:.1%}**, QAT **{qat[bits]:.1%}** (float "
                f"{b.test_metrics.accuracy:.1%}; {n:,} test signals). QAT against PTQ: {gap.words()}.")
    fig = viz_quant.accuracy_curves(series, b.test_metrics.accuracy, current={"bits": bits, "accuracy": qat[bits]},
                               title="PTQ vs QAT against bit width (activations 8-bit)")
    viz_lesson.mark_guess(fig, 2, guess / 100)
    return [fig]


def step_llm(seed: int) -> list[go.Figure]:
    step = step_named("llm")
    answer = revealed(step, seed, "yesno")
    if answer is None:
        return []
    guess, res = answer
    scores = res["scores"]
    st.markdown(f"**What the GPT shows:** {ui_lm.verdict(scores, 'gptq_w3_g128', 'rtn_w3_g128')} "
                f"{ui_lm.verdict(scores, 'awq_w3_g128', 'rtn_w3_g128')}")
    cols = st.columns(3)
    for col, key in zip(cols, lesson.LLM_TEXT):
        col.markdown(f"**{lm.label(key)}** writes, at temperature 0.8:")
        col.code(res["prompt"] + res["texts"][key], language=None, wrap_lines=True)
    fig = viz_lm.bpc_bars(scores, "3-bit weights, groups of 128")
    viz_lesson.note_guess(fig, f"GPTQ loses less than rounding — {guess}")
    return [fig]


RENDER = {"why": step_why, "taxonomy": step_taxonomy, "retrain": step_retrain, "unstructured": step_unstructured,
          "structured": step_structured, "lottery": step_lottery, "quant": step_quant, "llm": step_llm}


# ---- presenter view and handout --------------------------------------------------------------------------------
PRESENTER_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header {display: none !important;}
[data-testid="stMain"] .block-container {max-width: 100%; padding-top: 1rem;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {font-size: 1.45rem; line-height: 1.45;}
h1 {font-size: 2.6rem !important;} h2 {font-size: 2.1rem !important;}
[data-testid="stMetricValue"] {font-size: 2.6rem;}
/* labels, links and buttons wrap instead of ending in "…" on a projector's narrow, zoomed page */
[data-testid="stMetricLabel"] *, [data-testid="stPageLink"] *, button * {white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; height: auto !important;}
</style>"""


RELEASE_FOCUS_JS = """<script>
(() => {
  const active = document.activeElement;
  if (active && active.closest(".st-key-lesson_presenter")) active.blur();
})();
</script>"""


def _md(text: str) -> str:
    """The few markdown marks the lesson's texts use, as HTML (bold, italics, paragraphs)."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)
    return "".join(f"<p>{p.strip()}</p>" for p in text.split("\n\n"))


def remember(key: str, figures: list[go.Figure]) -> None:
    """Keep the figures a step showed, as shown (for the handout)."""
    SS.setdefault("lesson_figures", {})[key] = figures


def handout(figures: dict[str, list[go.Figure]]) -> str:
    """One self-contained HTML page: every step's text and the figures it showed in class (Plotly's JavaScript
    inlined, so it opens with no network); a step not shown says so."""
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Compression Lab — the lesson</title>"
             f"<script>{js.read_text(encoding='utf-8')}</script><style>body{{font-family:sans-serif;max-width:"
             "1100px;margin:2rem auto;line-height:1.5}}h2{{margin-top:2.5rem}}</style></head><body>"
             "<h1>Model compression — the lesson</h1>"]
    for i, step in enumerate(STEPS, 1):
        parts.append(f"<h2>{i} · {html.escape(step.title)}</h2>{_md(TEXT[step.key])}")
        if not figures.get(step.key):
            parts.append("<p><i>(This step's figure was not shown in class.)</i></p>")
        for fig in figures.get(step.key, []):
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    parts.append("<p><i>Made with Compression Lab; every number was computed by the app.</i></p></body></html>")
    return "".join(parts)
