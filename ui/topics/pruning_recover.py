"""The Pruning page's recovery views (issue 26): "Which layer broke it?" (``recover.DropDebugger`` on the current
pruned model) and "Meet an accuracy budget" (``recover.prune_budget_search``).

Heavy parts run on the heavy-run pool with progress and Cancel: building the debugger (its per-layer table, its
flipped examples and its revert cache are all filled there, so the object handed to sessions is never changed
after) and the budget search. A toggle's revert is a cheap lookup, cached per set of reverted layers. Every
cached object is shared between sessions: read it, never change it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from compress_core.pruning import PruneSettings
from compress_core.recover import BudgetResult, DropDebugger, Reverted, prune_budget_search
from compress_core.recover.text_flips import changed_characters
from compress_core.viz import recover as viz_recover
from ui import jobs
from ui.memo import Memo
from ui.sidebar import Selection
from ui.state import url_widget

TEXT_WINDOWS = 6  # held-out windows of the GPT whose changed characters are shown (6 × 64 characters)
GPT_WINDOWS = 64  # held-out windows the GPT's debugger and budget search read (it keeps every layer's activations)
BUDGETS_PTS = (0.25, 0.5, 1.0, 2.0, 5.0)
BUDGETS_BITS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)  # the GPT's budget, bits per character
STEPS = (0.05, 0.1, 0.2)
DEBUGGERS, REVERTS, SEARCHES = Memo(8), Memo(256), Memo(16)


def _text(ds) -> bool:
    return ds.kind == "text"


def _examples(ds, split: str):
    """(x, y) of a split: every example of a classifier's, the first ``GPT_WINDOWS`` windows of the GPT's."""
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    return (x[:GPT_WINDOWS], y[:GPT_WINDOWS]) if _text(ds) else (x, y)


@dataclass(frozen=True)
class Debugged:
    """A fully computed debugger with its two ends: every layer back to dense (the baseline) and none (pruned)."""

    dbg: DropDebugger
    base: Reverted
    pruned: Reverted
    flips: tuple = ()  # DropDebugger.flips() (recomputed on every call there): empty on the GPT
    chars: dict | None = None  # the GPT's: recover.text_flips.changed_characters on its first TEXT_WINDOWS windows

    @property
    def language(self) -> bool:
        return self.dbg.language


def debugger(baseline, ds, sel, settings, pruned_model) -> Debugged | None:
    """The drop debugger of the pruned model of ``settings`` against the baseline, on the test split, fully computed
    on the heavy-run pool; None if cancelled."""
    key = (sel.key, settings.to_json())

    def build(report) -> Debugged:
        report(0.05, "running both models")
        x, y = _examples(ds, "test")
        dbg = DropDebugger(baseline.model, pruned_model, x, y)
        report(0.3, "per-layer errors: each layer pruned alone")
        dbg.layers()
        report(0.85, "flipped examples")
        flips = () if dbg.language else tuple(dbg.flips())
        report(0.95, "caching the activations for the toggles")
        # fills the revert cache now, in the worker, not during a session's toggle
        base, pruned = dbg.revert(dbg.units), dbg.revert([])
        chars = changed_characters(base.model, pruned.model, x[:TEXT_WINDOWS], y[:TEXT_WINDOWS]) \
            if dbg.language else None
        return Debugged(dbg, base=base, pruned=pruned, flips=flips, chars=chars)

    return jobs.run(DEBUGGERS, key, build, "Drop debugger: every layer pruned alone", "pr_cancel_debug")


def reverted(sel, settings, d: Debugged, layers: list[str]) -> Reverted:
    """``DropDebugger.revert(layers)``, cached per (selection, settings, set of layers)."""
    chosen = tuple(sorted(layers))
    if not chosen:
        return d.pruned
    return REVERTS.get((sel.key, settings.to_json(), chosen), lambda: d.dbg.revert(chosen))


def layer_table(d: Debugged) -> None:
    """Per layer: sparsity, SQNR alone and accumulated, the output cost alone, and the weight error it removes."""
    dbg = d.dbg
    rows = dbg.layers()
    base_bits = d.base.bits
    cost = ("bits/char added, alone", lambda r: r["only_bits"] - base_bits) if dbg.language else \
        ("points lost, alone", lambda r: -r["only_change_pts"])
    table = pd.DataFrame([{"layer": r["layer"], "sparsity": r["sparsity"],
                           "SQNR alone (dB)": r["only_layer_sqnr_db"],
                           "SQNR accumulated (dB)": r["accumulated_sqnr_db"],
                           cost[0]: cost[1](r), "weight energy pruned": r["prune_rel"]} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "sparsity": st.column_config.NumberColumn(format="percent"),
        "weight energy pruned": st.column_config.NumberColumn(format="percent"),
        "SQNR alone (dB)": st.column_config.NumberColumn(format="%.1f"),
        "SQNR accumulated (dB)": st.column_config.NumberColumn(format="%.1f"),
        cost[0]: st.column_config.NumberColumn(format="%.3f" if dbg.language else "%.2f")})


def layer_figure(d: Debugged):
    return viz_recover.layer_drop_figure(d.dbg.layers(), language=d.language, float_bits=d.base.bits)


def dense_toggles(d: Debugged) -> list[str]:
    """One toggle per weighted layer ("keep this layer dense"); returns the layers switched on."""
    dbg = d.dbg
    cols = st.columns(min(6, len(dbg.units)))
    chosen = []
    for i, unit in enumerate(dbg.units):
        if cols[i % len(cols)].toggle(unit, key=f"pr_dense_{unit}",
                                      help=f"Put {unit} back to the baseline's dense weights."):
            chosen.append(unit)
    return chosen


def revert_metrics(d: Debugged, rev: Reverted) -> None:
    """Baseline, all pruned, and pruned with the chosen layers dense: accuracy on a classifier, bits per character
    (and the next character's accuracy) on the GPT, all on the debugger's test examples."""
    base, pruned = d.base, d.pruned
    m1, m2, m3 = st.columns(3)
    if d.language:
        m1.metric("Bits / char, baseline", f"{base.bits:.3f}")
        m2.metric("Bits / char, pruned", f"{pruned.bits:.3f}", f"{pruned.bits - base.bits:+.3f}",
                  delta_color="inverse")
        m3.metric("Bits / char, chosen layers dense", f"{rev.bits:.3f}", f"{rev.bits - pruned.bits:+.3f} vs pruned",
                  delta_color="inverse", help=f"Next character right: {rev.accuracy:.2%} (pruned "
                                              f"{pruned.accuracy:.2%}), over {rev.n:,} characters.")
    else:
        m1.metric("Accuracy, baseline", f"{base.accuracy:.2%}")
        m2.metric("Accuracy, pruned", f"{pruned.accuracy:.2%}", f"{pruned.change_pts:+.2f} pts")
        m3.metric("Accuracy, chosen layers dense", f"{rev.accuracy:.2%}",
                  f"{100 * (rev.accuracy - pruned.accuracy):+.2f} pts vs pruned",
                  help=f"{rev.lost} of {rev.n} test examples lost against the baseline.")


def flips_table(d: Debugged, class_names) -> None:
    """The flipped examples: true label, both predictions with their probabilities, the first diverging layer."""
    flips = d.flips
    if not flips:
        return
    name = (lambda c: str(class_names[c]))  # noqa: E731
    table = pd.DataFrame([{"test example": r["index"], "true": name(r["label"]),
                           "dense says": f"{name(r['float_pred'])} ({r['float_probs'][r['float_pred']]:.0%})",
                           "pruned says": f"{name(r['variant_pred'])} ({r['variant_probs'][r['variant_pred']]:.0%})",
                           "first diverging layer": r["first_divergence"] or "none above 10 dB",
                           "largest jump": r["largest_jump"]} for r in flips])
    st.dataframe(table, hide_index=True, width="stretch", height=min(400, 38 + 35 * len(table)))


def flips_figure(d: Debugged, ds):
    x, y = _examples(ds, "test")
    return viz_recover.flipped_examples_figure(x.numpy(), ds.kind, list(d.flips), list(ds.class_names),
                                               x_all=x.numpy(), y_all=y.numpy(), compressed="pruned",
                                               reference="dense")


def changed_text(d: Debugged, ds) -> None:
    """The GPT's held-out characters whose top prediction the pruning changed, highlighted in the text."""
    ch = d.chars
    st.markdown(f"**{ch['changed']} of {ch['n']} held-out characters changed their most likely prediction** "
                f"(the first {TEXT_WINDOWS} test windows): {ch['broke']} the dense model got right and the pruned "
                f"one gets wrong, {ch['fixed']} the other way round. Hover a highlighted character for both "
                "predictions.")
    st.html(viz_recover.changed_characters_html(ch, list(ds.class_names), compressed="pruned", reference="dense"))


def explain_debugger(d: Debugged) -> None:
    dbg = d.dbg
    where = (f"the first {dbg.y.shape[0]} held-out test windows ({dbg.n:,} characters)" if dbg.language
             else f"the {dbg.n:,} test examples")
    st.caption(f"Measured on {where}. Top: the signal-to-noise ratio at each layer's output (after its ReLU, where one "
               "follows), in dB: "
               "blue when only that layer is pruned and every other layer keeps its dense weights, red when every "
               "layer is pruned, so its error includes everything upstream. Bottom: what pruning that layer alone "
               "costs at the output. A tall blue bar with a short red one: the layer is fine on its own and suffers "
               "from its inputs; a short blue bar: the layer itself breaks it.")


# ---- Meet an accuracy budget ------------------------------------------------------------------------------------
def budget_controls(text: bool) -> tuple[float, float]:
    c1, c2 = st.columns(2)
    if text:
        budget = url_widget(c1.select_slider, "pr_budget_bits", 0.05, "Budget: most bits per character to add",
                            BUDGETS_BITS, cast=float, allowed=BUDGETS_BITS, format_func=lambda v: f"{v:g} bits",
                            help="The search keeps the mean bits per character over the validation windows within "
                                 "this much of the baseline's, window by window.")
    else:
        budget = url_widget(c1.select_slider, "pr_budget", 1.0, "Budget: most accuracy points to lose",
                            BUDGETS_PTS, cast=float, allowed=BUDGETS_PTS, format_func=lambda v: f"{v:g} pts",
                            help="The search keeps the result within this many points of the baseline on the "
                                 "validation split, counted exactly in examples.")
    step = url_widget(c2.select_slider, "pr_budget_step", 0.1, "Rate step per move", STEPS, cast=float,
                      allowed=STEPS, format_func=lambda v: f"{v:.0%}",
                      help="How much one move of the search lowers or raises a layer's pruning rate.")
    return budget, step


def budget_search(baseline, ds, sel, start: float, budget: float, step: float) -> BudgetResult | None:
    """``prune_budget_search`` from ``start`` per layer, on the heavy-run pool (None if cancelled). The GPT's search
    reads its first ``GPT_WINDOWS`` validation and test windows."""
    key = (sel.key, round(start, 6), budget, step)
    data = replace(ds, x_val=_examples(ds, "val")[0], y_val=_examples(ds, "val")[1],
                   x_test=_examples(ds, "test")[0], y_test=_examples(ds, "test")[1]) if _text(ds) else ds
    names = 2 * max(1, round(1 / step))

    def search(report) -> BudgetResult:
        seen = []

        def step_done(row: dict) -> None:
            seen.append(row)
            cost = f"{row['charged']:+.3f} bits/char" if _text(ds) else f"{row['val_lost']} lost"
            report(min(0.95, len(seen) / (names * 4)), f"move {len(seen)}: {row['action']} {row['layer']} "
                   f"(validation: {cost})")

        report(0.0, "pruning every layer at the start rate")
        return prune_budget_search(baseline.model, data, sparsity=start, budget_pts=budget, step=step,
                                   callback=step_done, unit="bits" if _text(ds) else "points")

    return jobs.run(SEARCHES, key, search, "Budget search: per-layer rates", "pr_cancel_budget")


def budget_metrics(res: BudgetResult, start: float) -> None:
    """The result's size against the float model and the uniform start, and its accuracy on both splits."""
    first = res.steps[0]  # the uniform start: every layer at ``start``
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Size found", f"{res.bytes / 1024:.1f} KB", f"{res.ratio:.2f}× smaller than dense", delta_color="off",
              delta_arrow="off",
              help=f"Dense float32: {res.float_bytes / 1024:.1f} KB. Each layer stored in the smallest of dense, "
                   "bitmask and CSR.")
    state = "within" if first["met"] else "over"
    if res.unit == "bits":
        m2.metric(f"Uniform {start:.0%} (the start)", f"{first['bytes'] / 1024:.1f} KB",
                  f"{state} budget: {first['charged']:+.3f} bits/char", delta_color="off", delta_arrow="off",
                  help=f"Every layer at the start rate: {state} the budget on validation. The size found is "
                       f"{res.bytes / first['bytes']:.2f}× its size.")
        m3.metric("Validation bits / char (searched)", f"{res.val_bpc:.3f}",
                  f"{res.val_bpc - res.float_val_bpc:+.3f}", delta_color="inverse",
                  help=f"Baseline {res.float_val_bpc:.3f} on the same windows: the search meets the budget here.")
        m4.metric("Test bits / char (reported)", f"{res.test_bpc:.3f}", f"{res.test_bpc - res.float_test_bpc:+.3f}",
                  delta_color="inverse",
                  help=f"Baseline {res.float_test_bpc:.3f} on the same windows; the search never saw these.")
        return
    m2.metric(f"Uniform {start:.0%} (the start)", f"{first['bytes'] / 1024:.1f} KB",
              f"{state} budget: {first['val_lost']} lost", delta_color="off", delta_arrow="off",
              help=f"Every layer at the start rate: {state} the budget on validation ({first['val_lost']} of "
                   f"{res.n_val:,} examples lost). The size found is {res.bytes / first['bytes']:.2f}× its size.")
    m3.metric("Validation (searched)", f"{res.val_acc:.2%}", f"{100 * (res.val_acc - res.float_val_acc):+.2f} pts",
              help=f"{res.val_lost} of {res.n_val:,} lost against the baseline: the search meets the budget here.")
    m4.metric("Test (reported)", f"{res.test_acc:.2%}", f"{100 * (res.test_acc - res.float_test_acc):+.2f} pts",
              help=f"{res.test_lost} of {res.n_test:,} lost against the baseline; the search never saw these.")


def budget_verdict(res: BudgetResult) -> None:
    """The honest-comparison rule on the test split, with the budget as tolerance, and the point estimate."""
    point = "within" if res.met_test else "beyond"
    words = res.verdict().rstrip(".") + "."
    if res.unit == "bits":
        detail = f"{res.test_bpc - res.float_test_bpc:+.3f} bits/char; the budget allows {res.budget_pts:g}"
    else:
        detail = (f"{res.test_lost} of {res.n_test:,} lost; the budget allows "
                  f"{math.floor(res.budget_pts * res.n_test / 100)}")
    text = f"**On the test split:** {words} The point estimate alone is {point} the budget ({detail})."
    (st.error if res.test_comparison.outcome == "worse" else st.success)(text, icon="⚖️")


def budget_steps(res: BudgetResult) -> None:
    with st.expander(f"The search, move by move ({len(res.steps)} measurements on validation)"):
        cost = ["charged", "val_bpc"] if res.unit == "bits" else ["val_lost"]
        st.dataframe(pd.DataFrame(list(res.steps))[["action", "layer", "value", *cost, "bytes", "met", "sparsity"]],
                     hide_index=True, width="stretch",
                     column_config={"charged": st.column_config.NumberColumn("bits/char added", format="%+.3f"),
                                    "val_bpc": st.column_config.NumberColumn("bits/char", format="%.3f")})


def explain_budget(res: BudgetResult, text: bool) -> None:
    st.caption("Measured on the validation split, reported on the test split: the search picks rates by what "
               "validation loses, so its own numbers there are optimistic; the test split, never seen by it, "
               "gives the verdict. The search: every layer starts at the uniform rate; while over budget, the layer "
               "the drop debugger ranks most harmful loses one step; once within, the least harmful layers gain "
               "steps while the budget holds. Magnitude pruning per layer, no fine-tuning, whatever the controls "
               "above say."
               + (f" On the GPT: the first {GPT_WINDOWS} validation and test windows, the budget in bits per "
                  "character added to the baseline's (mean over the windows, each window paired with the "
                  "baseline's), the layers ranked by the bits each adds alone." if text else ""))


def which_layer_view(b, ds, sel: Selection, s: PruneSettings, pruned) -> None:
    """Per layer, the error when only it is pruned against accumulated; toggles that put layers back to dense;
    the flipped test examples, drawn as data (the Pruning page's "Which layer broke it?" tab)."""
    text = ds.kind == "text"
    try:
        d = debugger(b, ds, sel, s, pruned)
    except ValueError as e:  # a model the debugger cannot read: say so, keep the page
        st.error(f"The drop debugger cannot read this model: {e}")
        return
    if d is None:  # cancelled
        return
    st.plotly_chart(layer_figure(d), key="pr_drop")
    explain_debugger(d)
    layer_table(d)
    st.markdown("**Keep these layers dense** — each toggle puts that layer's baseline weights back; the numbers "
                "below are recomputed from the layer on (the activations before it are cached).")
    chosen = dense_toggles(d)
    revert_metrics(d, reverted(sel, s, d, chosen))
    if text:
        st.info("The library's flipped examples are for classifiers: the GPT predicts every next character. Here "
                "instead: the held-out characters whose most likely next character changed.", icon="ℹ️")
        changed_text(d, ds)
        return
    st.subheader(f"{len(d.flips)} test examples the pruning flipped")
    if d.flips:
        st.plotly_chart(flips_figure(d, ds), key="pr_flips")
        flips_table(d, ds.class_names)
        st.caption("Each flipped example with its true class, the dense and the pruned prediction with the "
                   "probability each gives it, and the first layer whose activations for this example differ by "
                   "more than 10 % of their energy (SQNR below 10 dB): where it starts to go wrong.")
    else:
        st.success("No test example changed its prediction: the pruned model agrees with the dense one everywhere.")


def budget_view(b, ds, sel: Selection, s: PruneSettings) -> None:
    """The per-layer rates that keep the loss within a budget, searched on validation, reported on test
    (the Pruning page's "Meet an accuracy budget" tab)."""
    text = ds.kind == "text"
    st.markdown("Give a budget: the search finds per-layer pruning rates for the smallest model that "
                + ("adds at most that many bits per character" if text else "loses at most that many points")
                + " — **measured on the validation split, reported on the test split**.")
    points, step = budget_controls(text)
    start = 0.5 if s.granularity == "nm" else s.sparsity
    try:
        res = budget_search(b, ds, sel, start, points, step)
    except ValueError as e:  # impossible settings or a model the search cannot read: say so, keep the page
        st.error(f"Cannot run the budget search: {e}")
        return
    if res is None:  # cancelled
        return
    budget_metrics(res, start)
    budget_verdict(res)
    st.plotly_chart(viz_recover.budget_rates_figure(dict(res.settings), start), key="pr_budget_rates")
    explain_budget(res, text)
    budget_steps(res)
