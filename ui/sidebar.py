"""The sidebar shared by every page: data set, model, seed and training settings.

Its choices persist across pages (widget keys rendered on every run) and are mirrored in the URL.
``selection()`` hands pages a frozen ``Selection`` they can use as a cache key.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import streamlit as st

from compress_core.catalog import (
    CNN_HEAD,
    KERNELS,
    MAX_CHANNELS,
    MAX_CONV_STAGES,
    MAX_GPT_HEADS,
    MAX_GPT_LAYERS,
    MAX_GPT_WIDTH,
    MAX_HIDDEN_LAYERS,
    MAX_PARAMS,
    MAX_WIDTH,
    MIN_GPT_WIDTH,
    MIN_WIDTH,
    built_architecture,
    data_info,
    list_datasets,
    list_models,
    model_problems,
    param_count,
    parse_model,
)
from compress_core.catalog import REGISTRY as MODELS
from compress_core.settings import TrainConfig, default_train_config
from ui.state import remember, url_value
from ui.uploads import session_uploads, sidebar_section, weights_digest

LR_CHOICES = (3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2)


@dataclass(frozen=True)
class Selection:
    dataset: str
    model: str
    seed: int
    train: TrainConfig
    weights: str = ""  # the digest of this session's uploaded weights, when they are the baseline

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        """(data set, model, seed, training config as sorted JSON, uploaded weights' digest): the cache key of
        everything derived from this selection's baseline (``ui.loaders.baseline_of(key)`` gives the baseline back)."""
        return (self.dataset, self.model, self.seed, json.dumps(self.train.to_dict(), sort_keys=True), self.weights)

    def as_query(self) -> dict[str, str]:
        return {"dataset": self.dataset, "model": self.model, "seed": str(self.seed),
                "epochs": str(self.train.epochs), "lr": str(self.train.lr)}


CUSTOM = {"custom MLP": "mlp", "custom CNN": "cnn", "custom GPT": "gpt"}
ARCH_LABEL = {"mlp": "Hidden widths", "cnn": "Conv stages", "gpt": "Blocks × width, heads"}
ARCH_HELP = {
    "mlp": f"Hidden layer widths, first to last, e.g. 256-128-64: 1 to {MAX_HIDDEN_LAYERS} layers of {MIN_WIDTH} to "
           f"{MAX_WIDTH} units, at most {MAX_PARAMS:,} parameters in all (it trains in seconds).",
    "cnn": f"Conv stages as channels k kernel, e.g. 8k3-16k5: 1 to {MAX_CONV_STAGES} stages of 1 to {MAX_CHANNELS} "
           f"channels, kernel {', '.join(map(str, KERNELS))}; each is followed by ReLU and a 2× max-pool, then "
           f"{' → '.join(map(str, CNN_HEAD))} → classes. At most {MAX_PARAMS:,} parameters.",
    "gpt": f"Transformer blocks x width, then h and the attention heads, e.g. 4x128h4: 1 to {MAX_GPT_LAYERS} blocks, "
           f"a width of {MIN_GPT_WIDTH} to {MAX_GPT_WIDTH} divisible by the heads (1 to {MAX_GPT_HEADS}), at most "
           f"{MAX_PARAMS:,} parameters (the default's 239,000 train in about a minute on one core).",
}


def _pick_of(model: str) -> tuple[str, str]:
    """(the Model selectbox's choice, the sizes text) that show ``model``."""
    family, _, sizes = model.partition(":")
    return (f"custom {family.upper()}", sizes) if sizes else (model, "")


def _set_model(model: str) -> None:
    st.session_state["model"] = model
    st.session_state["model_pick"], sizes = _pick_of(model)
    if sizes:
        st.session_state["arch"] = sizes


def _reset_training_defaults() -> None:
    """When the data set or model changes, start from that pair's own training recipe (a model that cannot be
    built for the new data set is replaced by the first one that can)."""
    ds = st.session_state["dataset"]
    if model_problems(st.session_state.get("model", ""), ds):
        _set_model(list_models(ds)[0])
    cfg = default_train_config(ds, st.session_state["model"])
    st.session_state["epochs"] = cfg.epochs
    st.session_state["lr"] = cfg.lr


def _pick_changed() -> None:
    """A custom family picked: start from sizes of its own (the other family's do not parse)."""
    pick = st.session_state["model_pick"]
    if pick in CUSTOM:
        st.session_state["arch"] = {"mlp": "256-128", "cnn": "8k3-16k3", "gpt": "2x64h4"}[CUSTOM[pick]]
    _model_changed()


def _model_changed() -> None:
    """The Model selectbox or the sizes field changed: a valid architecture becomes the model, else the sidebar
    says why and the previous model stays."""
    pick, ds = st.session_state["model_pick"], st.session_state["dataset"]
    if pick in CUSTOM:
        sizes = "-".join(p for p in st.session_state.get("arch", "").replace(",", " ").replace("-", " ").split())
        st.session_state["arch"] = sizes
        name = f"{CUSTOM[pick]}:{sizes}"
    else:
        name = pick
    problems = model_problems(name, ds)
    st.session_state["arch_problem"] = " ".join(problems)
    if not problems:
        st.session_state["model"] = name
        _reset_training_defaults()


def _describe(model: str, ds: str) -> str:
    if model in MODELS:
        return MODELS[model].description
    arch = parse_model(model)
    info = data_info(ds)
    n = param_count(built_architecture(model, info.input_shape), info)
    if arch.family == "mlp":
        return f"Your MLP: {' → '.join(map(str, arch.hidden))} hidden units, {n:,} parameters."
    if arch.family == "gpt":
        return (f"Your GPT: {arch.layers} transformer blocks {arch.width} wide, {arch.heads} attention heads; "
                f"{n:,} parameters.")
    stages = ", ".join(f"{c} channels × kernel {k}" for c, k in arch.convs)
    return f"Your CNN: {stages}, then {' → '.join(map(str, CNN_HEAD))}; {n:,} parameters."


def render_sidebar() -> Selection:
    """Draw the shared controls and return the current selection."""
    datasets = list_datasets()
    ds = url_value("dataset", "digits", allowed=datasets + list(session_uploads().datasets))
    models = list_models(ds)
    model = url_value("model", models[0], check=lambda v: not model_problems(v, ds))
    if "model_pick" not in st.session_state:
        _set_model(model)
    default = default_train_config(ds, model)
    url_value("seed", 0, cast=int, check=lambda v: 0 <= v <= 9999)
    url_value("epochs", default.epochs, cast=int, check=lambda v: 1 <= v <= 200)
    url_value("lr", default.lr, cast=float, allowed=LR_CHOICES)

    with st.sidebar:
        st.header("Setup")
        st.selectbox("Data set", datasets + list(session_uploads().datasets), key="dataset",
                     on_change=_reset_training_defaults,
                     help="Which task the network learns. The built-in ones come with the app (nothing is "
                          "downloaded); yours are uploaded below.")
        ds = st.session_state["dataset"]
        st.caption(data_info(ds).description)
        picks = list_models(ds) + [c for c, f in CUSTOM.items() if not model_problems(f, ds)]
        if st.session_state["model_pick"] not in picks:
            _set_model(st.session_state["model"])
        st.selectbox("Model", picks, key="model_pick", on_change=_pick_changed,
                     help="The architecture to compress. Only models built for this kind of data are listed; "
                          "'custom' lets you size your own.")
        pick = st.session_state["model_pick"]
        if pick in CUSTOM:
            st.text_input(ARCH_LABEL[CUSTOM[pick]], key="arch",
                          on_change=_model_changed, help=ARCH_HELP[CUSTOM[pick]])
        if st.session_state.get("arch_problem"):
            st.error(f"{st.session_state['arch_problem']} Still using {st.session_state['model']}.")
        st.caption(_describe(st.session_state["model"], ds))
        st.number_input("Seed", min_value=0, max_value=9999, step=1, key="seed",
                        help="Fixes the data split, the initial weights θ0 and the batch order: "
                             "the same seed always gives the same numbers.")
        sidebar_section(switch_to)
        training = st.expander("Training settings", key="sb_training", on_change="rerun")
        if training.open:  # drawn only when open (a first page loads fewer widgets); the values live in the URL
            with training:
                st.slider("Epochs", 1, 200, key="epochs", help="Passes over the training set for the baseline.")
                st.select_slider("Learning rate", LR_CHOICES, key="lr", help="Adam's step size.")
                st.caption(f"Recipe for this pair: {default.epochs} epochs, learning rate {default.lr:g}, "
                           f"batch {default.batch_size}.")
    remember("dataset", "model", "seed", "epochs", "lr")
    ds, model = st.session_state["dataset"], st.session_state["model"]
    train = TrainConfig(**{**default_train_config(ds, model).to_dict(), "epochs": int(st.session_state["epochs"]),
                           "lr": float(st.session_state["lr"])})
    sel = Selection(ds, model, int(st.session_state["seed"]), train, weights_digest(ds, model))
    st.session_state["_selection"] = sel
    return sel


def selection() -> Selection:
    """The selection made by the sidebar in this run (pages call this, never the widgets)."""
    if "_selection" not in st.session_state:
        return render_sidebar()
    return st.session_state["_selection"]


def switch_to(dataset: str, model: str) -> None:
    """Select another data set and model (from a widget callback: before the sidebar is drawn)."""
    st.session_state["dataset"] = dataset
    _set_model(model)
    st.session_state["arch_problem"] = ""
    _reset_training_defaults()


def lesson_switch(sel: Selection, dataset: str, model: str, why: str, key: str) -> None:
    """Where another (data set, model) shows a page's point better: say why, and offer it in one click (the
    button sets the sidebar's selection; every number on the page is then recomputed for it)."""
    if (sel.dataset, sel.model) == (dataset, model):
        return
    st.info(why, icon="💡")
    st.button(f"Switch to {dataset} · {model}", key=key, on_click=switch_to, args=(dataset, model),
              help="Changes the data set and model in the sidebar, for every page.")


def classifier_page(sel: Selection, page: str, why: str, key: str) -> None:
    """Stop a page whose method is built for the classifiers (MLP, CNN) when the language model is selected: say so
    in plain words and why, link the Language models page, where the same ideas are done the transformer way, and
    offer the switch back in one click. Does nothing for a classifier."""
    if data_info(sel.dataset).kind != "text":
        return
    st.info(f"**{page}** works on the classifiers (MLP and CNN), not yet on the language model: {why} The "
            "**Language models** page does this for the GPT.", icon="ℹ️")
    c1, c2 = st.columns(2)
    c1.page_link("app_pages/language_models.py", label="Open Language models", icon="🤖")
    c2.button("Switch to digits · mlp", key=key, on_click=switch_to, args=("digits", "mlp"),
              help="Changes the data set and model in the sidebar, for every page.")
    st.stop()
