"""The sidebar shared by every page: data set, model, seed and training settings.

Its choices persist across pages (widget keys rendered on every run) and are mirrored in the URL.
``selection()`` hands pages a frozen ``Selection`` they can use as a cache key.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import streamlit as st

from compress_core.baselines import default_train_config
from compress_core.data import get_spec, list_datasets
from compress_core.models import REGISTRY as MODELS
from compress_core.models import list_models
from compress_core.train import TrainConfig

from .state import remember, url_value

LR_CHOICES = (3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2)


@dataclass(frozen=True)
class Selection:
    dataset: str
    model: str
    seed: int
    train: TrainConfig

    @property
    def key(self) -> tuple[str, str, int, str]:
        """(data set, model, seed, training config as sorted JSON): the cache key of everything derived
        from this selection's baseline (``ui.loaders.baseline_of(key)`` gives the baseline back)."""
        return (self.dataset, self.model, self.seed, json.dumps(self.train.to_dict(), sort_keys=True))

    def as_query(self) -> dict[str, str]:
        return {"dataset": self.dataset, "model": self.model, "seed": str(self.seed),
                "epochs": str(self.train.epochs), "lr": str(self.train.lr)}


def _reset_training_defaults() -> None:
    """When the data set or model changes, start from that pair's own training recipe."""
    ds = st.session_state["dataset"]
    models = list_models(ds)
    if st.session_state.get("model") not in models:
        st.session_state["model"] = models[0]
    cfg = default_train_config(ds, st.session_state["model"])
    st.session_state["epochs"] = cfg.epochs
    st.session_state["lr"] = cfg.lr


def render_sidebar() -> Selection:
    """Draw the shared controls and return the current selection."""
    datasets = list_datasets()
    ds = url_value("dataset", "digits", allowed=datasets)
    models = list_models(ds)
    model = url_value("model", models[0], allowed=models)
    default = default_train_config(ds, model)
    url_value("seed", 0, cast=int, check=lambda v: 0 <= v <= 9999)
    url_value("epochs", default.epochs, cast=int, check=lambda v: 1 <= v <= 200)
    url_value("lr", default.lr, cast=float, allowed=LR_CHOICES)

    with st.sidebar:
        st.header("Setup")
        st.selectbox("Data set", datasets, key="dataset", on_change=_reset_training_defaults,
                     help="Which task the network learns. All data sets are built in: nothing is downloaded.")
        st.caption(get_spec(st.session_state["dataset"]).description)
        st.selectbox("Model", list_models(st.session_state["dataset"]), key="model",
                     on_change=_reset_training_defaults,
                     help="The architecture to compress. Only models built for this kind of data are listed.")
        st.caption(MODELS[st.session_state["model"]].description)
        st.number_input("Seed", min_value=0, max_value=9999, step=1, key="seed",
                        help="Fixes the data split, the initial weights θ0 and the batch order: "
                             "the same seed always gives the same numbers.")
        with st.expander("Training settings"):
            st.slider("Epochs", 1, 200, key="epochs", help="Passes over the training set for the baseline.")
            st.select_slider("Learning rate", LR_CHOICES, key="lr", help="Adam's step size.")
            st.caption(f"Recipe for this pair: {default.epochs} epochs, learning rate {default.lr:g}, "
                       f"batch {default.batch_size}.")
    remember("dataset", "model", "seed", "epochs", "lr")
    sel = Selection(st.session_state["dataset"], st.session_state["model"], int(st.session_state["seed"]),
                    TrainConfig(**{**default_train_config(st.session_state["dataset"], st.session_state["model"])
                                   .to_dict(), "epochs": int(st.session_state["epochs"]),
                                   "lr": float(st.session_state["lr"])}))
    st.session_state["_selection"] = sel
    return sel


def selection() -> Selection:
    """The selection made by the sidebar in this run (pages call this, never the widgets)."""
    if "_selection" not in st.session_state:
        return render_sidebar()
    return st.session_state["_selection"]


def switch_to(dataset: str, model: str) -> None:
    """Select another data set and model (from a widget callback: before the sidebar is drawn)."""
    st.session_state["dataset"], st.session_state["model"] = dataset, model
    _reset_training_defaults()


def lesson_switch(sel: Selection, dataset: str, model: str, why: str, key: str) -> None:
    """Where another (data set, model) shows a page's point better: say why, and offer it in one click (the
    button sets the sidebar's selection; every number on the page is then recomputed for it)."""
    if (sel.dataset, sel.model) == (dataset, model):
        return
    st.info(why, icon="💡")
    st.button(f"Switch to {dataset} · {model}", key=key, on_click=switch_to, args=(dataset, model),
              help="Changes the data set and model in the sidebar, for every page.")
