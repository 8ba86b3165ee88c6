"""Lottery tickets: inside a random network there is a sparse subnetwork that trains as well on its own.

Iterative magnitude pruning with rewinding to θ0 or θk (Frankle & Carbin 2019; Frankle et al. 2020), against
random re-initialization, a random mask and one-shot pruning; results averaged over seeds.
"""
import json
import time

import pandas as pd
import streamlit as st

from compress_core.lottery import (
    ARM_LABELS,
    CONTROLS,
    MEASURES,
    LotteryConfig,
    check,
    overlap_matrix,
    rate_for_target,
    summarize,
    ticket_train_config,
    verdict,
)
from compress_core.models import build_model, weighted_layers
from compress_core.train import TrainConfig
from compress_core.viz import lottery as lviz
from ui.explain import explainer, published
from ui.loaders import dataset
from ui.lottery import Job, cached_runs
from ui.sidebar import selection
from ui.state import remember, to_bool, url_value

sel = selection()
ds = dataset(sel.dataset, sel.seed)
recipe = ticket_train_config(sel.dataset, sel.model)
st.title("🎟️ Lottery tickets")
st.markdown(
    "**The claim** (Frankle & Carbin 2019): a randomly initialized network contains a subnetwork — a mask over "
    "its *initial* weights — that, trained alone for at most as long, reaches the accuracy of the whole network "
    "with a fraction of the weights, and learns faster. **How it is found:** train, remove the smallest weights, "
    "reset the survivors to their initial values, repeat. The controls tell whether it is the mask or the "
    "initial values that matter.")

# --- Settings ------------------------------------------------------------------------------------------
SCOPE = {"layer": "per layer", "global": "global"}
REWIND = {"init": "θ0 (initial weights)", "early": "θk (after k iterations)"}
RATE_MODE = {"rate": "rate per round", "target": "target % remaining"}
url_value("lt_rounds", 10, cast=int, check=lambda v: 0 <= v <= 20)
url_value("lt_mode", "rate", allowed=list(RATE_MODE))
url_value("lt_rate", 20, cast=int, check=lambda v: 0 <= v <= 100)
url_value("lt_target", 10.0, cast=float, check=lambda v: 0 <= v <= 100)
url_value("lt_scope", "layer", allowed=list(SCOPE))
url_value("lt_half", True, cast=to_bool)
url_value("lt_rewind", "init", allowed=list(REWIND))
url_value("lt_k", recipe.rewind_iteration, cast=int, check=lambda v: 0 <= v <= 100_000)
url_value("lt_epochs", recipe.epochs, cast=int, check=lambda v: 1 <= v <= 100)
pair = (sel.dataset, sel.model)
if st.session_state.setdefault("lt_pair", pair) != pair:  # a new pair starts from its own recipe
    st.session_state.update(lt_pair=pair, lt_epochs=recipe.epochs, lt_k=recipe.rewind_iteration)
url_value("lt_seeds", 1, cast=int, check=lambda v: 1 <= v <= 5)
for c, default in (("reinit", True), ("random_mask", True), ("oneshot", False)):
    url_value(f"lt_{c}", default, cast=to_bool)

st.header("1 · Settings")
c1, c2, c3, c4 = st.columns(4)
c1.number_input("Pruning rounds", 0, 20, step=1, key="lt_rounds",
                help="Each round trains the current ticket, then removes a fraction of its surviving weights. "
                     "Frankle & Carbin ran up to 20+ rounds at 20 % per round.")
c2.radio("Pruning amount", list(RATE_MODE), format_func=RATE_MODE.get, key="lt_mode", horizontal=True,
         help="Either a fixed fraction of the survivors per round, or the % of weights you want left at the "
              "end: then the rate is p = 1 − r^(1/N).")
if st.session_state["lt_mode"] == "rate":
    c2.slider("Rate per round (% of survivors)", 0, 100, step=1, key="lt_rate",
              help="20 % per round leaves 80 %, 64 %, 51 %… of the weights.")
else:
    c2.number_input("Target weights remaining (%)", 0.0, 100.0, step=1.0, key="lt_target",
                    help="What should be left after the last round.")
c3.radio("Scope", list(SCOPE), format_func=SCOPE.get, key="lt_scope",
         help="Per layer: each layer loses the same fraction. Global: one ranking across the hidden layers.")
c3.checkbox("Output layer at half rate", key="lt_half",
            help="As in the original paper: the small classifier layer is pruned at half the rate.")
c4.radio("Rewind the survivors to", list(REWIND), format_func=REWIND.get, key="lt_rewind",
         help="θ0 is the original hypothesis. θk, the weights after a few iterations, is 'late rewinding' "
              "(Frankle et al. 2020), needed for tickets in larger networks.")
c4.number_input("k (iteration to rewind to)", 0, 100_000, step=5, key="lt_k",
                disabled=st.session_state["lt_rewind"] == "init",
                help="Used only when rewinding to θk: a few % of training.")
c1, c2, c3, c4 = st.columns(4)
c1.checkbox("Control: random re-init", key="lt_reinit",
            help="The ticket's mask on fresh random weights: does the initialization matter?")
c1.checkbox("Control: random mask", key="lt_random_mask",
            help="As many weights per layer, chosen at random, on the rewind weights: does the mask matter?")
c1.checkbox("Control: one-shot pruning", key="lt_oneshot",
            help="The trained dense network pruned once to the same sparsity: does iterating matter?")
c2.slider("Seeds", 1, 5, key="lt_seeds",
          help=f"Repeat with seeds {sel.seed}, {sel.seed + 1}, …: results are averaged, with a band across seeds.")
c3.slider("Epochs per round", 1, 100, key="lt_epochs",
          help=f"Every arm of every round trains for this fixed budget from the rewind point. Recipe for "
               f"{sel.dataset}·{sel.model}: {recipe.epochs} epochs, Adam at {recipe.lr:g}, batch {recipe.batch_size}.")
remember("lt_rounds", "lt_mode", "lt_rate", "lt_target", "lt_scope", "lt_half", "lt_rewind", "lt_k", "lt_epochs",
         "lt_seeds", "lt_reinit", "lt_random_mask", "lt_oneshot")

seeds = list(range(sel.seed, sel.seed + int(st.session_state["lt_seeds"])))
cfg, problem = None, None
try:
    rounds = int(st.session_state["lt_rounds"])
    if st.session_state["lt_mode"] == "rate":
        rate = st.session_state["lt_rate"] / 100
    else:
        if rounds < 1:
            raise ValueError("Zero rounds prune nothing, so there is no ticket to find: choose at least 1 round.")
        rate = rate_for_target(st.session_state["lt_target"] / 100, rounds)
    cfg = LotteryConfig(dataset=sel.dataset, model=sel.model, rounds=rounds, rate=rate,
                        scope=st.session_state["lt_scope"],
                        output_scale=0.5 if st.session_state["lt_half"] else 1.0, rewind=st.session_state["lt_rewind"],
                        rewind_iteration=int(st.session_state["lt_k"]),
                        controls=tuple(c for c in CONTROLS if st.session_state[f"lt_{c}"]),
                        train=TrainConfig(**{**recipe.to_dict(), "epochs": int(st.session_state["lt_epochs"])}),
                        seed=sel.seed)
    check(cfg, ds)
except ValueError as e:
    problem = str(e)
    cfg = None
if cfg is not None:
    c4.caption(f"**Rate:** {cfg.rate:.1%} of the survivors per round"
               + (f" (output layer {cfg.rate * cfg.output_scale:.1%})" if cfg.output_scale != 1 else "")
               + f" · after {cfg.rounds} rounds about {100 * (1 - cfg.rate) ** cfg.rounds:.1f} % of the weights are "
               f"left · {len(cfg.arms) * cfg.rounds + 1} trainings per seed.")


# --- Published and explained ---------------------------------------------------------------------------
def about() -> None:
    """What the papers found, and the explainer: shown with or without results."""
    st.header("What the papers found")
    left, right = st.columns(2)
    with left:
        published("Frankle & Carbin 2019, *The Lottery Ticket Hypothesis*, LeNet-300-100 on MNIST",
                  "Layer-wise pruning at 20 % per round (output layer 10 %) leaves "
                  + ", ".join(f"{x:g}" for x in lviz.FRANKLE_CARBIN_REMAINING[:10]) + "… % of the weights. Winning "
                  "tickets match or beat the dense network down to about **3.6 %** of the weights and learn "
                  "fastest near **21 %**; randomly re-initialized subnetworks degrade much earlier. Frankle et al. 2020: on larger "
                  "networks rewinding to θ0 fails, rewinding to an early iteration θk recovers tickets.")
    with right:
        published("Greydanus 2020, *Scaling down deep learning* (MNIST-1D), lottery-tickets notebook",
                  "An MLP on MNIST-1D: tickets beat random re-initialization at every sparsity, and at 91 % sparsity "
                  "reach 75.0 / 72.4 % (two trials) against 66.4 / 64.8 % for the dense network.")
        st.plotly_chart(lviz.published_greydanus(), key="lt_published")
    explainer("Why would a ticket exist? — the hypothesis, the procedure and its intuition", (
        "- **The hypothesis.** A dense, randomly initialized network contains a subnetwork that — initialized with the "
        "*same* values — can be trained in isolation to match the full network's accuracy in at most as many "
        "iterations. Pruning after training shows that small networks *can represent* the solution; the lottery "
        "ticket says they can also *find* it, if they start from the right weights.\n"
        "- **The procedure.** Store θ0. Train for j iterations to θj. Remove the p % of surviving weights with the "
        "smallest |θj| (mask m). Reset the survivors to θ0 (or θk) and train again. Repeat: each round the search is "
        "among the subnets that were already there at the start.\n"
        "- **Intuition.** Pruning projects the loss landscape onto fewer dimensions; the weights that grew large "
        "were the ones whose initial values pointed somewhere useful. Re-initializing throws that away — which is why "
        "the re-init control falls behind at high sparsity while the ticket holds on. A random mask keeps the "
        "initial values but loses the structure the pruning found. Greydanus reports that MNIST-1D tickets, pruned "
        "far enough, develop local connectivity (neurons keep neighbouring time steps): look at the neuron tiles "
        "of your run to see whether it shows at the sparsity you reached.\n"
        "- **Honest caveats.** 'Winning' depends on the training recipe: here every round trains for the same fixed "
        "budget, and the dense network is trained with the same recipe. With θk rewinding the ticket starts from "
        "weights that already trained for k steps. Unstructured sparsity saves memory only in a sparse format."))


# --- Run -----------------------------------------------------------------------------------------------
job: Job | None = st.session_state.get("lt_job")
if problem:
    st.error(f"These settings cannot run: {problem}", icon="🚫")
running = job is not None and not job.done


def _start() -> None:
    if cfg is not None:
        st.session_state["lt_job"] = Job(cfg, seeds).start()


def _stop() -> None:
    j = st.session_state.get("lt_job")
    if j is not None:
        j.stop.set()


b1, b2, b3 = st.columns([1, 1, 4])
b1.button("▶ Run", key="lt_run", type="primary", on_click=_start, disabled=cfg is None or running,
          help="Runs every round for every seed; rounds already in the cache are reused, a stopped run resumes.")
b2.button("■ Stop", key="lt_stop", on_click=_stop, disabled=not running,
          help="Stops at the next evaluation; the round in progress is dropped, finished rounds are kept.")
job = st.session_state.get("lt_job")
if job is not None and not job.done:
    bar = st.progress(0.0, text="Starting…")
    while not job.done:
        p = job.progress
        if p is not None:
            bar.progress(p.fraction, text=("Stopping after this evaluation… " if job.stop.is_set() else "")
                         + p.message)
        time.sleep(0.4)
    st.rerun()
if job is not None and job.error:
    st.error(job.error, icon="🚫")

runs = []
if cfg is not None:
    if job is not None and job.matches(cfg, seeds) and job.runs:
        runs = cached_runs(cfg, seeds) or list(job.runs)
        if job.stopped:
            done = min(r.rounds_done for r in runs)
            st.warning(f"Stopped. The {done} finished round(s) of {len(runs)} seed(s) are kept and shown below; "
                       "press Run to continue from there.", icon="⏸️")
    else:
        runs = cached_runs(cfg, seeds)
        if runs and (len(runs) < len(seeds) or not runs[-1].complete):
            st.info(f"Found {sum(r.rounds_done for r in runs)} finished round(s) of these settings in the cache; "
                    "press Run to finish the rest.", icon="💾")
        elif runs:
            st.caption("Loaded from the cache: these settings ran before.")
runs = [r for r in runs if r.rounds_done > 0]
if not runs:
    if cfg is not None and not running:
        st.info("Press **Run** to find a ticket. Each round trains the ticket and each control from the rewind "
                "point; a progress bar shows the round and the time left.", icon="🎟️")
    about()
    st.stop()

# --- Results -------------------------------------------------------------------------------------------
st.header("2 · What came out")
url_value("lt_measure", "final_acc", allowed=list(MEASURES))
url_value("lt_tol", 0.0, cast=float, check=lambda x: 0.0 <= x <= 2.0)
c1, c2 = st.columns([2, 1])
measure = c1.radio("Accuracy shown", list(MEASURES), format_func=MEASURES.get, key="lt_measure", horizontal=True,
                   help="Final: at the end of the fixed budget. Early stop: at the iteration of lowest validation "
                        "loss (Frankle & Carbin's measure). Best: the highest test accuracy seen, an optimistic pick.")
tol = c2.slider("Counts as matching within (points)", 0.0, 2.0, step=0.25, key="lt_tol",
                help="How far below the dense accuracy a ticket may fall and still count as 'matching'.")
remember("lt_measure", "lt_tol")
rows = summarize(runs, measure)
v = verdict(runs, measure, tolerance=tol)
(st.success if v.matched_round is not None else st.warning)(v.text, icon="🎟️" if v.matched_round else "⚠️")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Dense accuracy", f"{v.dense_acc:.1f} %")
m2.metric("Sparsest matching ticket" if v.matched_round else "Best ticket", f"{v.remaining:.1f} % left",
          help="Weights remaining at that round.")
m3.metric("Ticket accuracy there", f"{v.ticket_acc:.1f} %", f"{v.ticket_acc - v.dense_acc:+.1f} points")
m4.metric("Learns faster by", f"{v.speedup:.2f}×" if v.speedup else "—",
          help="Dense early-stopping iteration ÷ the ticket's (min. validation loss).")
st.plotly_chart(lviz.accuracy_vs_remaining(rows, MEASURES[measure]), key="lt_acc_fig")
st.plotly_chart(lviz.early_stop_vs_remaining(rows), key="lt_es_fig")

run0 = runs[0]
done = min(r.rounds_done for r in runs)
first = weighted_layers(build_model(sel.model, ds))


def seed_round_value(key: str, lowest: int) -> None:
    """A round slider's value from the URL, kept within the rounds finished so far (latest by default)."""
    url_value(key, done, cast=int, check=lambda x: lowest <= x <= done)
    if not lowest <= st.session_state[key] <= done:
        st.session_state[key] = done


@st.fragment
def masks_section() -> None:
    st.header("3 · The masks")
    seed_round_value("lt_round", 0)
    r = st.slider("Show the mask at round", 0, done, key="lt_round",
                  help=f"Masks of seed {run0.config.seed}; round 0 is the dense network.")
    mask = {k: t.numpy() for k, t in run0.mask(r).items()}
    name, module = first[0]
    w = mask[f"{name}.weight"]
    left, right = st.columns(2)
    if w.ndim == 2:
        left.plotly_chart(lviz.first_layer_inputs(w, ds.input_shape, ds.kind, r), key="lt_inputs")
        right.plotly_chart(lviz.neuron_tiles(w, ds.input_shape, ds.kind), key="lt_tiles")
    else:  # a convolution: each filter's kernel is its tile
        k = w.reshape(w.shape[0], -1, *w.shape[2:]).sum(axis=1) > 0
        shape = k.shape[1:] if k.ndim == 3 else (1, k.shape[-1])
        left.plotly_chart(lviz.neuron_tiles(k.reshape(k.shape[0], -1), shape, "image" if k.ndim == 3 else "sequence",
                                            title=f"Round {r}: each first-layer filter's kept kernel positions"),
                          key="lt_tiles")
        right.caption("The first layer is a convolution: it has no per-input connections to count.")
    by_round = {0: {n: 1.0 for n in run0.dense.layer_remaining},
                **{i + 1: a["ticket"].layer_remaining for i, a in enumerate(run0.rounds)}}
    st.plotly_chart(lviz.layer_remaining(by_round, r), key="lt_layers")
    ctrl = {a: [(i + 1, rnd[a].overlap_ticket) for i, rnd in enumerate(run0.rounds)]
            for a in ("random_mask", "oneshot") if a in run0.config.controls}
    st.plotly_chart(lviz.overlap(overlap_matrix([run0.mask(i) for i in range(done + 1)]), ctrl), key="lt_overlap")
    st.caption("Pruned weights stay pruned, so a ticket's mask always sits inside the previous round's: the overlap "
               "between consecutive rounds is the fraction kept. A random mask overlaps the ticket only by chance "
               "(about the fraction remaining); one-shot pruning finds a different but related mask.")
    remember("lt_round")


masks_section()


@st.fragment
def curves_section() -> None:
    st.header("4 · Training at one round")
    seed_round_value("lt_curve_round", 1)
    if done > 1:
        r = st.slider("Show the training at round", 1, done, key="lt_curve_round",
                      help=f"Curves of seed {run0.config.seed}: the ticket, its controls and the dense network.")
    else:  # a slider needs two positions
        r = 1
        st.caption(f"Round 1 is the only finished round (seed {run0.config.seed}).")
    rnd = run0.rounds[r - 1]
    curves = {"dense": list(run0.dense.records), **{a: list(x.records) for a, x in rnd.items()}}
    st.plotly_chart(lviz.round_curves(curves, r, title=f"Round {r}: {rnd['ticket'].remaining:.1%} of the weights left"),
                    key="lt_curves")
    remember("lt_curve_round")


curves_section()

# --- Table and downloads -------------------------------------------------------------------------------
st.header("5 · All numbers")
table = pd.DataFrame([{"round": r["round"], "arm": ARM_LABELS[r["arm"]], "weights left (%)": r["remaining"],
                       f"{MEASURES[measure]} (%)": r["acc_mean"], "spread across seeds": r["acc_std"],
                       "final (%)": r["final_acc"], "at early stop (%)": r["early_stop_acc"],
                       "best (%)": r["best_acc"], "early-stop iteration": r["early_stop_iteration"],
                       "overlap with previous round": r["overlap_prev"], "seeds": r["seeds"]} for r in rows])
st.dataframe(table.style.format(precision=2), hide_index=True, width="stretch")
d1, d2 = st.columns(2)
d1.download_button("Download the table (CSV)", table.to_csv(index=False), file_name="lottery_tickets.csv",
                   mime="text/csv", key="lt_csv")
d2.download_button("Download the runs (JSON: settings, curves, masks)",
                   json.dumps([r.to_dict() for r in runs]), file_name="lottery_runs.json", mime="application/json",
                   key="lt_json")

about()
