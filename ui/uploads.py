"""Your own data set and weights, in the sidebar: upload, validate with plain messages, use on every page.

Uploads live in this session only. The session state holds them (``SessionUploads``); the library's registries
hold them weakly, so another session never lists them, and when this session ends they are gone: a finalizer then
drops every cached result derived from them (``Memo.forget``, ``experiments.run.forget``). Nothing is written to
disk (``compress_core.uploads``).
"""
from __future__ import annotations

import weakref
from typing import Callable

import streamlit as st

from compress_core.catalog import UPLOAD_LIMITS as LIMITS
from ui.memo import forget_everywhere

Switch = Callable[[str, str], None]  # switch(dataset, model): select them in the sidebar

SHAPES = {"auto": "detect", "image": "image (square feature count)", "signal": "1-D signal", "features": "features"}


class SessionUploads:
    """This session's uploads (strong references); forgetting them everywhere when the session is dropped."""

    def __init__(self):
        self.datasets: dict[str, object] = {}  # name -> uploads.Upload
        self.weights = None  # uploads.UploadedWeights
        self.pending: tuple[str, bytes, list[str]] | None = None  # a CSV (name, bytes, header) awaiting its label
        names: list[str] = []
        self.names = names
        weakref.finalize(self, _forget_all, names)


def _forget_all(names: list[str]) -> None:
    if not names:
        return
    from compress_core.experiments.run import forget as forget_runs  # here: not on every page's start

    for n in names:  # every Memo of the process (the Quantization page's caches included): this session's keys only
        forget_everywhere(n)
        forget_runs(n)


def session_uploads() -> SessionUploads:
    if "_uploads" not in st.session_state:
        st.session_state["_uploads"] = SessionUploads()
    return st.session_state["_uploads"]


def dataset_label(name: str) -> str:
    up = session_uploads().datasets.get(name)
    return f"yours: {up.filename}" if up is not None else name


def _say(kind: str, text: str) -> None:
    st.session_state["up_msg"] = (kind, text)


def _on_data(switch: Switch) -> None:
    """The data file uploader's callback: an NPZ is read at once; a CSV first asks for its label column."""
    f = st.session_state.get("up_data")
    ups = session_uploads()
    ups.pending = None
    if f is None:
        return
    data = f.getvalue()
    if f.name.lower().endswith(".csv"):
        from compress_core.uploads import csv_columns  # here, not at import: the sidebar draws on every page

        try:
            header = csv_columns(data)  # its sizes checked before pandas reads the header
        except ValueError as e:
            _say("error", f"{f.name}: {e}")
            return
        if len(header) < 2:
            _say("error", f"{f.name}: the CSV needs a header row with feature columns and a label column.")
            return
        ups.pending = (f.name, data, header)
        st.session_state["up_label"] = header[-1]
        _say("info", f"{f.name}: choose the label column, then press “Use this data set”.")
        return
    _accept(f.name, data, None, switch)


def _accept(filename: str, data: bytes, label: str | None, switch: Switch) -> None:
    from compress_core.uploads import read_dataset  # PyTorch: imported when a file arrives, not at start-up

    ups = session_uploads()
    try:
        up = read_dataset(data, filename, label=label, shape_hint=st.session_state.get("up_shape", "auto"))
    except ValueError as e:
        _say("error", f"{filename}: {e}")
        return
    ups.datasets[up.name] = up
    ups.names.append(up.name)
    ups.pending = None
    switch(up.name, "mlp")
    _say("success", f"Now using {up.description[0].lower()}{up.description[1:]}")


def _use_csv(switch: Switch) -> None:
    ups = session_uploads()
    if ups.pending is not None:
        name, data, _ = ups.pending
        _accept(name, data, st.session_state.get("up_label"), switch)


def _on_weights() -> None:
    f = st.session_state.get("up_weights")
    ups = session_uploads()
    if f is None:
        ups.weights = None
        return
    from compress_core.models import build_model
    from compress_core.uploads import check_weights, read_weights, register_weights

    ds, model = st.session_state["dataset"], st.session_state["model"]
    try:
        state = read_weights(f.getvalue(), f.name)
        check_weights(state, build_model(model, ds))
    except ValueError as e:
        ups.weights = None
        _say("error", f"{f.name}: {e}")
        return
    ups.weights = register_weights(state, f.name)
    ups.weights.fits = (ds, model)
    ups.names.append(ups.weights.digest)
    _say("success", f"{f.name}: these weights are now the baseline of {model} on {dataset_label(ds)} on every page.")


def weights_digest(dataset: str, model: str) -> str:
    """The digest of this session's uploaded weights if they fit (data set, model), else ''."""
    w = session_uploads().weights
    return w.digest if w is not None and getattr(w, "fits", None) == (dataset, model) else ""


def sidebar_section(switch: Switch) -> None:
    """The sidebar's “Your own data and weights” expander; ``switch(dataset, model)`` selects an accepted data set
    (the sidebar passes its own ``switch_to``: this module never imports the sidebar, which imports it)."""
    ups = session_uploads()
    # opened by a click and kept open by its key (an ``expanded`` that changed with the uploads would make it a new
    # widget, closed again, hiding the message of a refused file)
    box = st.expander("Your own data and weights", key="sb_uploads", on_change="rerun")
    if not box.open:  # its uploaders are drawn only when open: a first page loads fewer widgets
        return
    with box:
        st.caption(f"Up to {LIMITS['bytes'] // 2 ** 20} MB a file, {LIMITS['rows']:,} rows, {LIMITS['columns']:,} "
                   f"features and {LIMITS['classes']} classes. Uploads stay in this session: nobody else sees them, "
                   "nothing is saved, and they are gone when you close the page.")
        st.file_uploader("Data set (CSV or NPZ)", type=["csv", "npz"], key="up_data",
                         on_change=_on_data, args=(switch,),
                         help="CSV: a header row, numeric feature columns and a label column. NPZ: arrays x and y "
                              "(optionally x_val, y_val, x_test, y_test).")
        st.radio("Inputs are", list(SHAPES), key="up_shape", format_func=SHAPES.get, horizontal=True,
                 help="How to view and model each row: a square number of features can be an image (8×8…), "
                      "a row can be a 1-D signal, anything else is a vector of features (2 features: points).")
        if ups.pending is not None:
            st.selectbox("Label column", ups.pending[2], key="up_label")
            st.button("Use this data set", key="up_use", on_click=_use_csv, args=(switch,))
        st.file_uploader("Weights for the selected model (.pt or .safetensors)", type=["pt", "pth", "safetensors"],
                         key="up_weights", on_change=_on_weights,
                         help="A state_dict saved with torch.save(model.state_dict(), path) or safetensors, for the "
                              "data set and model selected above. Files holding pickled code are refused unread.")
        if ups.weights is not None and not weights_digest(st.session_state["dataset"], st.session_state["model"]):
            fits = getattr(ups.weights, "fits", ("", ""))
            st.caption(f"Your weights fit {fits[1]} on {dataset_label(fits[0])}; this selection uses trained ones.")
        kind, text = st.session_state.get("up_msg", ("", ""))
        if text:
            {"error": st.error, "success": st.success}.get(kind, st.info)(text)
