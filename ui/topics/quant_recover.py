"""The Quantization page's "Which layer broke it?" and "Meet an accuracy budget" tabs (``which_layer``,
``accuracy_budget``), and the caches under them.

The drop debugger (``compress_core.recover.DropDebugger``) of a quantized result is built once per result (its key,
``ui.topics.quant.result_key``) on the test split and shared between sessions; each set of layers put back to float
is scored once (``revert``, milliseconds on the classifiers) and cached. The accuracy-budget search
(``recover.quant_budget_search``) runs on the heavy-run pool with progress and Cancel, measured on the validation
split, reported on the test split. Every cached object is frozen or read-only: never change one in place.

Usage::

    dbg = ui_quant_recover.debugger(rkey, b.model, res.model, ds)
    r = ui_quant_recover.revert(rkey, dbg, ("conv1",))          # Reverted: accuracy, change_pts, lost, bits
    res = ui_quant_recover.budget(sel, cfg, calib, 0.5)           # BudgetResult, or None while cancelled
    res = ui_quant_recover.budget(sel, cfg, calib, 0.05, "bits")  # the GPT: at most 0.05 bits per character more
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from compress_core.models import weighted_layers
from compress_core.quant import QuantConfig
from compress_core.quant import report as qr
from compress_core.quant.report import QuantSummary
from compress_core.recover import BudgetResult, DropDebugger, Reverted, quant_budget_search
from compress_core.recover.text_flips import changed_characters
from compress_core.viz import recover as viz_recover
from ui import jobs
from ui.loaders import baseline_of, dataset
from ui.memo import Memo
from ui.sidebar import Selection
from ui.state import to_bool, url_widget
from ui.topics import quant as ui_quant

GPT_WINDOWS = 128  # test windows the debugger keeps every layer's activations of, on the GPT
FLIPS_SHOWN = 24
TEXT_WINDOWS = 8  # held-out windows whose changed characters are shown as text on the GPT

# Shared between sessions, keyed by the quantized result's key (its Selection names an upload): never changed.
_DEBUGGERS, _REVERTS, _BUDGETS = Memo(6), Memo(256), Memo(32)  # a GPT debugger keeps ~100 MB of activations


def debugger(rkey: tuple, float_model, qmodel, ds) -> DropDebugger:
    """The drop debugger of the quantized result ``rkey`` on the test split (the first ``GPT_WINDOWS`` windows on
    the GPT); its per-layer rows are computed here too, once. Raises ValueError (plain words)."""
    def compute() -> DropDebugger:
        x, y = ds.x_test, ds.y_test
        if ds.kind == "text":
            x, y = x[:GPT_WINDOWS], y[:GPT_WINDOWS]
        dbg = DropDebugger(float_model, qmodel, x, y)
        dbg.layers()
        return dbg

    return _DEBUGGERS.get(rkey, compute)


def revert(rkey: tuple, dbg: DropDebugger, layers: tuple[str, ...]) -> Reverted:
    """``dbg.revert(layers)``, cached per result and set of layers (in the debugger's layer order)."""
    layers = tuple(u for u in dbg.units if u in set(layers))
    return _REVERTS.get((rkey, layers), lambda: dbg.revert(layers))


def flips(rkey: tuple, dbg: DropDebugger) -> list[dict]:
    """The flipped test examples of the fully quantized model (classifiers), cached with the debugger."""
    return _REVERTS.get((rkey, "flips"), dbg.flips)


def layer_table(rows: list[dict]) -> pd.DataFrame:
    """The debugger's per-layer rows as the page's table: bits, errors in dB, the accuracy change alone, the split."""
    return pd.DataFrame([{
        "layer": r["layer"], "weight bits": r["weight_bits"], "output activation bits": r["act_bits"],
        "SQNR only this layer (dB)": r["only_layer_sqnr_db"], "SQNR accumulated (dB)": r["accumulated_sqnr_db"],
        "accuracy change alone (pts)": r["only_change_pts"], "examples lost alone": r["only_lost"],
        "weight clipping (rel.)": r["clip_rel"], "weight rounding (rel.)": r["round_rel"],
        "weights clipped": r["clip_fraction"]} for r in rows])


def flips_table(rows: list[dict], class_names, shown: int = FLIPS_SHOWN) -> pd.DataFrame:
    """One row per flipped example: its label, both predictions with their probabilities, where it diverges."""
    c = list(class_names)
    return pd.DataFrame([{
        "test example": r["index"], "true": c[r["label"]],
        "float predicts": f"{c[r['float_pred']]} ({r['float_probs'][r['float_pred']]:.0%})",
        "quantized predicts": f"{c[r['variant_pred']]} ({r['variant_probs'][r['variant_pred']]:.0%})",
        "quantized p(true)": r["variant_probs"][r["label"]],
        "first divergent layer": r["first_divergence"] or "none over 10 dB",
        "largest jump": r["largest_jump"]} for r in rows[:shown]])


def flips_figure(rkey: tuple, ds, rows: list[dict]):
    """The flipped examples drawn as data (``viz.recover.flipped_examples_figure``), once per result."""
    x, y = ds.x_test.numpy(), ds.y_test.numpy()
    return _REVERTS.get((rkey, "flips_fig"), lambda: viz_recover.flipped_examples_figure(
        x, ds.kind, rows, list(ds.class_names), limit=FLIPS_SHOWN, x_all=x, y_all=y, compressed="quantized"))


def changed_text(rkey: tuple, float_model, qmodel, ds) -> dict:
    """A language model's held-out characters whose top prediction the quantization changed
    (``recover.text_flips.changed_characters`` on the first ``TEXT_WINDOWS`` test windows), once per result."""
    return _REVERTS.get((rkey, "changed_text"), lambda: changed_characters(
        float_model, qmodel, ds.x_test[:TEXT_WINDOWS], ds.y_test[:TEXT_WINDOWS]))


# ---- the accuracy budget ------------------------------------------------------------------------------------------
def budget(sel: Selection, cfg: QuantConfig, calib_size: int, budget: float,
           unit: str = "points") -> BudgetResult | None:
    """``quant_budget_search`` from the page's setting on the heavy-run pool (progress, Cancel), cached per setting;
    None if this session cancelled it. ``budget`` is in accuracy points, or (``unit="bits"``, the GPT) in bits per
    character. Raises ValueError (plain words)."""
    cfg_json = cfg.to_json()

    def compute(report) -> BudgetResult:
        b, ds = baseline_of(sel), dataset(sel.dataset, sel.seed)
        n_layers = sum(1 for _ in weighted_layers(b.model))
        done = []

        def cb(row: dict) -> None:
            done.append(row)
            what = f"{row['action']} {row['layer']} → {row['value']}".strip() if row["layer"] else row["action"]
            cost = (f"{row['charged']:+.3f} bits/char" if unit == "bits"
                    else f"{row['val_lost']} validation examples lost")
            report(min(0.95, len(done) / (4 * n_layers)), f"step {len(done)}: {what}, {cost}, {row['bytes']:,} bytes")

        return quant_budget_search(b.model, ds, QuantConfig.from_dict(json.loads(cfg_json)), budget,
                                   calibration_data=ds.x_train[:calib_size], callback=cb, unit=unit)

    return jobs.run(_BUDGETS, (sel, cfg_json, calib_size, float(budget), unit), compute,
                    "Accuracy-budget search", "q_cancel_budget")


def budget_settings(res: BudgetResult) -> pd.DataFrame:
    """The result's per-layer weight bits, float written as such."""
    return pd.DataFrame([{"layer": n, "weight bits": "float" if v >= 32 else int(v)} for n, v in res.settings])


def lm_revert_panel(rkey: tuple, dbg: DropDebugger, float_model, qmodel, ds, cols, kept: tuple[str, ...]) -> None:
    """A language model's float switches in bits per character (three metric columns ``cols``), then the held-out
    characters whose top prediction the quantization (``qmodel`` against ``float_model``) changed."""
    r1, r2, r3 = cols
    r, base = revert(rkey, dbg, kept), revert(rkey, dbg, ())
    r1.metric("Float bits / char (these windows)", f"{revert(rkey, dbg, tuple(dbg.units)).bits:.3f}")
    r2.metric("Quantized bits / char (these windows)", f"{base.bits:.3f}")
    r3.metric("With the kept layers in float", f"{r.bits:.3f}", f"{r.bits - base.bits:+.3f}",
              delta_color="inverse")
    st.caption("Bits per character (mean cross-entropy of every next character) on these windows. Flipped "
               "examples are for classifiers: a language model predicts every next character, so there is no "
               "single prediction per example to flip — below instead, the characters whose top prediction "
               "changed.")
    ch = changed_text(rkey, float_model, qmodel, ds)
    st.markdown(f"**{ch['changed']:,} of {ch['n']:,} next-character predictions change** on the first "
                f"{TEXT_WINDOWS} test windows: {ch['broke']} broken (right before, wrong after), {ch['fixed']} fixed.")
    st.html(viz_recover.changed_characters_html(ch, list(ds.class_names), compressed="quantized"))

def budget_panel(res: BudgetResult, uniform_kb: float, uniform: str, se, unit: str) -> None:
    """The budget search's result: test accuracy (bits per character on the GPT), size against the uniform setting
    (``uniform``, ``uniform_kb``), what the search measured on validation, the verdict on test by the
    honest-comparison rule, the per-layer bits. ``se(acc)`` words a test accuracy's standard error; ``unit``:
    "image", "example" or (the GPT) "character"."""
    uniform_bytes = uniform_kb * 1024
    bits = res.unit == "bits"
    v1, v2, v3 = st.columns(3)
    if bits:
        v1.metric("Test bits / char", f"{res.test_bpc:.3f}", f"{res.test_bpc - res.float_test_bpc:+.3f} vs float",
                  delta_color="inverse", help=f"Float {res.float_test_bpc:.3f} on the same windows; lower is better.")
    else:
        v1.metric("Test accuracy", f"{res.test_acc:.2%}",
                  f"{100 * (res.test_acc - res.float_test_acc):+.2f} pts vs float", delta_color="off",
                  help=f"{se(res.test_acc)}; float {res.float_test_acc:.2%}.")
    v2.metric("Size", f"{res.bytes / 1024:.1f} KB", f"{res.bytes / uniform_bytes:.2f}× the uniform setting",
              delta_color="off",
              help=f"Uniform {uniform}: {uniform_kb:.1f} KB; float {res.float_bytes / 1024:.1f} KB.")
    if bits:
        v3.metric("Validation bits / char", f"{res.val_bpc:.3f}", f"{res.val_bpc - res.float_val_bpc:+.3f} vs float",
                  delta_color="inverse", help=f"What the search measured, on the validation windows: float "
                                          f"{res.float_val_bpc:.3f}.")
    else:
        v3.metric("Validation", f"{res.val_acc:.2%}",
                  f"{abs(res.val_lost)} of {res.n_val} {'lost' if res.val_lost >= 0 else 'gained'} vs float",
                  delta_color="off", help=f"What the search measured, on the validation split: float "
                                          f"{res.float_val_acc:.2%}.")
    words = "bits/char" if bits else "points"
    (st.success if res.test_comparison.outcome != "worse" else st.warning)(
        f"**Verdict on the test split** (budget {res.budget_pts:g} {words}): {res.verdict()}.", icon="⚖️")
    st.dataframe(budget_settings(res), hide_index=True)
    start = res.steps[0]
    over = (f"adds {start['charged']:+.3f} bits/char on validation, over the budget" if bits
            else f"loses {start['val_lost']} validation {unit}(s), over the budget")
    where = "validation windows" if bits else f"{res.n_val:,} validation {unit}s"
    tested = (f"{res.test_comparison.windows:,} test windows it never saw, paired window by window with the float "
              f"model" if bits else f"{res.n_test:,} test {unit}s it never saw")
    st.caption(f"The search measured every candidate on the {where} and stopped at the smallest within the budget; "
               f"the result is reported on the {tested}. "
               f"{len(res.steps)} candidates measured. The uniform setting above "
               + ("already meets the budget on validation" if start["met"] else over)
               + ". Sizes: weights at their bit width plus scales, zero points "
               "and biases; float32 for a layer kept in float"
               + (" and for the embeddings and LayerNorms." if bits else "."))


def which_layer(rkey: tuple, res: ui_quant.Quantized, ch: ui_quant.Choices, sel: Selection, ds) -> None:
    """The "Which layer broke it?" tab: the drop debugger of the current quantized model (``rkey``: its result key),
    per-layer errors, keep-in-float switches and the flipped examples."""
    text, unit = ds.kind == "text", qr.test_unit(sel.dataset)
    try:
        dbg = debugger(rkey, ui_quant.reference_model(sel, ch), res.model, ds)
    except ValueError as e:
        st.error(f"The drop debugger cannot read this model: {e}")
        return
    rows = dbg.layers()
    scale = url_widget(st.radio, "q_dbg_scale", "SQNR (dB)", "Error measured as", ["SQNR (dB)", "relative MSE"],
                       allowed=["SQNR (dB)", "relative MSE"], horizontal=True,
                       help="SQNR = 10·log10(Σx² / Σ(x − x̂)²), higher is better; relative MSE = Σ(x − x̂)² / Σx² = "
                            "10^(−SQNR/10), lower is better.")
    st.plotly_chart(viz_recover.error_split_figure(rows, "db" if scale == "SQNR (dB)" else "rel",
                                           title="Error at each layer's output: that layer alone vs all layers"),
                    key="q_dbg_fig")
    st.caption("**Top**: the error at each layer's output (after its ReLU, where one follows) when only that layer "
               "is quantized "
               "(every other layer float), next to the error accumulated up to it when every layer is quantized. "
               "A layer whose own error is small but whose accumulated one is large inherits damage from below. "
               "**Bottom**: that layer's own error, split: weight clipping (weights outside the grid's range) and "
               "weight rounding (inside it), each ÷ Σw², and its output activations' clipping and rounding ÷ Σa². "
               + ("After cross-layer equalization the float reference is the equalized float model (the same "
                  "function, its channels rescaled). " if ch.fixed and ch.fix == "cle_bc" else "")
               + ("Measured on the test split." if not text else
                  f"Measured on the first {len(dbg.y):,} test windows; on the GPT the accuracy is next-character "
                  "accuracy and the examples lost are characters. Its Linear layers quantize their inputs, not "
                  "their outputs: that error is inside 'only this layer'."))
    st.dataframe(layer_table(rows), hide_index=True, width="stretch")
    st.markdown("**Keep a layer in float** — each switch puts that layer back to float (its weights and its "
                "activation grid) and re-scores the model on the same test " + ("windows." if text else "examples."))
    cols = st.columns(min(len(dbg.units), 6))
    kept = tuple(u for i, u in enumerate(dbg.units)
                 if url_widget(cols[i % len(cols)].toggle, f"q_float_{u}", False, u, cast=to_bool,
                               help=f"Keep {u} in float32."))
    r = revert(rkey, dbg, kept)
    base = revert(rkey, dbg, ())
    r1, r2, r3 = st.columns(3)
    if text:
        lm_revert_panel(rkey, dbg, ui_quant.reference_model(sel, ch), res.model, ds, (r1, r2, r3),
                                   kept)
        return
    r1.metric("Float accuracy (test)", f"{dbg.float_accuracy:.2%}")
    r2.metric("Quantized accuracy (test)", f"{base.accuracy:.2%}", f"{base.change_pts:+.2f} pts vs float",
              delta_color="off")
    r3.metric("With the kept layers in float", f"{r.accuracy:.2%}",
              f"{100 * (r.accuracy - base.accuracy):+.2f} pts vs quantized" if kept else None,
              help=f"{qr.se_words(r.accuracy, dbg.n, sel.dataset)}. Kept in float: {', '.join(kept) or 'none'}; "
                   f"{r.lost} test {unit}s lost "
                   "against float (negative: gained).")
    flipped = flips(rkey, dbg)
    st.markdown(f"**{len(flipped)} test {unit}s change their prediction** between the float and the quantized model "
                f"(of {dbg.n:,}).")
    if not flipped:
        return
    st.plotly_chart(flips_figure(rkey, ds, flipped), key="q_flips_fig")
    st.dataframe(flips_table(flipped, ds.class_names), hide_index=True, width="stretch",
                 column_config={"quantized p(true)": st.column_config.NumberColumn(format="percent")})
    st.caption(f"The first {min(len(flipped), FLIPS_SHOWN)} flipped {unit}s: true label, then the float "
               "and the quantized prediction with its probability. The first divergent layer is the first whose "
               "output, for this example, differs from the float model's by more than 10 % of its energy (SQNR "
               "under 10 dB, every layer quantized); the largest jump is where that error grows most.")


def accuracy_budget(sel: Selection, ds, cfg: QuantConfig, ch: ui_quant.Choices, sm: QuantSummary) -> None:
    """The "Meet an accuracy budget" tab: the smallest mixed-precision / partly float model within an accuracy
    budget, on the heavy-run pool."""
    text, unit, n_test = ds.kind == "text", qr.test_unit(sel.dataset), len(ds.y_test)
    if ch.mode != "ptq":
        st.info("The budget search starts from post-training quantization of the settings above; switch the method "
                "to PTQ to run it.", icon="ℹ️")
        return
    if ch.fixed:
        st.caption(f"The search starts from plain round-to-nearest PTQ of these settings, without "
                   f"{ui_quant.FIXES[ch.fix].lower()}.")
    if text:
        amount = url_widget(st.slider, "q_budget_bits", 0.05, "Bits per character you may add", 0.01, 0.5,
                            step=0.01, cast=float, check=lambda v: 0.01 <= v <= 0.5,
                            help="The search keeps the mean bits per character over the validation windows within "
                                 "this much of the float model's, window by window.")
    else:
        amount = url_widget(st.slider, "q_budget", 0.5, "Accuracy you may lose (points)", 0.1, 5.0, step=0.1,
                            cast=float, check=lambda v: 0.1 <= v <= 5.0,
                            help="The search keeps the loss against float within this many points on the "
                                 "validation split.")
    go = url_widget(st.toggle, "q_budget_run", False, "Run the search", cast=to_bool,
                    help="Ranks the layers by the drop debugger, raises or un-quantizes the most harmful first, "
                         "then lowers bits again while the budget holds (seconds on the classifiers, about half a "
                         "minute on the GPT; on the heavy-run pool).")
    if not go:
        st.caption("Measured on the validation split, reported on the test split. Turn on 'Run the search'.")
        return
    try:
        res = budget(sel, cfg, ch.calib, amount, "bits" if text else "points")
    except ValueError as e:
        st.error(f"The budget search cannot run on these settings: {e}")
        return
    if res is None:
        return
    budget_panel(res, sm.kb, qr.describe(cfg), lambda acc: qr.se_words(acc, n_test, sel.dataset),
                 unit)
