"""Streamlit glue of the Language models page: the shared calibration, every variant's scores on the heavy-run
pool (memoized per selection and setting, so a control move over results already computed is a lookup), the
smoothing and outlier views, generated text, and the words that state each comparison.

Every object kept here is shared by every session: read it, never change it (``lm.build`` copies the model).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from compress_core import lm
from compress_core.lm import published
from ui import jobs
from ui.loaders import baseline_of
from ui.memo import Memo

# calibrations hold every layer's input rows (about 30 MB for the default GPT): few of them
FLOAT_MODELS, CALIBRATIONS, SCORES, VIEWS, TEXTS, OUTLIERS = Memo(8), Memo(4), Memo(96), Memo(64), Memo(64), Memo(8)

WEIGHT_BITS = (2, 3, 4, 8)
GROUPS = {"32": "32 columns", "64": "64 columns", "128": "128 columns", "ch": "per output channel"}
PRUNE_TARGETS = {"50": "50 % (unstructured)", "60": "60 %", "70": "70 %", "2_4": "2:4 (semi-structured)",
                 "4_8": "4:8"}
KV_BITS = (8, 4, 2)
SAMPLE_KEYS = ("float", "rtn_w2_g128", "gptq_w2_g128", "rtn_w3_g128", "gptq_w3_g128", "awq_w3_g128",
               "w8a8_per_tensor", "magnitude_2_4", "wanda_2_4", "sparsegpt_2_4", "magnitude_70", "sparsegpt_70",
               "kv2", "kv2_token")


def float_model(sel):
    """The selection's trained float GPT, one shared instance (read-only: every variant is built as a copy)."""
    return FLOAT_MODELS.get(sel.key, lambda: baseline_of(sel).model.eval())


def calibration(sel, ds) -> lm.Calibration:
    """Every Linear layer's input rows on ``lm.CALIB_WINDOWS`` training windows: captured once per selection and
    shared by every method and every session."""
    return CALIBRATIONS.get(sel.key, lambda: lm.calibrate(float_model(sel), ds, seed=sel.seed))


def scores(sel, ds, keys: tuple[str, ...], label: str, cancel_key: str) -> dict | None:
    """``lm.scores`` of ``keys`` on the heavy-run pool (progress and Cancel on the page); None if cancelled."""
    model = float_model(sel)  # the calibration is captured on the pool too, the first time (a few seconds)
    return jobs.run(SCORES, (sel.key, keys), lambda report: lm.scores(model, ds, keys, calibration(sel, ds), report),
                    label, cancel_key)


def objectives(sel, ds, bits: int, group: int | str) -> list[dict] | None:
    calib = calibration(sel, ds)
    return jobs.run(VIEWS, (sel.key, "objectives", bits, group),
                    lambda report: lm.layer_objectives(float_model(sel), calib, bits, group),
                    f"Layer-wise errors at {bits} bits", "lm_cancel_obj")


def smoothing(sel, ds, layer: str, alpha: float) -> dict:
    return VIEWS.get((sel.key, "smooth", layer, alpha),
                     lambda: lm.smoothing_view(float_model(sel), calibration(sel, ds), layer, alpha))


def outliers(sel, ds) -> list[dict]:
    return OUTLIERS.get(sel.key, lambda: lm.outlier_table(calibration(sel, ds).rows))


def channel_magnitudes(sel, ds, layer: str):
    return VIEWS.get((sel.key, "mags", layer),
                     lambda: lm.channel_magnitudes(calibration(sel, ds).rows[layer]).numpy())


def samples(sel, ds, keys: tuple[str, ...], prompt: str, n_chars: int, temperature: float, seed: int) -> dict | None:
    calib = calibration(sel, ds)
    return jobs.run(TEXTS, (sel.key, keys, prompt, n_chars, temperature, seed), lambda report: lm.samples(
        float_model(sel), ds, keys, calib, prompt, n_chars, temperature, seed), "Writing text", "lm_cancel_text")


def verdict(res: dict, a: str, b: str) -> str:
    """One sentence comparing variant ``a`` with ``b`` (both scored on the same windows) by the honest-comparison
    rule: a difference counts only beyond two standard errors."""
    outcome = lm.compare(res[a], res[b])
    d = res[a].bpc - res[b].bpc
    if outcome == "no difference":
        return (f"**{lm.label(a)}** and **{lm.label(b)}** differ by {d:+.4f} bits per character: **within the "
                "noise** (under two standard errors).")
    better, worse = (a, b) if outcome == "a" else (b, a)
    return (f"**{lm.label(better)}** is **{abs(d):.4f} bits per character lower** than **{lm.label(worse)}**, beyond "
            "two standard errors: a real difference on these held-out windows.")


def outlier_words(table: list[dict], res: dict, params: int) -> str:
    """What this model's activations show, in numbers: the largest channel against the median, the channels past
    ``lm.OUTLIER_RATIO``× and what per-tensor 8-bit activations cost (by the two-standard-error rule), computed
    from ``table`` and ``res`` for a model of ``params`` parameters."""
    worst = max(table, key=lambda r: r["ratio"])
    n = sum(r["outliers"] for r in table)
    s = res["w8a8_per_tensor"]
    cost = (f"costs {s.diff:+.4f} ± {s.diff_se:.4f} bits per character, "
            + ("within the noise of float32" if s.outcome == "no difference" else "beyond two standard errors"))
    if n == 0:
        return (f"On this GPT the largest input channel of any layer is **{worst['ratio']:.1f}× its median** "
                f"({worst['layer']}), and no channel passes {lm.OUTLIER_RATIO:g}×: **no outlier features**. One 8-bit "
                f"scale per tensor {cost}. Outlier features emerge in language models of billions of parameters "
                f"(Dettmers et al. 2022); this one has {params:,}.")
    return (f"**{n} input channels** pass {lm.OUTLIER_RATIO:g}× their layer's median (the largest: "
            f"{worst['ratio']:.1f}× in {worst['layer']}); one 8-bit scale per tensor {cost}.")


def wanda_words(res: dict, keys: tuple[str, str, str], table: list[dict]) -> str:
    """Whether Wanda's published lead over magnitude pruning shows on this model, by the honest-comparison rule,
    with the outlier explanation only where the measured channels support it."""
    magnitude, wanda = keys[0], keys[1]
    outcome = lm.compare(res[wanda], res[magnitude])
    ratio = max(r["ratio"] for r in table)
    if outcome == "a":
        return "As published, Wanda is below magnitude pruning here too."
    said = "within the noise of" if outcome == "no difference" else "above"
    why = (f" Wanda's edge comes from a few input channels with very large activations, which make |W| alone a poor "
           f"guide; this GPT's largest channel is only {ratio:.1f}× its layer's median (the Outliers tab), so "
           "weighting by ‖X‖ changes little." if ratio < lm.OUTLIER_RATIO else
           f" This GPT does have channels up to {ratio:.1f}× their layer's median (the Outliers tab), so the reason "
           "lies elsewhere: compare at other sparsities, or with more calibration windows.")
    return (f"Published (Sun et al. 2024), Wanda is far below magnitude pruning on LLaMA; here it is {said} it."
            + why + " The model was not tuned to make the published ordering appear.")


def float_words(res: dict, key: str) -> str:
    s, ref = res[key], res["float"]
    rel = "no different from" if s.outcome == "no difference" else ("above" if s.diff > 0 else "below")
    return (f"{lm.label(key)}: {s.bpc:.4f} bits/char, {s.diff:+.4f} ± {s.diff_se:.4f} from float32 "
            f"({ref.bpc:.4f}) — {rel} it")


def scores_table(res: dict) -> None:
    rows = [dict(variant=lm.label(k), **{"bits / char": s.bpc, "± s.e.": s.se, "vs float32": s.diff,
                                         "± s.e. (paired)": s.diff_se, "verdict": s.outcome if k != "float" else ""})
            for k, s in res.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("bits / char", "± s.e.", "vs float32", "± s.e. (paired)")})


def published_table(kind: str) -> None:
    """The published figures beside ours, labelled as such."""
    pub = published.PRUNING if kind == "prune" else published.WEIGHT_ONLY
    names = {"magnitude": "magnitude", "wanda": "Wanda", "sparsegpt": "SparseGPT", "rtn": "RTN", "gptq": "GPTQ"}
    rows = [dict(setting="dense / FP16", **{"perplexity": pub["dense"]}, method="—")]
    for setting, vals in pub["rows"]:
        rows += [dict(setting=setting, method=names[m], perplexity=v) for m, v in vals.items()]
    st.caption(f"Published, not measured here — {pub['citation']}. Perplexity of a 7-billion-parameter model "
               "(lower is better): compare the ordering of the methods, not the digits.")
    st.dataframe(pd.DataFrame(rows)[["setting", "method", "perplexity"]], hide_index=True, width="stretch",
                 column_config={"perplexity": st.column_config.NumberColumn(format="%.2f")})
