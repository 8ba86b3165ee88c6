"""The Compare page's glue: the variants (recipes without their baseline) in session state and in the URL, their
editor, running them on the heavy-run pool, the runs explored this session, and recipe uploads.

A variant is {"id", "name", "steps"}; the sidebar's data set, model and seed complete it into a ``Recipe``. The
link carries the variants as compressed JSON (``cmp``), so it reopens the same comparison.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import zlib

import pandas as pd
import streamlit as st

from compress_core.baselines import default_train_config
from compress_core.config import SCOPES, read_json
from compress_core.experiments import (
    ENERGY_PJ,
    ENERGY_SOURCE,
    LEFT_OUT,
    STEPS,
    Recipe,
    Result,
    Step,
    cached,
    dumps,
    grid,
    loads,
    presets_for,
    run,
    sweep,
)
from compress_core.experiments.accounting import GPT_LEFT_OUT
from compress_core.experiments.recipe import TEACHERS, FineTune, Prune, Quantize
from compress_core.quant import METHOD_LABELS
from ui import jobs
from ui.explain import explainer
from ui.memo import Memo
from ui.sidebar import Selection, switch_to

MAX_VARIANTS = 6
# What the link's variants (``cmp``) may hold, each checked before the next step reads them: the text, the JSON it
# unpacks to (a zlib bomb is stopped at this many bytes), that JSON's nesting and lists; then the recipes' own
# limits. The longest real link (6 variants of 6 steps each) is about 3 KB. A forged one is refused in
# milliseconds with at most about 1 MB allocated.
CMP_LIMITS = {"chars": 16_384, "unpacked": 65_536, "depth": 4, "containers": 128, "name_chars": 500}
DEFAULT = ("prune 90 %", "int8", "prune 90 % + int4")
DEFAULT_GPT = ("W4 weight-only", "W8A8", "magnitude 50 % + fine-tune")
GPT_ONLY = {"granularity": ("head",)}  # choices that run on the GPT alone (its attention heads)
CHOICES = {
    "criterion": ("magnitude", "random"), "granularity": ("weight", "neuron", "head", "nm"), "scope": SCOPES,
    "schedule": ("one-shot", "iterative", "gradual"), "optimizer": ("adam", "sgd"), "mode": ("ptq", "qat"),
    "target": ("both", "weights"), "weight_method": tuple(METHOD_LABELS), "act_method": tuple(METHOD_LABELS),
    "teacher": TEACHERS,
}
LABELS = {"weight": "weight (unstructured)", "neuron": "neuron (structured)", "head": "attention head (cut out)",
          "nm": "2:4", "ptq": "post-training",
          "qat": "quantization-aware", "both": "weights + activations", "weights": "weights only",
          "layer": "per layer", "global": "global", "baseline": "the float baseline", **METHOD_LABELS}
INTS = {"rounds": (1, 10), "finetune_epochs": (0, 50), "epochs": (1, 50), "weight_bits": (1, 8), "act_bits": (2, 8),
        "calibration": (1, 100_000), "qat_epochs": (1, 50), "bits": (1, 8), "iters": (1, 500),
        "centroid_epochs": (0, 50)}
FLOATS = {"sparsity": (0.0, 0.99, 0.05, "%.2f"), "output_scale": (0.0, 1.0, 0.25, "%.2f"),
          "T": (0.1, 100.0, 0.5, "%.2f"), "alpha": (0.0, 1.0, 0.05, "%.2f")}  # else a learning rate

GRID_SPARSITY, GRID_BITS = [0, 30, 50, 70, 80, 90, 95, 98], [8, 6, 5, 4, 3, 2, 1]
RUNS, GRIDS = Memo(64), Memo(16)
EXPLORED_MAX = 400


# ---- variants, recipes and the link ------------------------------------------------------------------------
def _new_id() -> int:
    st.session_state["cmp_next_id"] = st.session_state.get("cmp_next_id", 0) + 1
    return st.session_state["cmp_next_id"]


def variant(name: str, steps: tuple[Step, ...]) -> dict:
    return {"id": _new_id(), "name": name, "steps": tuple(steps), "sids": tuple(_new_id() for _ in steps)}


def is_gpt(sel: Selection) -> bool:
    """The selected model is a GPT (the language model): its presets, choices and bits per character."""
    return Recipe(sel.dataset, sel.model).family() == "gpt"


def choices(name: str, gpt: bool) -> tuple:
    """The options of a step's field that run on the selected model (the GPT's attention heads on it alone)."""
    return tuple(o for o in CHOICES[name] if gpt or o not in GPT_ONLY.get(name, ()))


def recipe_of(sel: Selection, v: dict) -> Recipe:
    train = None if sel.train == default_train_config(sel.dataset, sel.model) else sel.train
    return Recipe(sel.dataset, sel.model, sel.seed, steps=v["steps"], train=train, name=v["name"],
                  weights=sel.weights)


def encode(variants: list[dict]) -> str:
    raw = json.dumps([{"name": v["name"], "steps": [s.to_dict() for s in v["steps"]]} for v in variants],
                     separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(zlib.compress(raw.encode(), 9)).decode()


def read_link(text: str) -> list[dict]:
    """The variants' JSON a link carries (``encode``'s output), every size checked before the next step reads it
    (``CMP_LIMITS``); ValueError in plain words for a damaged, hand-edited or forged one."""
    if not isinstance(text, str) or len(text) > CMP_LIMITS["chars"]:
        raise ValueError(f"the link's variants are longer than {CMP_LIMITS['chars']:,} characters, the limit")
    try:
        unpack = zlib.decompressobj()
        raw = unpack.decompress(base64.urlsafe_b64decode(text.encode("ascii")), CMP_LIMITS["unpacked"])
        if unpack.unconsumed_tail:  # more to come than the limit: never unpacked
            raise ValueError(f"they unpack to more than {CMP_LIMITS['unpacked']:,} bytes, the limit")
        if not unpack.eof:
            raise ValueError("they are cut short")
        raw = raw.decode("utf-8")
    except (ValueError, zlib.error) as e:  # binascii.Error and UnicodeError are ValueErrors
        raise ValueError(f"the link's variants cannot be read ({str(e)[:100]})") from None
    try:
        items = read_json(raw, "the link's comparison", max_chars=CMP_LIMITS["unpacked"],
                          max_depth=CMP_LIMITS["depth"], max_containers=CMP_LIMITS["containers"])
    except ValueError as e:
        raise ValueError(str(e).rstrip(".")) from None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_VARIANTS:
        raise ValueError(f"the link must carry 1 to {MAX_VARIANTS} variants")
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ValueError(f"variant {i} is not a mapping")
        if len(str(item.get("name", ""))) > CMP_LIMITS["name_chars"]:
            raise ValueError(f"variant {i}'s name is longer than {CMP_LIMITS['name_chars']} characters")
    return items


def decode(text: str, sel: Selection) -> list[dict]:
    """The variants a link carries (``read_link``), as recipes on the selected baseline; ValueError in plain words
    for a damaged or hand-edited one, naming the variant, step and field."""
    out = []
    for i, item in enumerate(read_link(text), 1):
        try:
            r = loads(json.dumps({"dataset": sel.dataset, "model": sel.model, "seed": sel.seed,
                                  "steps": item.get("steps", []), "name": str(item.get("name", ""))}))[0]
        except ValueError as e:
            raise ValueError(f"variant {i}: {str(e).removeprefix('Recipe 1: ').rstrip('.')}") from None
        out.append(variant(r.name, r.steps))
    return out


def variants(sel: Selection) -> list[dict]:
    """This session's variants: from the link on the first visit (or the defaults), then from session state."""
    if "cmp_variants" not in st.session_state:
        vs = None
        if "cmp" in st.query_params:
            try:
                vs = decode(st.query_params["cmp"], sel)
            except ValueError as e:
                st.warning(f"The comparison in this link could not be opened: {e}. Showing the default variants.")
        presets = presets_for(sel.model)
        st.session_state["cmp_variants"] = vs or [variant(n, presets[n](sel.dataset, sel.model).steps)
                                                  for n in (DEFAULT_GPT if is_gpt(sel) else DEFAULT)]
    vs = []
    for v in st.session_state["cmp_variants"]:  # the sidebar may have changed the model under them
        try:
            recipe_of(sel, v)
            vs.append(v)
        except ValueError as e:
            st.warning(f"The variant “{v['name'] or 'unnamed'}” does not run on {sel.model} and was removed: {e}")
    if not vs:
        presets = presets_for(sel.model)
        vs = [variant(n, presets[n](sel.dataset, sel.model).steps) for n in (DEFAULT_GPT if is_gpt(sel) else DEFAULT)]
    st.session_state["cmp_variants"] = vs
    return vs


def save(vs: list[dict]) -> None:
    st.session_state["cmp_variants"] = vs
    st.query_params["cmp"] = encode(vs)


# ---- the editor --------------------------------------------------------------------------------------------
def _unused(step: Step, sid: int, name: str) -> bool:
    """A field the step's other settings make irrelevant (greyed out, its value kept). The other settings are read
    from their widgets, which hold this run's values."""
    def now(field: str):
        return st.session_state.get(f"cmp_{sid}_{field}", getattr(step, field))

    if step.kind == "quantize":
        return name in ("qat_epochs", "qat_lr", "lsq") and now("mode") != "qat" or \
            name in ("act_bits", "act_method", "calibration") and now("target") == "weights"
    if step.kind == "prune":
        return name == "rounds" and now("schedule") == "one-shot" or \
            name == "finetune_lr" and now("finetune_epochs") == 0 or \
            name == "sparsity" and now("granularity") == "nm"
    return step.kind == "share" and name == "centroid_lr" and now("centroid_epochs") == 0


def _field(col, step: Step, sid: int, f: dataclasses.Field, help_text: str, gpt: bool):
    key = f"cmp_{sid}_{f.name}"
    value = getattr(step, f.name)
    label = f.name.replace("_", " ")
    off = _unused(step, sid, f.name)
    if f.name in CHOICES:
        opts = list(choices(f.name, gpt))
        return col.selectbox(label, opts, index=opts.index(value) if value in opts else 0, key=key, help=help_text,
                             format_func=lambda o: LABELS.get(o, o), disabled=off)
    if isinstance(value, bool):
        return col.toggle(label, value=value, key=key, help=help_text, disabled=off)
    if isinstance(value, int):
        lo, hi = INTS.get(f.name, (0, 1000))
        return int(col.number_input(label, lo, hi, min(max(value, lo), hi), 1, key=key, help=help_text,
                                    disabled=off))
    lo, hi, step_size, fmt = FLOATS.get(f.name, (1e-5, 1.0, 1e-4, "%.4g"))
    return float(col.number_input(label, lo, hi, float(min(max(value, lo), hi)), step_size, format=fmt, key=key,
                                  help=help_text, disabled=off))


def edit_step(step: Step, sid: int, gpt: bool = False) -> Step:
    """The step's fields as widgets (the options that run on the selected model); the edited step (or the old one,
    with the reason shown, if invalid)."""
    helps = type(step).help_text()
    fields = [f for f in dataclasses.fields(step) if f.init]
    cols = st.columns(3)
    values = {f.name: _field(cols[i % 3], step, sid, f, helps[f.name], gpt) for i, f in enumerate(fields)}
    try:
        return type(step)(**values)
    except ValueError as e:
        st.error(f"{step.title}: {e} The previous setting is kept.")
        return step


NAME_CHARS = 40  # a variant's name, at most


def fitted(name: str) -> str:
    """``name`` within ``NAME_CHARS``: a long one keeps its last "(…)" (copy, control) and loses the end of what
    comes before it, marked with an ellipsis: "magnitude 50 % + fine-t… (dense control)"."""
    if len(name) <= NAME_CHARS:
        return name
    head, sep, tail = name.rpartition(" (")
    if not sep or len(tail) + 3 >= NAME_CHARS:
        return name[:NAME_CHARS - 1] + "…"
    return head[:NAME_CHARS - len(tail) - 3] + "… (" + tail


def editor(sel: Selection, vs: list[dict]) -> list[dict]:
    """Every variant in an expander: its name, its steps' fields, add/remove step, duplicate/remove variant."""
    out, gpt = [], is_gpt(sel)
    for i, v in enumerate(vs):
        recipe = recipe_of(sel, v)
        with st.expander(f"**{i + 1}. {v['name'] or 'unnamed'}** — {recipe.describe()}", expanded=False):
            name = st.text_input("Name", v["name"], key=f"cmp_name_{v['id']}", max_chars=NAME_CHARS)
            steps, sids = [], []
            for j, (s, sid) in enumerate(zip(v["steps"], v["sids"])):
                head, drop = st.columns([8, 1])
                head.markdown(f"**Step {j + 1} · {s.title}**")
                if drop.button("✕", key=f"cmp_drop_{sid}", help="Remove this step"):
                    continue
                steps.append(edit_step(s, sid, gpt))
                sids.append(sid)
            c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
            kind = c1.selectbox("Add a step", list(STEPS), key=f"cmp_kind_{v['id']}",
                                format_func=lambda k: STEPS[k].title, label_visibility="collapsed")
            if c2.button("Add step", key=f"cmp_add_{v['id']}"):
                steps, sids = _with_step(steps, sids, STEPS[kind]())
            copy = c3.button("Duplicate", key=f"cmp_dup_{v['id']}", disabled=len(vs) >= MAX_VARIANTS)
            remove = c4.button("Remove variant", key=f"cmp_rm_{v['id']}", disabled=len(vs) == 1)
            control = any(s.kind == "distill" for s in steps) and st.button(
                "Add its control (no teacher)", key=f"cmp_control_{v['id']}", disabled=len(vs) >= MAX_VARIANTS,
                help="A copy with every Distill step at α = 0: the same student trained as long on the labels "
                     "alone. Distillation helped only if it beats this, not just the undistilled variant.")
            new = dict(v, name=name.strip(), steps=tuple(steps), sids=tuple(sids))
            try:
                recipe = recipe_of(sel, new)
            except ValueError as e:
                st.error(f"{e} The previous steps are kept.")
                new = v
            trained = recipe.training_control()
            dense = trained is not None and st.button(
                "Add its dense control (same training)", key=f"cmp_dense_{v['id']}",
                disabled=len(vs) >= MAX_VARIANTS,
                help="The float baseline trained for as many extra epochs, with the same optimizer and learning "
                     "rate, and not compressed. The baseline stops after a few epochs, so more training alone can "
                     "lift it: a variant that trains is better than float only if it beats this control.")
            if not remove:
                out.append(new)
            if copy:
                out.append(variant(fitted(f"{new['name']} (copy)"), new["steps"]))
            if control:
                c = recipe.distill_control()
                out.append(variant(fitted(c.name), c.steps))
            if dense:
                out.append(variant(fitted(trained.name), trained.steps))
    return out


def _with_step(steps: list, sids: list, step: Step) -> tuple[list, list]:
    """Insert a new step before the Quantize/Share that ends the recipe (where every other step must come); a Distill
    step after a QAT step (it then trains the fake-quantized network), at the end."""
    end = next((i for i, s in enumerate(steps) if s.kind in ("quantize", "share")), None)
    qat = end is not None and steps[end].kind == "quantize" and steps[end].mode == "qat"
    at = len(steps) if end is None or step.kind in ("quantize", "share") or (step.kind == "distill" and qat) else end
    return steps[:at] + [step] + steps[at:], sids[:at] + [_new_id()] + sids[at:]


# ---- running -----------------------------------------------------------------------------------------------
def remember_runs(results: list[Result]) -> bool:
    """Add runs to this session's explored set (the Pareto front is drawn over it); True if any was new."""
    explored = st.session_state.setdefault("cmp_explored", {})
    new = False
    for r in results:
        key = Recipe.from_dict(r.recipe).hash()
        new |= key not in explored
        explored[key] = r
    while len(explored) > EXPLORED_MAX:
        explored.pop(next(iter(explored)))
    return new


def run_all(recipes: list[Recipe]) -> list[Result | str] | None:
    """Each recipe's result, or the plain-words reason it cannot run; computed on the heavy-run pool (progress,
    Cancel) unless every one is cached. None if cancelled."""
    if not all(cached(r) is not None for r in recipes):
        def compute(report):
            out = []
            for i, r in enumerate(recipes):
                try:
                    out.append(run(r, progress=lambda f, t, i=i: report((i + f) / len(recipes),
                                                                        f"variant {i + 1}/{len(recipes)}: {t}")))
                except ValueError as e:
                    out.append(str(e))
            return out
        done = jobs.run(RUNS, tuple(r.hash() for r in recipes), compute, "Running the variants", "cmp_cancel")
        if done is None:
            return None
        errors = {i: d for i, d in enumerate(done) if isinstance(d, str)}
    else:
        errors = {}
    # from the cache, each under this session's name for it
    results = [errors[i] if i in errors else run(r) for i, r in enumerate(recipes)]
    remember_runs([r for r in results if isinstance(r, Result)])
    return results


def grid_steps(sel: Selection, epochs: int) -> tuple[Step, ...]:
    """The grid's recipe before its sparsity and bits are set: magnitude pruning per layer, one-shot, fine-tuned,
    then PTQ per channel (weights and 8-bit activations; the GPT: weights only, fine-tuned with Adam as its
    baseline was)."""
    if is_gpt(sel):
        tune = (FineTune(epochs=epochs),) if epochs else ()
        return (Prune(finetune_epochs=0), *tune, Quantize(target="weights"))
    return (Prune(schedule="one-shot", finetune_epochs=epochs), Quantize(weight_bits=4, act_bits=8))


def run_grid(sel: Selection, sparsities: list[float], bits: list[int], epochs: int) -> list[list[Result]] | None:
    """The sparsity × bit-width grid (rows × columns): prune (magnitude, per layer, fine-tuned) then PTQ."""
    base = recipe_of(sel, {"name": "", "steps": grid_steps(sel, epochs)})
    recipes = [dataclasses.replace(r, name=r.describe())
               for r in grid(base, {"prune.sparsity": sparsities, "quantize.weight_bits": bits})]
    key = tuple(r.hash() for r in recipes)
    flat = jobs.run(GRIDS, key, lambda report: sweep(recipes, progress=report), "Computing the grid",
                    "cmp_grid_cancel")
    if flat is None:
        return None
    if remember_runs(flat):  # the charts above were drawn without these runs: draw them again with them
        st.rerun()
    return [flat[i * len(bits):(i + 1) * len(bits)] for i in range(len(sparsities))]


def on_upload() -> None:
    """The file uploader's callback (it runs before the page, so it may switch the sidebar): the uploaded
    recipes replace the variants, or a message says why not and nothing changes."""
    f = st.session_state.get("cmp_upload")
    if f is None:
        return
    st.session_state["cmp_upload_msg"] = ("error", "")
    try:
        recipes = loads(f.getvalue().decode("utf-8"))
    except UnicodeDecodeError:
        st.session_state["cmp_upload_msg"] = ("error", "This file is not text: upload a recipes JSON file, such as "
                                                       "the one “Download recipes” makes.")
        return
    except ValueError as e:
        st.session_state["cmp_upload_msg"] = ("error", f"This file cannot be used: {e}")
        return
    if len(recipes) > MAX_VARIANTS:
        st.session_state["cmp_upload_msg"] = ("error", f"This file holds {len(recipes)} recipes; the page compares "
                                                       f"at most {MAX_VARIANTS}. Nothing was changed.")
        return
    bases = {(r.dataset, r.model, r.seed) for r in recipes}
    if len(bases) > 1:
        st.session_state["cmp_upload_msg"] = ("error", "The recipes in one file must share the data set, model and "
                                                       "seed (one baseline). Nothing was changed.")
        return
    (ds, model, seed), = bases
    note = ""
    if (ds, model, seed) != (st.session_state.get("dataset"), st.session_state.get("model"),
                             st.session_state.get("seed")):
        switch_to(ds, model)
        st.session_state["seed"] = seed
        note = f" The sidebar now shows their baseline: {ds} · {model}, seed {seed}."
    st.session_state["cmp_variants"] = [variant(r.name or r.describe(), r.steps) for r in recipes]
    st.session_state["cmp_upload_msg"] = ("success", f"Loaded {len(recipes)} recipe(s).{note}")


def downloads(sel: Selection, vs: list[dict]) -> str:
    return dumps([recipe_of(sel, v) for v in vs])


@st.fragment
def layers_view(sel: Selection, results: list[Result]) -> None:
    """One variant's per-layer table and its .clab download: a fragment, so choosing another variant reruns only
    this section."""
    num = st.column_config.NumberColumn
    pick = st.selectbox("Variant", range(len(results)), format_func=lambda i: f"{i + 1}. {results[i].title}",
                        key="cmp_layers_of")
    layers = pd.DataFrame(results[pick].layers)
    st.dataframe(layers, hide_index=True, width="stretch", key="cmp_layers", column_config={
        "compute_pj": num("compute pJ", format="%.0f"), "memory_pj": num("memory pJ", format="%.0f"),
        "energy_pj": num("energy pJ", format="%.0f")})
    if results[pick].integer_note:
        st.caption(f"Integer-only inference {results[pick].integer_note}.")
    if results[pick].is_lm:
        st.caption("Rows marked float32 (embedding / LayerNorm) are stored as they are by every recipe; the head "
                   "stores nothing (it reads the token embedding) but costs its multiply-adds. Costs are per token.")
    blob = results[pick].file()
    if results[pick].file_note:
        st.caption(f"The .clab file {results[pick].file_note}.")
    elif blob:
        st.download_button(f"Download {results[pick].title} as a .clab file ({len(blob):,} bytes)", blob,
                           f"{sel.dataset}_{sel.model}_variant{pick + 1}.clab", "application/octet-stream",
                           key="cmp_dl_clab", help="The compressed weights in Han et al.'s storage (relative indices, "
                                                   "codes, Huffman; docs/FORMAT.md): compress_core.export.han_format"
                                                   ".load(bytes) rebuilds the network.")
        st.caption(f"The file holds the weights alone; loaded back (activations in float) it scores "
                   f"{results[pick].file_acc:.2%}.")
    else:
        st.caption("A .clab file stores shared or symmetric-grid weights: this variant keeps float32 values or an "
                   "affine grid, so it has none.")


def counting_explainer(lm: bool = False) -> None:
    """How the Compare page counts size and energy (the accounting's own table and sources)."""
    explainer("How the size and the energy are counted", (
            "**Size.** Each layer stores its surviving weights as float32 values or as b-bit codes, in the smallest "
            "of three layouts for its mask: *dense* (zeros stored), *bitmask* (one keep bit per position) or *CSR* "
            "(column indices and row pointers in the smallest unsigned type). Per-channel scales and zero points, "
            "k-means codebooks and the float32 (or int32) biases are counted too.\n\n"
            f"**Energy per inference** (batch 1), from {ENERGY_SOURCE}: a multiply and an add per surviving weight "
            f"and output position — float32 {ENERGY_PJ['fp32_mult']} + {ENERGY_PJ['fp32_add']} pJ; when weights "
            f"and activations are integers, an 8-bit multiply {ENERGY_PJ['int8_mult']} pJ accumulated by a 32-bit "
            f"integer add {ENERGY_PJ['int32_add']} pJ — and every stored weight byte read once from DRAM "
            f"({ENERGY_PJ['dram_read_32b']:g} pJ per 32 bits; an 8 KB SRAM read costs {ENERGY_PJ['sram_read_32b']:g}"
            f" pJ, which is why fitting on chip matters so much).\n\n**Left out:** {LEFT_OUT}"
            + (f"\n\n**The GPT.** {GPT_LEFT_OUT}" if lm else "")))
