"""Lottery tickets: inside a random network there is a sparse subnetwork that trains as well on its own.

Iterative magnitude pruning with rewinding to θ0 or θk (Frankle & Carbin 2019; Frankle et al. 2020), against
random re-initialization, a random mask and one-shot pruning; results averaged over seeds.
"""

import streamlit as st

from compress_core.lottery import CONTROLS, MEASURES, summarize, ticket_train_config, verdict
from compress_core.lottery.report import mask_view, round_curves, rounds_done, seeds, settings_config
from compress_core.viz import lottery as viz_lottery
from ui.loaders import dataset
from ui.sidebar import classifier_page, lesson_switch, selection
from ui.state import to_bool, url_widget, view_tabs
from ui.topics import lottery as ui_lottery
from ui.topics.lottery import CONTROL_LABELS, RATE_MODE, REWIND, SCOPE

sel = selection()
classifier_page(sel, "Lottery tickets", "each round retrains the whole network (a minute for the GPT), so a run "
                "with its controls would take most of an hour on this CPU.", "lt_classic")
ds = dataset(sel.dataset, sel.seed)
recipe = ticket_train_config(sel.dataset, sel.model)
st.title("🎟️ Lottery tickets")
ui_lottery.intro()
lesson_switch(sel, "mnist1d", "mlp", "The lottery-ticket effect is clearest where the dense network over-fits: on "
              "MNIST-1D's MLP tickets beat both random re-initialization and the dense network by several points "
              "(on digits every arm is near 97 %).", "lt_lesson")


def pruning_settings() -> dict:
    """Section 1, first row: how much is pruned and where the survivors rewind to (``settings_config`` keywords)."""
    pair = (sel.dataset, sel.model)
    if st.session_state.setdefault("lt_pair", pair) != pair:  # a new pair starts from its own recipe
        st.session_state.update(lt_pair=pair, lt_epochs=recipe.epochs, lt_k=recipe.rewind_iteration)
    st.header("1 · Settings")
    c1, c2, c3, c4 = st.columns(4)
    s = dict(rounds=url_widget(
        c1.number_input, "lt_rounds", 10, "Pruning rounds", 0, 20, step=1, cast=int, check=lambda v: 0 <= v <= 20,
        help="Each round trains the current ticket, then removes a fraction of its surviving weights. "
             "Frankle & Carbin ran up to 20+ rounds at 20 % per round."))
    s["mode"] = url_widget(c2.radio, "lt_mode", "rate", "Pruning amount", list(RATE_MODE), allowed=list(RATE_MODE),
                           format_func=RATE_MODE.get, horizontal=True,
                           help="Either a fixed fraction of the survivors per round, or the % of weights you want "
                                "left at the end: then the rate is p = 1 − r^(1/N).")
    if s["mode"] == "rate":
        s["rate_percent"] = url_widget(c2.slider, "lt_rate", 20, "Rate per round (% of survivors)", 0, 100, step=1,
                                       cast=int, check=lambda v: 0 <= v <= 100,
                                       help="20 % per round leaves 80 %, 64 %, 51 %… of the weights.")
    else:
        s["target_percent"] = url_widget(c2.number_input, "lt_target", 10.0, "Target weights remaining (%)", 0.0,
                                         100.0, step=1.0, cast=float, check=lambda v: 0 <= v <= 100,
                                         help="What should be left after the last round.")
    s["scope"] = url_widget(c3.radio, "lt_scope", "layer", "Scope", list(SCOPE), allowed=list(SCOPE),
                            format_func=SCOPE.get, help="Per layer: each layer loses the same fraction. Global: one "
                                                        "ranking across the hidden layers.")
    s["half_output"] = url_widget(c3.checkbox, "lt_half", True, "Half-rate output", cast=to_bool,
                                  help="As in the original paper: the small classifier layer is pruned at half the "
                                       "rate.")
    s["rewind"] = url_widget(c4.radio, "lt_rewind", "init", "Rewind the survivors to", list(REWIND),
                             allowed=list(REWIND), format_func=REWIND.get,
                             help="θ0 is the original hypothesis. θk, the weights after a few iterations, is 'late "
                                  "rewinding' (Frankle et al. 2020), needed for tickets in larger networks.")
    s["rewind_iteration"] = url_widget(c4.number_input, "lt_k", recipe.rewind_iteration, "k (iteration to rewind to)",
                                       0, 100_000, step=5, cast=int, check=lambda v: 0 <= v <= 100_000,
                                       disabled=s["rewind"] == "init",
                                       help="Used only when rewinding to θk: a few % of training.")
    return s


def training_settings() -> tuple[dict, int, object]:
    """Section 1, second row: the controls, seeds and training budget; and the column the plan is written in."""
    c1, c2, c3, c4 = st.columns(4)
    s = {}
    c1.markdown("**Controls** (trained like the ticket)")
    s["controls"] = [c for c in CONTROLS if url_widget(c1.checkbox, f"lt_{c}", CONTROL_LABELS[c][1],
                                                       CONTROL_LABELS[c][0], cast=to_bool, help=CONTROL_LABELS[c][2])]
    n_seeds = url_widget(c2.slider, "lt_seeds", 1, "Seeds", 1, 5, cast=int, check=lambda v: 1 <= v <= 5,
                             help=f"Repeat with seeds {sel.seed}, {sel.seed + 1}, …: results are averaged, with a "
                                  "band across seeds.")
    s["epochs"] = url_widget(c3.slider, "lt_epochs", recipe.epochs, "Epochs per round", 1, 100, cast=int,
                             check=lambda v: 1 <= v <= 100,
                             help=f"Every arm of every round trains for this fixed budget from the rewind point. "
                                  f"Recipe for {sel.dataset}·{sel.model}: {recipe.epochs} epochs, Adam at "
                                  f"{recipe.lr:g}, batch {recipe.batch_size}.")
    return s, n_seeds, c4


def config_or_problem(s: dict) -> tuple:
    """The run's config from the controls, or (None, the reason in plain words)."""
    try:
        return settings_config(sel.dataset, sel.model, sel.seed, data=ds, **s), None
    except ValueError as e:
        return None, str(e)


def run_section(cfg, run_seeds: list[int], problem: str | None) -> list:
    """The Run / Stop buttons, the progress of a running job, and the finished runs of these settings."""
    job = st.session_state.get("lt_job")
    if problem:
        st.error(f"These settings cannot run: {problem}", icon="🚫")
    running = job is not None and not job.done
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("▶ Run", key="lt_run", type="primary", on_click=ui_lottery.start, args=(cfg, run_seeds),
              disabled=cfg is None or running,
              help="Runs every round for every seed; rounds already in the cache are reused, a stopped run resumes.")
    b2.button("■ Stop", key="lt_stop", on_click=ui_lottery.stop, disabled=not running,
              help="Stops at the next evaluation; the round in progress is dropped, finished rounds are kept.")
    job = st.session_state.get("lt_job")
    if job is not None and not job.done:
        ui_lottery.follow(job)
    if job is not None and job.error:
        st.error(job.error, icon="🚫")
    runs = ui_lottery.shown_runs(cfg, run_seeds, job) if cfg is not None else []
    if not runs and cfg is not None and not running:
        st.info("Press **Run** to find a ticket. Each round trains the ticket and each control from the rewind "
                "point; a progress bar shows the round and the time left.", icon="🎟️")
    return runs


def results_section(runs: list) -> tuple[str, list[dict]]:
    """Section 2: the verdict, its numbers and the accuracy figures; returns the measure and summary rows."""
    st.header("2 · What came out")
    c1, c2 = st.columns([2, 1])
    measure = url_widget(c1.radio, "lt_measure", "final_acc", "Accuracy shown", list(MEASURES),
                         allowed=list(MEASURES), format_func=MEASURES.get, horizontal=True,
                         help="Final: at the end of the fixed budget. Early stop: at the iteration of lowest "
                              "validation loss (Frankle & Carbin's measure). Best: the highest test accuracy seen, "
                              "an optimistic pick.")
    tol = url_widget(c2.slider, "lt_tol", 0.0, "Counts as matching within (points)", 0.0, 2.0, step=0.25,
                     cast=float, check=lambda x: 0.0 <= x <= 2.0,
                     help="How far below the dense accuracy a ticket may fall and still count as 'matching'. "
                          "A difference must also exceed this (and 2 standard errors) to count, for the controls "
                          "too.")
    rows = summarize(runs, measure, n_test=len(ds.y_test))
    v = verdict(runs, measure, tolerance=tol, n_test=len(ds.y_test))
    (st.success if v.matched_round is not None else st.warning)(v.text, icon="🎟️" if v.matched_round else "⚠️")
    ui_lottery.verdict_metrics(v)
    ui_lottery.uncertainty(v)
    st.plotly_chart(viz_lottery.accuracy_vs_remaining(rows, MEASURES[measure]), key="lt_acc_fig")
    st.plotly_chart(viz_lottery.early_stop_vs_remaining(rows), key="lt_es_fig")
    return measure, rows


@st.fragment
def masks_section(run, done: int) -> None:
    st.header("3 · The masks")
    r = ui_lottery.round_slider(st, "lt_round", 0, done, "Show the mask at round",
                           f"Masks of seed {run.config.seed}; round 0 is the dense network.")
    view = mask_view(run, r, ds.input_shape, ds.kind, rounds=done)

    def first_layer() -> None:
        left, right = st.columns(2)
        if not view.conv:
            left.plotly_chart(viz_lottery.first_layer_inputs(view.first, ds.input_shape, ds.kind, r), key="lt_inputs")
            right.plotly_chart(viz_lottery.neuron_tiles(view.first, ds.input_shape, ds.kind), key="lt_tiles")
        else:  # a convolution: each filter's kernel is its tile
            left.plotly_chart(viz_lottery.neuron_tiles(view.first, view.tile_shape, view.tile_kind,
                                                title=f"Round {r}: each first-layer filter's kept kernel positions"),
                              key="lt_tiles")
            right.caption("The first layer is a convolution: it has no per-input connections to count.")

    def overlap() -> None:
        st.plotly_chart(viz_lottery.overlap(view.overlap, view.control_overlap), key="lt_overlap")
        st.caption("Pruned weights stay pruned, so a ticket's mask always sits inside the previous round's: the "
                   "overlap between consecutive rounds is the fraction kept. A random mask overlaps the ticket only "
                   "by chance (about the fraction remaining); one-shot pruning finds a different but related mask.")

    view_tabs("lt_mask_view", {  # only the open tab runs: a round move redraws its charts, not all four
        "The first layer": first_layer,
        "Every layer": lambda: st.plotly_chart(viz_lottery.layer_remaining(view.layer_remaining_by_round, r),
                                               key="lt_layers"),
        "Overlap between masks": overlap})


@st.fragment
def curves_section(run, done: int) -> None:
    st.header("4 · Training at one round")
    if done > 1:
        r = ui_lottery.round_slider(st, "lt_curve_round", 1, done, "Show the training at round",
                               f"Curves of seed {run.config.seed}: the ticket, its controls and the dense network.")
    else:  # a slider needs two positions
        r = 1
        st.caption(f"Round 1 is the only finished round (seed {run.config.seed}).")
    rc = round_curves(run, r)
    st.plotly_chart(viz_lottery.round_curves(rc.curves, r, title=f"Round {r}: {rc.remaining:.1%} of the weights left"),
                    key="lt_curves")


settings = pruning_settings()
more, n_seeds, plan_col = training_settings()
cfg, problem = config_or_problem({**settings, **more})
if cfg is not None:
    ui_lottery.plan_caption(plan_col, cfg)
runs = run_section(cfg, seeds(sel.seed, n_seeds), problem)
if runs:
    measure, rows = results_section(runs)
    masks_section(runs[0], rounds_done(runs))
    curves_section(runs[0], rounds_done(runs))
    ui_lottery.table_section(runs, rows, measure)
ui_lottery.about()
