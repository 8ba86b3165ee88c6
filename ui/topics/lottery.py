"""Lottery-ticket runs for the page: a background job that keeps training while the page reruns, reports its
progress, and stops between training evaluations when asked; plus cached loading of finished runs.

Also the page's Streamlit pieces: the Run / Stop callbacks, the progress bar, the choice of runs to show, and
what the papers found.

The job lives in ``st.session_state`` (one per browser session). Its thread only calls ``compress_core``
(never Streamlit); the page polls ``job.progress`` and draws the bar. Pressing Stop sets ``job.stop``, which
``run_seeds`` polls at each evaluation: the round in progress is dropped, finished rounds are kept (and
cached on disk, so pressing Run again resumes).
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import streamlit as st

from compress_core.lottery import LotteryConfig, LotteryRun, Progress, Verdict, cache_paths, load_run, run_seeds
from compress_core.lottery.report import comparison_rows, plan, rounds_done, table_rows
from compress_core.viz import lottery as viz_lottery
from ui import jobs
from ui.explain import explainer, published
from ui.state import url_widget

SCOPE = {"layer": "per layer", "global": "global"}
REWIND = {"init": "θ0 (initial weights)", "early": "θk (after k iterations)"}
RATE_MODE = {"rate": "rate per round", "target": "target % remaining"}
CONTROL_LABELS = {
    "reinit": ("random re-init", True,
               "The ticket's mask on fresh random weights: does the initialization matter?"),
    "random_mask": ("random mask", True,
                    "As many weights per layer, chosen at random, on the rewind weights: does the mask matter?"),
    "oneshot": ("one-shot", False,
                "The trained dense network pruned once to the same sparsity: does iterating matter?"),
}


def intro() -> None:
    """The claim and how a ticket is found, above the settings."""
    st.markdown(
        "**The claim** (Frankle & Carbin 2019): a randomly initialized network contains a subnetwork — a mask over "
        "its *initial* weights — that, trained alone for at most as long, reaches the accuracy of the whole network "
        "with a fraction of the weights, and learns faster. **How it is found:** train, remove the smallest weights, "
        "reset the survivors to their initial values, repeat. The controls tell whether it is the mask or the "
        "initial values that matter.")


class Job:
    """One background run of ``config`` over ``seeds``, on the heavy-run pool (``ui.jobs``): it may wait in
    the queue for a free worker before it starts."""

    def __init__(self, config: LotteryConfig, seeds: Sequence[int]):
        self.config, self.seeds = config, tuple(seeds)
        self.stop = threading.Event()
        self.progress: Progress | None = None
        self.runs: list[LotteryRun] = []
        self.error: str | None = None
        self.task: jobs.Task | None = None

    def start(self) -> "Job":
        # its own key: two sessions with the same settings each get their own job (their own Stop button)
        self.task = jobs.POOL.submit(("lottery", id(self)), lambda report: self._work(), "Lottery tickets",
                                     jobs.session_id())
        return self

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done

    def queued_behind(self) -> int:
        """How many heavy runs are ahead of this one in the queue (0 once it runs)."""
        return max(0, jobs.POOL.position(self.task) - 1) if self.task is not None and not self.done else 0

    def cancel(self) -> None:
        self.stop.set()
        if self.task is not None:
            jobs.POOL.cancel(self.task, jobs.session_id())  # a job still in the queue never starts

    def _on_progress(self, p: Progress) -> None:
        self.progress = p

    def _work(self) -> None:
        try:
            run_seeds(self.config, self.seeds, progress=self._on_progress, should_stop=self.stop.is_set,
                      on_run=self.runs.append)
        except ValueError as e:  # settings that only fail against the data: shown in plain words
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 -- reported on the page instead of killing the thread silently
            self.error = f"The run failed: {type(e).__name__}: {e}"

    @property
    def stopped(self) -> bool:
        return self.stop.is_set() or any(r.stopped for r in self.runs)

    def matches(self, config: LotteryConfig, seeds: Sequence[int]) -> bool:
        return self.config == config and self.seeds == tuple(seeds)


@st.cache_resource(show_spinner=False, max_entries=64)
def _load(config_json: str, mtime: float) -> LotteryRun | None:
    return load_run(LotteryConfig.from_dict(json.loads(config_json)))


def cached_runs(config: LotteryConfig, seeds: Sequence[int]) -> list[LotteryRun]:
    """Runs of these settings found in the disk cache, seed by seed, up to the first seed not run yet.

    Shared between sessions and reruns (keyed by the file's modification time): never change them in place.
    """
    out = []
    for s in seeds:
        cfg = config.with_seed(s)
        path: Path = cache_paths(cfg, None)[0]
        if not path.exists():
            break
        run = _load(json.dumps(cfg.to_dict(), sort_keys=True), path.stat().st_mtime)
        if run is None:
            break
        out.append(run)
        if not run.complete:
            break
    return out


def start(config: LotteryConfig | None, seeds: Sequence[int]) -> None:
    """Run button callback: a new background job for these settings."""
    if config is not None:
        st.session_state["lt_job"] = Job(config, seeds).start()


def stop() -> None:
    """Stop button callback: the job stops at its next evaluation."""
    job = st.session_state.get("lt_job")
    if job is not None:
        job.cancel()


def plan_caption(slot, config: LotteryConfig) -> None:
    """What these settings will do (``lottery.report.plan``), in one line under the controls."""
    p = plan(config)
    slot.caption(f"**Rate:** {p.rate:.1%} of the survivors per round"
                 + (f" (output layer {p.output_rate:.1%})" if p.output_rate is not None else "")
                 + f" · after {config.rounds} rounds about {p.remaining_percent:.1f} % of the weights are "
                 f"left · {p.trainings_per_seed} trainings per seed.")


def round_slider(slot, key: str, lowest: int, done: int, label: str, help: str) -> int:
    """A round slider seeded from the link, kept within the rounds finished so far (latest by default)."""
    if key in st.session_state and not lowest <= st.session_state[key] <= done:
        st.session_state[key] = done
    return url_widget(slot.slider, key, done, label, lowest, done, cast=int, check=lambda x: lowest <= x <= done,
                      help=help)


def follow(job: Job) -> None:
    """Draw the job's progress until it ends, then rerun the page (the results appear)."""
    bar = st.progress(0.0, text="Starting…")
    while not job.done:
        p = job.progress
        ahead = job.queued_behind() if p is None else 0
        if ahead or (p is None and not job.stop.is_set() and job.task.state == "queued"):
            bar.progress(0.0, text=f"Queued for a free worker: {ahead} other heavy run(s) ahead of this one "
                                   "(other students' lottery runs, QAT or curves).")
        elif p is not None:
            bar.progress(p.fraction, text=("Stopping after this evaluation… " if job.stop.is_set() else "")
                         + p.message)
        time.sleep(0.4)
    st.rerun()


def shown_runs(config: LotteryConfig, seeds: Sequence[int], job: Job | None) -> list[LotteryRun]:
    """The runs to show for these settings (the job's, or the disk cache's), with a note on where they came from;
    only runs with at least one finished round."""
    if job is not None and job.matches(config, seeds) and job.runs:
        runs = cached_runs(config, seeds) or list(job.runs)
        if job.stopped:
            st.warning(f"Stopped. The {rounds_done(runs)} finished round(s) of {len(runs)} seed(s) are kept and shown "
                       "below; press Run to continue from there.", icon="⏸️")
    else:
        runs = cached_runs(config, seeds)
        if runs and (len(runs) < len(seeds) or not runs[-1].complete):
            st.info(f"Found {sum(r.rounds_done for r in runs)} finished round(s) of these settings in the cache; "
                    "press Run to finish the rest.", icon="💾")
        elif runs:
            st.caption("Loaded from the cache: these settings ran before.")
    return [r for r in runs if r.rounds_done > 0]


def uncertainty(v: Verdict) -> None:
    """Under the verdict: how the uncertainty is computed, and every comparison it rests on with its numbers."""
    st.caption(v.note)
    table = pd.DataFrame(comparison_rows(v))
    if not table.empty:
        st.dataframe(table, hide_index=True, width="stretch", key="lt_compare", column_config={
            c: st.column_config.NumberColumn(format="%.2f")
            for c in ("difference (points)", "± s.e. (points)", "2 s.e. (points)")})


def about() -> None:
    """What the papers found, and the explainer: shown with or without results."""
    st.header("What the papers found")
    left, right = st.columns(2)
    with left:
        published("Frankle & Carbin 2019, *The Lottery Ticket Hypothesis*, LeNet-300-100 on MNIST",
                  "Layer-wise pruning at 20 % per round (output layer 10 %) leaves "
                  + ", ".join(f"{x:g}" for x in viz_lottery.FRANKLE_CARBIN_REMAINING[:10])
                  + "… % of the weights. Winning "
                  "tickets match or beat the dense network down to about **3.6 %** of the weights and learn "
                  "fastest near **21 %**; randomly re-initialized subnetworks degrade much earlier. Frankle et al. "
                  "2020: on larger networks rewinding to θ0 fails, rewinding to an early iteration θk recovers "
                  "tickets.")
    with right:
        published("Greydanus 2020, *Scaling down deep learning* (MNIST-1D), lottery-tickets notebook",
                  "An MLP on MNIST-1D: tickets beat random re-initialization at every sparsity, and at 91 % sparsity "
                  "reach 75.0 / 72.4 % (two trials) against 66.4 / 64.8 % for the dense network.")
        st.plotly_chart(viz_lottery.published_greydanus(), key="lt_published")
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


def table_section(runs: list, rows: list[dict], measure: str) -> None:
    """Section 5: every number of the summary as a table, with CSV and JSON downloads."""
    st.header("5 · All numbers")
    table = pd.DataFrame(table_rows(rows, measure))
    st.dataframe(table.style.format(precision=2), hide_index=True, width="stretch")
    d1, d2 = st.columns(2)
    d1.download_button("Download the table (CSV)", table.to_csv(index=False), file_name="lottery_tickets.csv",
                       mime="text/csv", key="lt_csv")
    d2.download_button("Download the runs (JSON: settings, curves, masks)",
                       json.dumps([r.to_dict() for r in runs]), file_name="lottery_runs.json",
                       mime="application/json", key="lt_json")


def verdict_metrics(v) -> None:
    """The verdict's four numbers (dense, sparsest match, the ticket there ± its difference, speed-up)."""
    vs, n = v.vs_dense, f"1 s.e., {v.n_test:,} test examples"
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Dense accuracy", f"{v.dense_acc:.1f} %",
              help=f"± {vs.b_se:.1f} points ({n}). The dense network retrained from θ0 with this page's recipe, "
                   "exactly as every ticket and control is trained, so it can differ from the baseline shown on the "
                   "other pages (trained with its own recipe).")
    m2.metric("Sparsest match" if v.matched_round else "Best ticket", f"{v.remaining:.1f} % left",
              help="Weights remaining at that round: the sparsest whose ticket is not measurably worse than the "
                   "dense network.")
    m3.metric("Ticket there", f"{v.ticket_acc:.1f} %", f"{vs.diff:+.1f} ± {vs.se:.1f} points",
              delta_color="normal" if vs.real else "off",
              help=f"± {vs.a_se:.1f} points ({n}). The change from the dense network, ± its standard error, is "
                   + ("real (beyond 2 s.e.)." if vs.real else "not measurable (grey)."))
    m4.metric("Learns faster by", f"{v.speedup:.2f}×" if v.speedup else "—",
              help="Dense early-stopping iteration ÷ the ticket's (min. validation loss).")
