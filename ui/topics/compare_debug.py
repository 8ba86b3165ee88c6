"""The Compare page's drop debugger ("which layer broke it?") and accuracy-budget search, for one variant of the
runs table.

The variant's compressed network is rebuilt by the library (``experiments.compressed``: the same steps ``run``
measured, shared code) and handed with its float baseline to ``recover.DropDebugger`` on the test split, on the
heavy-run pool (progress, Cancel); the debugger is kept in a ``Memo`` by recipe hash. A toggle per compressed layer
puts it back to float (or dense) and the score after the revert is shown live; reverts are cached too.

The budget search (``recover.budget``) starts from a variant of one post-training Quantize step or
one one-shot magnitude Prune step, on any model (on the GPT the budget is in bits per character), on the pool as
well.

Usage::

    dbg = ui_compare_debug.debugger(recipe)      # None while it computes or once cancelled
    ui_compare_debug.revert_panel(recipe, dbg)
    res = ui_compare_debug.budget(recipe, budget_pts=1.0, margin_pts=0.0)   # or budget_start(recipe): why not
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from compress_core.data import load_dataset
from compress_core.experiments import Recipe, compressed
from compress_core.recover.debugger import DropDebugger, Reverted
from compress_core.viz import recover as viz_recover
from ui import jobs
from ui.memo import Memo
from ui.state import to_bool, url_widget

DEBUGGERS, REVERTS = Memo(4), Memo(256)
MAX_EXAMPLES = 2000  # test examples a classifier's debugger keeps every layer's activations of
MAX_WINDOWS = 128  # the GPT's test windows (64 characters each): "a few hundred, not thousands" (the debugger)


def refusal(recipe: Recipe) -> str | None:
    """Why the debugger cannot take this variant, in plain words, or None."""
    if not recipe.steps:
        return "This variant is the float baseline: nothing is compressed, so no layer can have broken it."
    if any(s.kind == "prune" and s.granularity in ("neuron", "head") for s in recipe.steps):
        return ("Structured pruning cut neurons or heads out, so this variant's layers have other shapes than the "
                "float model's and a float layer cannot be put back in. Debug an unstructured, 2:4, quantized or "
                "shared variant.")
    return None


def _build(recipe: Recipe, report) -> DropDebugger:
    c = compressed(recipe, progress=lambda f, t: report(0.8 * f, f"Rebuilding the variant: {t}"))
    ds = load_dataset(recipe.dataset, seed=recipe.seed)
    n = MAX_WINDOWS if ds.kind == "text" else MAX_EXAMPLES
    report(0.8, "Running the float model and the variant, layer by layer")
    dbg = DropDebugger(c.baseline, c.model, ds.x_test[:n], ds.y_test[:n], batch_size=256)
    report(0.85, "Each layer compressed on its own")
    dbg.layers()  # computed once here, on the pool; the page reads copies
    if dbg.units:
        dbg.revert(dbg.units[-1:])  # fills the cache of each child's input that every revert reuses
    return dbg


def debugger(recipe: Recipe) -> DropDebugger | None:
    """The drop debugger of ``recipe``'s variant against its float baseline (test split), computed on the heavy-run
    pool; None while it computes elsewhere or once cancelled."""
    return jobs.run(DEBUGGERS, ("debugger", recipe.hash()), lambda report: _build(recipe, report),
                    "Debugging the variant", "cmp_dbg_cancel")


def revert(recipe: Recipe, dbg: DropDebugger, layers: tuple[str, ...]) -> Reverted:
    return REVERTS.get((recipe.hash(), layers), lambda: dbg.revert(layers))


def score_words(r: Reverted, lm: bool) -> str:
    """A score in the page's unit: bits per character for the GPT, accuracy for a classifier."""
    return f"{r.bits:.3f} bits/char" if lm else f"{r.accuracy:.2%}"


def table(dbg: DropDebugger, lm: bool) -> pd.DataFrame:
    """The per-layer rows a reader needs: what changed and how much error it brings alone and accumulated. The GPT
    has no accuracy change per layer (it is scored in bits per character), so that column is left out there."""
    cols = ["layer", "compressed", "weight_bits", "sparsity", "only_layer_sqnr_db", "accumulated_sqnr_db",
            "only_output_sqnr_db", *([] if lm else ["only_change_pts"]), "only_bits", "clip_fraction"]
    rows = [{k: r.get(k) for k in cols} for r in dbg.layers()]
    return pd.DataFrame(rows)


@st.fragment
def revert_panel(recipe: Recipe, dbg: DropDebugger, lm: bool) -> None:
    """The per-layer table and chart, and a toggle per compressed layer that puts it back to float: the score after
    the revert, live (a fragment: a toggle reruns only this section)."""
    rows = dbg.layers()
    every = revert(recipe, dbg, tuple(dbg.units))  # every layer float: the float model's own logits
    st.plotly_chart(viz_recover.layer_drop_figure(rows, language=lm, float_bits=every.bits), key="cmp_dbg_chart")
    num = st.column_config.NumberColumn
    st.dataframe(table(dbg, lm), hide_index=True, width="stretch", key="cmp_dbg_table", column_config={
        "only_layer_sqnr_db": num("only this layer: SQNR dB", format="%.1f"),
        "accumulated_sqnr_db": num("accumulated: SQNR dB", format="%.1f"),
        "only_output_sqnr_db": num("output SQNR dB (only this layer)", format="%.1f"),
        "only_change_pts": num("accuracy change, only this layer (pts)", format="%+.2f"),
        "only_bits": num("bits/char, only this layer" if lm else "loss in bits, only this layer", format="%.3f"),
        "sparsity": num(format="percent"), "clip_fraction": num("weights clipped", format="percent")})
    changed = [r["layer"] for r in rows if r["compressed"]]
    st.markdown("**Put layers back to float** (dense and unquantized): the score of the variant with those layers "
                "reverted, on the same test examples.")
    cols = st.columns(min(4, max(1, len(changed))))
    back = tuple(u for i, u in enumerate(changed)
                 if cols[i % len(cols)].toggle(u, key=f"cmp_dbg_rev_{u}", help=f"Put {u} back to float."))
    now = revert(recipe, dbg, back)
    variant = revert(recipe, dbg, ())
    c1, c2, c3 = st.columns(3)
    c1.metric("Float baseline", score_words(every, lm))
    c2.metric("The variant", score_words(variant, lm))
    delta = (now.bits - variant.bits) if lm else 100 * (now.accuracy - variant.accuracy)
    c3.metric(f"With {len(back)} layer(s) reverted", score_words(now, lm),
              f"{delta:+.3f} bits/char" if lm else f"{delta:+.2f} pts", delta_color="inverse" if lm else "normal")
    what = f"{dbg.n:,} test characters ({MAX_WINDOWS} windows)" if lm else f"{dbg.n:,} test examples"
    st.caption(f"Measured on {what}. SQNR = 10·log10(Σx² / Σ(x − x̂)²) at each layer's output: \"only this layer\" "
               "compresses that layer alone (every other float), \"accumulated\" compresses all of them, so the "
               "error a layer inherits shows as the gap between the two bars.")



# ---- the accuracy budget --------------------------------------------------------------------------------------
BUDGETS = Memo(16)
BUDGET_PTS, MARGIN_PTS = [0.25, 0.5, 1.0, 2.0, 5.0], [0.0, 0.25, 0.5]
BUDGET_BITS, MARGIN_BITS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5], [0.0, 0.005, 0.01, 0.02]  # the GPT: bits per character


def budget_start(recipe: Recipe) -> tuple[str, object] | str:
    """Where the budget search starts for this variant: ("quantization", its Quantize step) for one post-training
    quantization step, ("pruning", its Prune step) for one one-shot magnitude prune, or the reason in plain words
    why the search does not apply."""
    steps = recipe.steps
    if len(steps) == 1 and steps[0].kind == "quantize" and steps[0].mode == "ptq":
        return "quantization", steps[0]
    if len(steps) == 1 and steps[0].kind == "prune":
        s = steps[0]
        if s.granularity == "weight" and s.criterion == "magnitude" and s.schedule == "one-shot" \
                and s.finetune_epochs == 0:
            return "pruning", s
    what = ("one post-training Quantize step (mixed precision, layers back to float) or one one-shot magnitude "
            "pruning step without fine-tuning (per-layer rates)")
    return (f"The budget search starts from a variant of {what}: it then finds the smallest model of that kind "
            "within the budget. Add such a variant (e.g. a preset, edited) to search from it.")


def _search(recipe: Recipe, budget_pts: float, margin_pts: float, report):
    """The search from ``recipe``'s one step; on the GPT the budget and margin are in bits per character."""
    from compress_core.baselines import get_baseline
    from compress_core.recover.budget import prune_budget_search, quant_budget_search

    kind, step = budget_start(recipe)
    ds = load_dataset(recipe.dataset, seed=recipe.seed)
    base = get_baseline(recipe.dataset, recipe.model, seed=recipe.seed, train_config=recipe.train,
                        weights=recipe.weights)
    seen = []

    def tick(row: dict) -> None:  # the search's length is not known ahead: the bar creeps towards the end
        seen.append(row)
        report(len(seen) / (len(seen) + 8), f"step {len(seen)}: {row.get('action', '')} {row.get('layer', '')}")

    report(0.0, "Ranking the layers")
    unit = "bits" if recipe.family() == "gpt" else "points"
    if kind == "quantization":
        return quant_budget_search(base.model, ds, step.quant_config(), budget_pts, margin_pts=margin_pts,
                                   calibration_data=ds.x_train[:step.calibration], callback=tick, unit=unit)
    return prune_budget_search(base.model, ds, float(step.sparsity), budget_pts, margin_pts=margin_pts,
                               callback=tick, unit=unit)


def budget(recipe: Recipe, budget_pts: float, margin_pts: float):
    """The smallest model within ``budget_pts`` accuracy points (bits per character on the GPT), searched from this
    variant on the heavy-run pool (``recover.budget``); None while it computes elsewhere or once cancelled."""
    key = ("budget", recipe.hash(), float(budget_pts), float(margin_pts))
    return jobs.run(BUDGETS, key, lambda report: _search(recipe, budget_pts, margin_pts, report),
                    "Searching the smallest model within the budget", "cmp_budget_cancel")


def budget_report(recipe: Recipe, res, lm: bool) -> None:
    """What the search found: size, accuracy on validation and test against the float model, the verdict, and the
    per-layer settings it chose (against the variant's uniform setting it started from)."""
    c1, c2, c3 = st.columns(3)
    c1.metric("Stored bytes", f"{res.bytes:,}", f"{res.ratio:.1f}× smaller than float", delta_color="off")
    met = "met" if res.met_test else "not met"
    verdict = res.verdict().rstrip(".")
    if lm:
        c2.metric("Validation bits / char", f"{res.val_bpc:.3f}", f"{res.val_bpc - res.float_val_bpc:+.3f}",
                  delta_color="inverse")
        c3.metric("Test bits / char", f"{res.test_bpc:.3f}", f"{res.test_bpc - res.float_test_bpc:+.3f}",
                  delta_color="inverse")
        st.markdown(f"**On the test split** (never seen by the search), paired window by window with the float model "
                    f"and the budget of {res.budget_pts:g} bits/char as tolerance: {verdict}. The budget is {met} "
                    f"there ({res.test_bpc - res.float_test_bpc:+.3f} bits/char).")
    else:
        c2.metric("Validation accuracy", f"{res.val_acc:.2%}", f"{100 * (res.val_acc - res.float_val_acc):+.2f} pts")
        c3.metric("Test accuracy", f"{res.test_acc:.2%}", f"{100 * (res.test_acc - res.float_test_acc):+.2f} pts")
        points = f"{res.budget_pts:g} point" + ("" if res.budget_pts == 1 else "s")
        st.markdown(f"**On the test split** (never seen by the search), against the float model with the budget of "
                    f"{points} as tolerance: {verdict}. The budget counted in examples is {met} there "
                    f"({res.test_lost} lost of {res.n_test:,}).")
    _, step = budget_start(recipe)
    rate = res.kind != "quantization"
    start = float(step.sparsity) if rate else step.weight_bits
    st.plotly_chart(viz_recover.budget_rates_figure(dict(res.settings), start, unit="rate" if rate else "bits"),
                    key="cmp_budget_chart")
    what = "pruning rate" if rate else "weight bits (32 = back to float)"
    st.dataframe(pd.DataFrame([{"layer": k, what: v} for k, v in res.settings]), hide_index=True,
                 key="cmp_budget_settings")
    st.caption(f"The search measured {len(res.steps)} candidates on the validation split ({res.n_val:,} "
               f"{'characters' if lm else 'examples'}), most harmful layers first as the drop debugger ranks them"
               + (" (by the bits per character each adds alone, on the first validation windows)." if lm else "."))


def _pick_variant(results: list, recipes: list[Recipe], outcomes: list, key: str) -> Recipe:
    """A variant picked from the runs table (``results``), as its recipe (``outcomes[i]`` is ``recipes[i]``'s run)."""
    pick = st.selectbox("Variant", range(len(results)), format_func=lambda i: f"{i + 1}. {results[i].title}",
                        key=key)
    return recipes[next(i for i, o in enumerate(outcomes) if o is results[pick])]


def debugger_view(results: list, recipes: list[Recipe], outcomes: list, lm: bool) -> None:
    """Which layer broke it: the drop debugger on one variant, with a revert toggle per compressed layer."""
    st.markdown("Pick a variant: its compressed network is rebuilt and compared with the float baseline layer by "
                "layer — the error each layer brings when only it is compressed, against the error accumulated up to "
                "it — and any layer can be put back to float to see what it costs.")
    recipe = _pick_variant(results, recipes, outcomes, "cmp_dbg_of")
    why = refusal(recipe)
    if why:
        st.info(why)
        return
    if not url_widget(st.toggle, "cmp_dbg_on", False, "Run the drop debugger", cast=to_bool,
                      help="Rebuilds the variant (cached) and runs both models layer by layer; shows progress."):
        return
    dbg = debugger(recipe)
    if dbg is not None:
        revert_panel(recipe, dbg, lm)


def budget_view(results: list, recipes: list[Recipe], outcomes: list, lm: bool) -> None:
    """The smallest model within an accuracy budget, searched from one variant (recover.budget)."""
    st.markdown(("Give a budget — the most bits per character you accept to add" if lm else
                 "Give a budget — the most accuracy points you accept to lose")
                + " — and the search finds the smallest "
                "model of a variant's kind within it: the most harmful layers (as the drop debugger ranks them) get "
                "more bits, go back to float or are pruned less, on the validation split; the test split judges.")
    recipe = _pick_variant(results, recipes, outcomes, "cmp_budget_of")
    start = budget_start(recipe)
    if isinstance(start, str):
        st.info(start)
        return
    c1, c2 = st.columns(2)
    if lm:
        pts = url_widget(c1.select_slider, "cmp_budget_bits", 0.05, "Budget (bits per character)",
                         options=BUDGET_BITS, cast=float, allowed=BUDGET_BITS,
                         help="The most bits per character the result may add to float's, on average over the "
                              "windows.")
        margin = url_widget(c2.select_slider, "cmp_budget_margin_bits", 0.0, "Safety margin (bits per character)",
                            options=MARGIN_BITS, cast=float, allowed=MARGIN_BITS,
                            help="The search holds itself to budget − margin on the validation split.")
    else:
        pts = url_widget(c1.select_slider, "cmp_budget_pts", 1.0, "Budget (accuracy points)",
                         options=BUDGET_PTS, cast=float, allowed=BUDGET_PTS,
                         help="The most accuracy points the result may lose against float.")
        margin = url_widget(c2.select_slider, "cmp_budget_margin", 0.0, "Safety margin (points)",
                            options=MARGIN_PTS, cast=float, allowed=MARGIN_PTS,
                            help="The search holds itself to budget − margin on the validation split.")
    if margin > pts:
        st.info("The safety margin must not exceed the budget.")
        return
    if not url_widget(st.toggle, "cmp_budget_on", False, "Search", cast=to_bool,
                      help="Runs the search on the heavy-run pool (progress, Cancel); cached."):
        return
    res = budget(recipe, pts, margin)
    if res is not None:
        budget_report(recipe, res, lm)
