"""Streamlit glue for "which layer broke it?" and "meet an accuracy budget" on the Quantization page.

The drop debugger (``compress_core.recover.DropDebugger``) of a quantized result is built once per result (its key,
``ui.topics.quant.result_key``) on the test split and shared between sessions; each set of layers put back to float
is scored once (``revert``, milliseconds on the classifiers) and cached. The accuracy-budget search
(``recover.quant_budget_search``) runs on the heavy-run pool with progress and Cancel, measured on the validation
split, reported on the test split. Every cached object is frozen or read-only: never change one in place.

Usage::

    dbg = ui_recover.debugger(rkey, b.model, res.model, ds)
    r = ui_recover.revert(rkey, dbg, ("conv1",))          # Reverted: accuracy, change_pts, lost, bits
    res = ui_recover.budget(sel, cfg, calib, 0.5)           # BudgetResult, or None while cancelled
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from compress_core.quant import QuantConfig
from compress_core.recover import BudgetResult, DropDebugger, Reverted, quant_budget_search
from compress_core.recover.text_flips import changed_characters
from compress_core.viz import recover as viz_recover
from ui import jobs
from ui.loaders import baseline_of, dataset
from ui.memo import Memo
from ui.sidebar import Selection

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
def budget(sel: Selection, cfg: QuantConfig, calib_size: int, budget_pts: float) -> BudgetResult | None:
    """``quant_budget_search`` from the page's setting on the heavy-run pool (progress, Cancel), cached per setting;
    None if this session cancelled it. Raises ValueError (e.g. on the GPT: the search is for classifiers)."""
    cfg_json = cfg.to_json()

    def compute(report) -> BudgetResult:
        b, ds = baseline_of(sel), dataset(sel.dataset, sel.seed)
        n_layers = len(list(b.model.children()))
        done = []

        def cb(row: dict) -> None:
            done.append(row)
            what = f"{row['action']} {row['layer']} → {row['value']}".strip() if row["layer"] else row["action"]
            report(min(0.95, len(done) / (4 * n_layers)),
                   f"step {len(done)}: {what}, {row['val_lost']} validation examples lost, {row['bytes']:,} bytes")

        return quant_budget_search(b.model, ds, QuantConfig.from_dict(json.loads(cfg_json)), budget_pts,
                                   calibration_data=ds.x_train[:calib_size], callback=cb)

    return jobs.run(_BUDGETS, (sel, cfg_json, calib_size, float(budget_pts)), compute,
                    "Accuracy-budget search", "q_cancel_budget")


def budget_settings(res: BudgetResult) -> pd.DataFrame:
    """The result's per-layer weight bits, float written as such."""
    return pd.DataFrame([{"layer": n, "weight bits": "float" if v >= 32 else int(v)} for n, v in res.settings])


BUDGET_ON_GPT = ("The accuracy-budget search works on the classifiers: it re-quantizes whole Linear/Conv layers at "
                 "other bit widths through the quantizer the GPT's nested layers do not use, and its budgets are "
                 "in accuracy points — a bits-per-character budget is not implemented in the library.")


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
    """The budget search's result: test accuracy, size against the uniform setting (``uniform``, ``uniform_kb``),
    what the search measured on validation, the verdict on test by the honest-comparison rule, the per-layer bits.
    ``se(acc)`` words a test accuracy's standard error; ``unit``: "image" or "example"."""
    uniform_bytes = uniform_kb * 1024
    v1, v2, v3 = st.columns(3)
    v1.metric("Test accuracy", f"{res.test_acc:.2%}", f"{100 * (res.test_acc - res.float_test_acc):+.2f} pts vs float",
              delta_color="off", help=f"{se(res.test_acc)}; float {res.float_test_acc:.2%}.")
    v2.metric("Size", f"{res.bytes / 1024:.1f} KB", f"{res.bytes / uniform_bytes:.2f}× the uniform setting",
              delta_color="off",
              help=f"Uniform {uniform}: {uniform_kb:.1f} KB; float {res.float_bytes / 1024:.1f} KB.")
    v3.metric("Validation", f"{res.val_acc:.2%}",
              f"{abs(res.val_lost)} of {res.n_val} {'lost' if res.val_lost >= 0 else 'gained'} vs float",
              delta_color="off", help=f"What the search measured, on the validation split: float "
                                      f"{res.float_val_acc:.2%}.")
    (st.success if res.test_comparison.outcome != "worse" else st.warning)(
        f"**Verdict on the test split** (budget {res.budget_pts:g} points): {res.verdict()}.", icon="⚖️")
    st.dataframe(budget_settings(res), hide_index=True)
    st.caption(f"The search measured every candidate on the {res.n_val:,} validation {unit}s and stopped at the "
               f"smallest within the budget; the result is reported on the {res.n_test:,} test {unit}s it never saw. "
               f"{len(res.steps)} candidates measured. The uniform setting above "
               + ("already meets the budget on validation"
                  if res.steps[0]["met"] else f"loses {res.steps[0]['val_lost']} validation {unit}(s), over the budget")
               + ". Sizes: weights at their bit width plus scales, zero points "
               "and biases; float32 for a layer kept in float.")
