"""Your own weights and data, read safely: every check a clear message, no pickled code ever run.

**Weights** are a ``state_dict`` saved with ``torch.save`` (read with ``torch.load(weights_only=True)``, which
refuses any pickled object that is not a tensor or a plain container, so code inside such a file is never
executed) or a safetensors file (no pickle at all). ``check_weights`` compares them with the architecture and
names the first layer that does not fit.

**Data sets** are CSV (numeric feature columns and a label column) or NPZ (``x``, ``y``, optionally
``x_val``/``y_val`` and ``x_test``/``y_test``; read with ``allow_pickle=False``, member sizes checked before
anything is decompressed). Each rule has its own message naming the row or column. An accepted data set is
registered under a name derived from its content (``upload-<digest>``): ``load_dataset`` then serves it like a
built-in one, for as long as the caller holds the returned ``Upload`` (a weak registry: when the session that
uploaded it ends, it is gone). Nothing is written to disk; results derived from it are not cached on disk either
(``is_uploaded``).

Usage::

    up = read_dataset(csv_bytes, "mine.csv", label="target")     # an Upload; keep a reference to it
    ds = load_dataset(up.name, seed=0)                           # as for any data set
    state = read_weights(pt_bytes, "model.pt"); check_weights(state, build_model("mlp", ds))
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import re
import weakref
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .catalog import UPLOAD_LIMITS

__all__ = ["LIMITS", "Upload", "UploadedWeights", "check_weights", "read_dataset", "read_weights", "register_weights",
           "uploaded_weights", "weights_digest"]

LIMITS = UPLOAD_LIMITS  # what an upload may hold: in the catalog, which the sidebar reads without PyTorch


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def _check_size(data: bytes, what: str) -> None:
    if not data:
        raise ValueError(f"The {what} file is empty.")
    if len(data) > LIMITS["bytes"]:
        raise ValueError(f"The {what} file is {len(data) / 1024 / 1024:.1f} MB; the limit is {_mb(LIMITS['bytes'])}.")


# ---- weights ---------------------------------------------------------------------------------------------------
def read_weights(data: bytes, filename: str = "") -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file (``weights_only=True``) or a safetensors file; ValueError in plain
    words for anything else -- a file with pickled code is refused without running it."""
    _check_size(data, "weights")
    if filename.lower().endswith(".safetensors") or (len(data) > 8 and data[8:9] == b"{"):
        from safetensors import SafetensorError
        from safetensors.torch import load as st_load
        try:
            state = st_load(data)
        except (SafetensorError, Exception) as e:  # noqa: BLE001 -- any damage: the same plain answer
            raise ValueError(f"This safetensors file cannot be read ({str(e)[:120]}): it is damaged or not "
                             "safetensors.") from None
    else:
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            found = re.search(r"unsupported GLOBAL (\S+)", str(e))
            if found is None:  # not a pickle of anything: damaged or another format
                raise ValueError("This is not a readable PyTorch weights file (it is damaged or another format). "
                                 "Upload the file torch.save(model.state_dict(), path) wrote, or a .safetensors "
                                 "file.") from None
            raise ValueError(f"This file holds Python objects other than tensors (it names {found.group(1)}), so "
                             "it was refused and nothing in it was run. Save the weights alone: "
                             "torch.save(model.state_dict(), 'model.pt'), or use safetensors.") from None
        except Exception as e:  # noqa: BLE001 -- a damaged file breaks the (safe) unpickler in many ways
            raise ValueError(f"This is not a readable PyTorch weights file ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120] if str(e) else 'truncated'}). Upload the file "
                             "torch.save(model.state_dict(), path) wrote, or a .safetensors file.") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint: its weights
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("The file does not hold a state_dict (a mapping of parameter names to tensors). Save one "
                         "with torch.save(model.state_dict(), 'model.pt').")
    return {str(k): v.detach().to("cpu", torch.float32) for k, v in state.items()}


def check_weights(state: dict[str, torch.Tensor], model: nn.Module) -> None:
    """ValueError naming the first layer whose weights do not fit ``model`` (missing, extra, wrong shape, not
    finite)."""
    want = model.state_dict()
    for name, t in want.items():
        if name not in state:
            raise ValueError(f"The file has no '{name}' ({'×'.join(map(str, t.shape))}): it was saved from another "
                             f"architecture. This model's parameters: {', '.join(want)}.")
        if tuple(state[name].shape) != tuple(t.shape):
            raise ValueError(f"Layer '{name}' is {'×'.join(map(str, state[name].shape))} in the file but "
                             f"{'×'.join(map(str, t.shape))} in this model: pick the architecture it was trained "
                             "with (a sized model's widths are set in the sidebar).")
        if not torch.isfinite(state[name]).all():
            raise ValueError(f"Layer '{name}' holds NaN or infinite values: the file's model diverged.")
    extra = [k for k in state if k not in want]
    if extra:
        raise ValueError(f"The file has parameters this model does not: {', '.join(extra[:5])}"
                         f"{'…' if len(extra) > 5 else ''}. Pick the architecture it was trained with.")


class UploadedWeights:
    """Weights someone uploaded, registered by digest while they hold this object (see ``register_weights``)."""

    def __init__(self, state: dict[str, torch.Tensor], filename: str = ""):
        self.state, self.filename, self.digest = state, filename, weights_digest(state)


_WEIGHTS: "weakref.WeakValueDictionary[str, UploadedWeights]" = weakref.WeakValueDictionary()


def register_weights(state: dict[str, torch.Tensor], filename: str = "") -> UploadedWeights:
    """Make checked weights usable as a baseline (``get_baseline(..., weights=handle.digest)``) for as long as the
    returned handle is held (a session keeps it; when the session ends they are gone)."""
    handle = UploadedWeights(state, filename)
    _WEIGHTS[handle.digest] = handle
    return handle


def uploaded_weights(digest: str) -> dict[str, torch.Tensor]:
    handle = _WEIGHTS.get(digest)
    if handle is None:
        raise ValueError("The uploaded weights are no longer here (uploads last as long as the session that made "
                         "them): upload them again.")
    return handle.state


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """16 hex digits naming these weights (a cache key)."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---- data sets -------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Upload:
    """An accepted data set: arrays, what kind of inputs they are, and the name ``load_dataset`` knows it by."""

    name: str
    filename: str
    x: np.ndarray  # (N, *input_shape) float32
    y: np.ndarray  # (N,) int64, classes 0..k-1
    kind: str  # "image", "sequence", "points" or "features"
    class_names: tuple[str, ...]
    splits: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # given by the file (NPZ), else by the seed
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        shape = "×".join(map(str, self.x.shape[1:]))
        return (f"Your data set {self.filename}: {len(self.y):,} rows, {len(self.class_names)} classes, inputs of "
                f"shape {shape} ({self.kind}).")


def _labels(raw: np.ndarray, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    values, y = np.unique(raw, return_inverse=True)
    if len(values) < 2:
        raise ValueError(f"The {where} has a single class ({values[0]!r}): a classifier needs at least two.")
    if len(values) > LIMITS["classes"]:
        raise ValueError(f"The {where} has {len(values)} different values; at most {LIMITS['classes']} classes "
                         "are allowed (is it a numeric target rather than a class?).")
    return y.astype(np.int64), tuple(str(v) for v in values)


def _kind(x: np.ndarray, shape_hint: str) -> tuple[np.ndarray, str]:
    """Inputs shaped for their kind: (N,1,s,s) images for a square feature count, (N,1,L) signals, (N,2) points,
    (N,F) features. ``shape_hint``: "auto", "image", "signal" or "features"."""
    if x.ndim == 4 or (x.ndim == 3 and shape_hint != "signal" and x.shape[1] == x.shape[2]):
        x = x if x.ndim == 4 else x[:, None]
        return x, "image"
    if x.ndim == 3:
        return x, "sequence"
    f = x.shape[1]
    side = math.isqrt(f)
    if shape_hint == "image" or (shape_hint == "auto" and side * side == f and f >= 16):
        if side * side != f:
            raise ValueError(f"{f} features are not a square number, so they cannot be drawn as an image.")
        return x.reshape(-1, 1, side, side), "image"
    if shape_hint == "signal":
        return x[:, None], "sequence"
    return x, "points" if f == 2 else "features"


def _finish(name_bytes: bytes, filename: str, x: np.ndarray, y_raw: np.ndarray, shape_hint: str,
            splits=None) -> Upload:
    if len(x) < LIMITS["min_rows"]:
        raise ValueError(f"The file has {len(x)} rows; at least {LIMITS['min_rows']} are needed to train, validate "
                         "and test.")
    if len(x) > LIMITS["rows"]:
        raise ValueError(f"The file has more than {LIMITS['rows']:,} rows, the limit here.")
    if x.size > LIMITS["values"]:
        raise ValueError(f"The data holds {x.size:,} numbers (rows × features); the limit here is "
                         f"{LIMITS['values']:,}.")
    if int(np.prod(x.shape[1:])) > LIMITS["columns"]:
        raise ValueError(f"Each example has {int(np.prod(x.shape[1:])):,} features; the limit is "
                         f"{LIMITS['columns']:,}.")
    y, classes = _labels(y_raw, "label column")
    counts = np.bincount(y)
    if counts.min() < LIMITS["min_per_class"] * 3:
        c = int(counts.argmin())
        raise ValueError(f"Class {classes[c]!r} has only {counts.min()} rows; each class needs at least "
                         f"{LIMITS['min_per_class'] * 3} (a few in each of the training, validation and test splits).")
    x, kind = _kind(x.astype(np.float32), shape_hint)
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", filename.rsplit(".", 1)[0])[:24].strip("_") or "data"
    name = f"upload-{hashlib.sha256(name_bytes + shape_hint.encode()).hexdigest()[:8]}-{stem}"  # readable in a list
    return Upload(name, filename, np.ascontiguousarray(x), y, kind, classes, splits)


def read_csv(data: bytes, filename: str = "data.csv", label: str | None = None, shape_hint: str = "auto") -> Upload:
    """A CSV with a header row: numeric feature columns and a label column (``label``; default the last)."""
    import pandas as pd

    _check_size(data, "CSV")
    try:
        df = pd.read_csv(io.BytesIO(data), nrows=LIMITS["rows"] + 1, low_memory=False)
    except Exception as e:  # noqa: BLE001 -- pandas raises many kinds for a damaged file
        raise ValueError(f"This is not a readable CSV file ({(str(e).splitlines() or [type(e).__name__])[0][:140]})."
                         ) from None
    if df.shape[1] < 2:
        raise ValueError("The CSV needs at least two columns: one or more features and a label.")
    if df.shape[1] > LIMITS["columns"] + 1:
        raise ValueError(f"The CSV has {df.shape[1]:,} columns; the limit is {LIMITS['columns']:,} features.")
    label = label if label is not None else str(df.columns[-1])
    if label not in df.columns:
        raise ValueError(f"There is no column {label!r}; the columns are {', '.join(map(str, df.columns[:10]))}.")
    features = df.drop(columns=[label])
    for col in features.columns:
        if features[col].isna().any():
            row = int(features[col].isna().to_numpy().argmax())
            raise ValueError(f"Column {col!r} has a missing value in row {row + 2} (counting the header as row 1).")
        num = pd.to_numeric(features[col], errors="coerce")
        if num.isna().any():
            row = int(num.isna().to_numpy().argmax())
            raise ValueError(f"Column {col!r} is not numeric: row {row + 2} holds {features[col].iloc[row]!r}.")
        if not np.isfinite(num.to_numpy(dtype=float)).all():
            row = int((~np.isfinite(num.to_numpy(dtype=float))).argmax())
            raise ValueError(f"Column {col!r} has an infinite value in row {row + 2}.")
        features[col] = num
    if df[label].isna().any():
        row = int(df[label].isna().to_numpy().argmax())
        raise ValueError(f"The label column {label!r} is empty in row {row + 2}.")
    x = features.to_numpy(dtype=np.float32)
    return _finish(data + label.encode(), filename, x, df[label].to_numpy(), shape_hint)


NPZ_KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")


def read_npz(data: bytes, filename: str = "data.npz", shape_hint: str = "auto") -> Upload:
    """An NPZ with ``x`` and ``y`` (and optionally ``x_val``/``y_val``, ``x_test``/``y_test``: the splits)."""
    _check_size(data, "NPZ")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)  # declared sizes, read before anything is decompressed
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise ValueError("This is not an NPZ archive (numpy.savez writes one): it is damaged or another format.") \
            from None
    if total > LIMITS["npz_uncompressed"]:
        raise ValueError(f"The archive unpacks to {total / 1024 / 1024:.0f} MB; the limit is "
                         f"{_mb(LIMITS['npz_uncompressed'])}. Nothing was unpacked.")
    names = {i.filename.removesuffix(".npy") for i in infos}
    unknown = sorted(names - set(NPZ_KEYS))
    if unknown:
        raise ValueError(f"Unknown array(s) {', '.join(unknown)}; an NPZ here holds {', '.join(NPZ_KEYS)}.")
    if not {"x", "y"} <= names:
        raise ValueError("The archive needs arrays named 'x' (inputs) and 'y' (labels).")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            arrays = {k: f[k] for k in names}
    except Exception as e:  # noqa: BLE001 -- a damaged member fails in zlib, zipfile or numpy
        raise ValueError(f"An array in the archive cannot be read ({str(e)[:140] or type(e).__name__}); object "
                         "arrays (pickles) are refused.") from None
    parts = [("x", "y")] + [(f"x_{s}", f"y_{s}") for s in ("val", "test") if f"x_{s}" in arrays]
    if any((a in arrays) != (b in arrays) for a, b in (("x_val", "y_val"), ("x_test", "y_test"))):
        raise ValueError("Each split needs both arrays: x_val with y_val, x_test with y_test.")
    for a, b in parts:
        xa, yb = arrays[a], arrays[b]
        if not np.issubdtype(xa.dtype, np.number) or xa.dtype == np.bool_:
            raise ValueError(f"Array {a!r} is {xa.dtype}, not numbers.")
        if xa.ndim < 2 or xa.ndim > 4:
            raise ValueError(f"Array {a!r} has shape {xa.shape}: expected (examples, features), (examples, "
                             "length), (examples, height, width) or (examples, channels, height, width).")
        if yb.ndim != 1 or len(yb) != len(xa):
            raise ValueError(f"Array {b!r} must be one label per row of {a!r} ({len(xa)}), got shape {yb.shape}.")
        if not np.isfinite(xa.astype(np.float64)).all():
            row = int(np.argwhere(~np.isfinite(xa.reshape(len(xa), -1).astype(np.float64)))[0][0])
            raise ValueError(f"Array {a!r} has a missing or infinite value in row {row}.")
    shapes = {arrays[a].shape[1:] for a, _ in parts}
    if len(shapes) > 1:
        raise ValueError(f"The splits' inputs have different shapes: {sorted(shapes)}.")
    x = np.concatenate([arrays[a] for a, _ in parts])
    y = np.concatenate([arrays[b] for _, b in parts])
    splits = None
    if len(parts) == 3:
        n0, n1 = len(arrays["y"]), len(arrays["y_val"])
        splits = (np.arange(n0), np.arange(n0, n0 + n1), np.arange(n0 + n1, len(y)))
    elif len(parts) == 2:
        raise ValueError("Give both x_val/y_val and x_test/y_test, or neither (then the seed splits x and y).")
    return _finish(data, filename, x, y, shape_hint, splits)


def read_dataset(data: bytes, filename: str, label: str | None = None, shape_hint: str = "auto") -> Upload:
    """``read_csv`` or ``read_npz`` by the file's name, and register the result (see ``compress_core.data``)."""
    from .data import register_upload

    if filename.lower().endswith(".npz"):
        up = read_npz(data, filename, shape_hint)
    elif filename.lower().endswith((".csv", ".txt")):
        up = read_csv(data, filename, label, shape_hint)
    else:
        raise ValueError(f"{filename!r}: upload a .csv or .npz file.")
    register_upload(up)
    return up
