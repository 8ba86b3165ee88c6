"""Compare: compression recipes side by side — accuracy against size, latency and energy, with the Pareto front.

Variants and their editor: ui.topics.compare; recipes, runs and sweeps: compress_core.experiments; figures:
compress_core.viz.compare.
"""

import pandas as pd
import streamlit as st

from compress_core.experiments import Result, presets_for
from compress_core.viz import compare as viz_compare
from ui.loaders import baseline, dataset
from ui.sidebar import selection
from ui.state import link_list, to_bool, url_widget, view_tabs
from ui.topics import compare as ui_compare
from ui.topics import compare_debug as ui_compare_debug

sel = selection()
ds = dataset(sel.dataset, sel.seed)
lm = ui_compare.is_gpt(sel)  # the language model: every view reads bits per character (lower is better)
PRESETS = presets_for(sel.model)
st.title("⚖️ Compare recipes")
st.markdown("Put compression recipes side by side on the same baseline: prune, fine-tune, distill from the "
            "baseline, quantize or share weights, in any order that makes sense. Each variant is run once and cached; "
            "every number is measured on the test split, with its standard error."
            + (" On the GPT the score is **bits per character** on the held-out text (lower is better), paired "
               "window by window with the float baseline's; costs are per token." if lm else ""))
b = baseline(sel)

# ---- the variants -----------------------------------------------------------------------------------------------
st.header("Variants")
vs = ui_compare.variants(sel)
c1, c2 = st.columns([3, 1])
preset = c1.selectbox("Start a new variant from", list(PRESETS), key="cmp_preset",
                      help="A ready-made recipe; open its panel below to change any step.")
if c2.button("➕ Add variant", key="cmp_add_variant", disabled=len(vs) >= ui_compare.MAX_VARIANTS,
             help=f"At most {ui_compare.MAX_VARIANTS} variants side by side."):
    vs = [*vs, ui_compare.variant(preset, PRESETS[preset](sel.dataset, sel.model).steps)]
vs = ui_compare.editor(sel, vs)
ui_compare.save(vs)
recipes = [ui_compare.recipe_of(sel, v) for v in vs]

outcomes = ui_compare.run_all(recipes)
if outcomes is None:
    st.stop()
for i, o in enumerate(outcomes):
    if isinstance(o, str):
        st.error(f"Variant {i + 1} ({recipes[i].title}) cannot run: {o}")
results: list[Result] = [o for o in outcomes if isinstance(o, Result)]
for r in results:
    for w in r.warnings:
        st.warning(f"{r.title}: {w}")
if not results:
    st.stop()

def runs_view(explored: list) -> None:
    """The runs table and accuracy against stored size, with the Pareto front of every run explored."""
    table = pd.DataFrame([r.row() for r in results]).drop(columns=["hash"])
    num, pct = st.column_config.NumberColumn, st.column_config.NumberColumn(format="percent")
    if lm:
        lm_runs_view(table, explored)
        return
    st.dataframe(table, hide_index=True, width="stretch", key="cmp_table", column_config={
        "test accuracy": pct, "± (s.e.)": pct, "weights kept": pct, "integer accuracy": pct,
        "stored bytes": num(format="localized"), "× smaller": num(format="%.1f×"), "float ms": num(format="%.3f"),
        "shrunk ms": num(format="%.3f"), "integer ms": num(format="%.3f"), "energy µJ": num(format="%.2f"),
        "MACs": num(format="localized"), ".clab bytes": num(format="localized"), ".clab accuracy": pct})
    st.caption(f"Float baseline: {b.test_metrics.accuracy:.2%} on {results[0].n_test} test examples; "
               f"± is the binomial standard error √(p(1−p)/n), so two runs closer than about two of those are not "
               "told apart by this test set. Latency: one inference (batch 1), median of 30, on this server. Click a "
               "column to sort.")
    st.plotly_chart(viz_compare.tradeoff(results, explored, "bytes"), key="cmp_bytes")
    front_caption(explored)


def lm_runs_view(table: pd.DataFrame, explored: list) -> None:
    """The GPT's runs: bits per character with its standard error and the paired change from the float baseline."""
    num, pct = st.column_config.NumberColumn, st.column_config.NumberColumn(format="percent")
    st.dataframe(table, hide_index=True, width="stretch", key="cmp_table", column_config={
        "bits / char": num(format="%.3f"), "± (s.e.)": num(format="%.3f"),
        "Δ bits / char vs float": num(format="%+.3f"),
        "± Δ (paired s.e.)": num(format="%.3f"), "next-char accuracy": pct, "weights kept": pct,
        "stored bytes": num(format="localized"), "× smaller": num(format="%.1f×"), "float ms": num(format="%.3f"),
        "shrunk ms": num(format="%.3f"), "energy µJ": num(format="%.2f"), "MACs / token": num(format="localized")})
    r0 = results[0]
    st.caption(f"Float baseline: {r0.baseline_bpc:.3f} bits per character on {r0.n_test:,} held-out characters "
               f"(lower is better). ± is the standard error over the test windows; Δ is paired window by window "
               "with the float model, so a change is told apart when it exceeds about two of its own ±. Latency: "
               "one context window of tokens (batch 1), median of 30, on this server. The .clab file and the "
               "integer-only engine do not apply to the GPT.")
    st.plotly_chart(viz_compare.tradeoff(results, explored, "bytes"), key="cmp_bytes")
    front_caption(explored)


def front_caption(explored: list) -> None:
    """What the trade-off charts draw: grey points only where runs beyond the variants shown were explored."""
    grey = sum(all(r is not v for v in results) and r.is_lm == lm for r in explored)
    better = "lower in bits per character" if lm else "more accurate"
    front = (f"the dotted line is the Pareto front — no run is both smaller (faster, cheaper) and {better} "
             "than a point on it.")
    if grey:
        st.caption(f"Grey points: the {grey} other run(s) explored in this session, the grid included; {front}")
    else:
        st.caption(f"The coloured points are the variants above; {front} Runs you explore (other settings, the "
                   "grid) stay on the charts as grey points.")


def cost_view(explored: list) -> None:
    """Accuracy against latency and energy, and how size and energy are counted."""
    c1, c2 = st.columns(2)
    c1.plotly_chart(viz_compare.tradeoff(results, explored, "latency"), key="cmp_latency")
    c2.plotly_chart(viz_compare.tradeoff(results, explored, "energy"), key="cmp_energy")
    front_caption(explored)
    ui_compare.counting_explainer(lm)


def boundaries_view() -> None:
    st.plotly_chart(viz_compare.boundaries(results, ds.x_test.numpy(), ds.y_test.numpy(), list(ds.class_names)),
                    key="cmp_boundaries")


def grid_view() -> None:
    """Every sparsity × bit-width combination, computed on demand with progress."""
    if lm:
        st.markdown("Every combination of a magnitude pruning rate (per layer, one-shot, then fine-tuned with Adam "
                    "as the baseline was trained) and a weight bit width (post-training, per channel, weights only: "
                    "activations float): where do bits per character climb?")
    else:
        st.markdown("Every combination of a magnitude pruning rate (per layer, one-shot, then fine-tuned) and a "
                    "weight bit width (post-training, per channel, activations at 8 bits): where does accuracy fall "
                    "off?")
    c1, c2, c3 = st.columns([3, 3, 1])
    sp = url_widget(c1.multiselect, "cmp_grid_sp", [50, 70, 80, 90, 95, 98], "Sparsities (%)", ui_compare.GRID_SPARSITY,
                    cast=link_list, check=lambda v: set(v) <= set(ui_compare.GRID_SPARSITY))
    bits = url_widget(c2.multiselect, "cmp_grid_bits", [8, 6, 4, 3, 2, 1], "Weight bits", ui_compare.GRID_BITS,
                      cast=link_list, check=lambda v: set(v) <= set(ui_compare.GRID_BITS))
    ep = url_widget(c3.number_input, "cmp_grid_ep", 1, "Fine-tune epochs", 0, 5, cast=int,
                    check=lambda v: 0 <= v <= 5)
    if not url_widget(st.toggle, "cmp_grid_on", False, "Compute the grid", cast=to_bool,
                      help="Runs every combination (cached); shows progress."):
        return
    if not sp or not bits:
        st.info("Choose at least one sparsity and one bit width.")
        return
    sp, bits = sorted(sp), sorted(bits, reverse=True)
    cells = ui_compare.run_grid(sel, [s / 100 for s in sp], bits, int(ep))
    if cells is not None:
        acc = [[r.score for r in row] for row in cells]
        size = [[r.bytes for r in row] for row in cells]
        base = cells[0][0].baseline_bpc if lm else b.test_metrics.accuracy
        st.plotly_chart(viz_compare.sweep_heatmap([s / 100 for s in sp], bits, acc, size, base, bpc=lm),
                        key="cmp_grid")


# ---- the results, a tab each: only the open one runs, so editing a variant redraws one view -------------------
explored = list(st.session_state.get("cmp_explored", {}).values())
views = {"Runs": lambda: runs_view(explored), "Latency and energy": lambda: cost_view(explored),
         "Per layer": lambda: ui_compare.layers_view(sel, results)}
if ds.kind == "points":
    views["Decision boundaries"] = boundaries_view
views["Which layer broke it?"] = lambda: ui_compare_debug.debugger_view(results, recipes, outcomes, lm)
views["Accuracy budget"] = lambda: ui_compare_debug.budget_view(results, recipes, outcomes, lm)
views["Sparsity × bit width"] = grid_view
view_tabs("cmp_view", views)  # only the open tab runs

# ---- downloads and uploads ------------------------------------------------------------------------------------
st.header("Download and upload")
c1, c2 = st.columns(2)
c1.download_button("Download runs (CSV)", pd.DataFrame([r.row() for r in results]).to_csv(index=False),
                   "compression-runs.csv", "text/csv", key="cmp_dl_csv")
c2.download_button("Download recipes (JSON)", ui_compare.downloads(sel, vs), "compression-recipes.json",
                   "application/json", key="cmp_dl_json",
                   help="Upload this file back (here or in the CLI: python -m compress_core.experiments FILE) to "
                        "recreate the runs.")
st.file_uploader("Upload recipes (JSON)", type=["json"], key="cmp_upload", on_change=ui_compare.on_upload,
                 help="A file from “Download recipes”, or recipes written by hand. It replaces the variants above.")
kind, msg = st.session_state.get("cmp_upload_msg", ("", ""))
if msg:
    (st.error if kind == "error" else st.success)(msg)
