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
import struct
import weakref
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .catalog import UPLOAD_LIMITS
from .config import brief, read_json

__all__ = ["LIMITS", "Upload", "UploadedWeights", "check_weights", "csv_columns", "read_dataset", "read_weights",
           "register_weights", "uploaded_weights", "weights_digest"]

LIMITS = UPLOAD_LIMITS  # what an upload may hold: in the catalog, which the sidebar reads without PyTorch


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def _check_size(data: bytes, what: str) -> None:
    if not data:
        raise ValueError(f"The {what} file is empty.")
    if len(data) > LIMITS["bytes"]:
        raise ValueError(f"The {what} file is {len(data) / 1024 / 1024:.1f} MB; the limit is {_mb(LIMITS['bytes'])}.")


def _zip_directory_size(data: bytes) -> int | None:
    """The size of a zip archive's central directory as its end record declares it, found as ``zipfile`` finds it
    (the last end record in the final 64 KB, and the zip64 record just before it when there is one); None when
    there is no end record: not a zip archive."""
    if len(data) >= 22 and data[-22:-18] == b"PK\x05\x06" and data[-2:] == b"\0\0":
        at = len(data) - 22
    else:
        at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
        if at < 0 or len(data) - at < 22:
            return None
    size = struct.unpack_from("<L", data, at + 12)[0]
    if at >= 76 and data[at - 20:at - 16] == b"PK\x06\x07" and data[at - 76:at - 72] == b"PK\x06\x06":
        size = struct.unpack_from("<Q", data, at - 76 + 40)[0]  # zip64: its own 64-bit size
    return size


def _zip_members(data: bytes, what: str, not_zip: str, unpacked_limit: int) -> list[zipfile.ZipInfo]:
    """The members of a zip archive, every count and size it declares checked before anything is unpacked: the
    central directory's size (before ``zipfile`` reads it), the number of members, and their declared unpacked
    sizes in all (a zip bomb declares gigabytes). ValueError ``not_zip`` when it is not a zip archive."""
    directory = _zip_directory_size(data)
    if directory is None:
        raise ValueError(not_zip)
    if directory > LIMITS["zip_directory_bytes"]:
        raise ValueError(f"The {what} archive's directory is {directory:,} bytes; the limit is "
                         f"{LIMITS['zip_directory_bytes']:,} (about {LIMITS['zip_members']:,} members). Nothing was "
                         "unpacked.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, struct.error):
        raise ValueError(not_zip) from None
    if len(infos) > LIMITS["zip_members"]:
        raise ValueError(f"The {what} archive has {len(infos):,} members; the limit is {LIMITS['zip_members']:,}. "
                         "Nothing was unpacked.")
    total = sum(i.file_size for i in infos)  # declared sizes, read before anything is decompressed
    if total > unpacked_limit:
        raise ValueError(f"The {what} archive unpacks to {total / 1024 / 1024:.0f} MB; the limit is "
                         f"{_mb(unpacked_limit)}. Nothing was unpacked.")
    return infos


# ---- weights ---------------------------------------------------------------------------------------------------
# safetensors dtypes and their bits per value (any other is refused before safetensors reads the file)
_ST_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
            "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64}


def _check_safetensors(data: bytes) -> None:
    """Every size a safetensors file declares, checked before the library reads it: the header's length (its first 8
    bytes) against the file and ``LIMITS["header_bytes"]``, then in the JSON header each tensor's dtype, shape and
    byte span (shape × dtype size = the span, inside the file) and the count of tensors and of numbers in all."""
    bad = "This safetensors file cannot be read ({}): it is damaged or not safetensors."
    if len(data) < 8:
        raise ValueError(bad.format("it is shorter than its 8-byte header length"))
    n = int.from_bytes(data[:8], "little")
    if n > LIMITS["header_bytes"]:
        raise ValueError(bad.format(f"its header claims {n:,} bytes; the limit is {LIMITS['header_bytes']:,}"))
    if n > len(data) - 8:
        raise ValueError(bad.format(f"its header claims {n:,} bytes but the file holds {len(data) - 8:,} after it"))
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(bad.format("its header is not text")) from None
    try:
        header = read_json(text, "its header", max_chars=n, max_depth=3,
                           max_containers=3 * LIMITS["tensors"] + 1)
    except ValueError as e:
        raise ValueError(bad.format(str(e).rstrip("."))) from None  # "its header is not JSON (…)"
    if not isinstance(header, dict):
        raise ValueError(bad.format("its header is not a mapping of tensor names"))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if len(tensors) > LIMITS["tensors"]:
        raise ValueError(f"The file holds {len(tensors):,} tensors; the limit is {LIMITS['tensors']:,}.")
    body, total = len(data) - 8 - n, 0
    for name, t in tensors.items():
        if not isinstance(t, dict) or set(t) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(bad.format(f"entry {brief(name)} is not a tensor's dtype, shape and data_offsets"))
        dtype, shape, span = t["dtype"], t["shape"], t["data_offsets"]
        if dtype not in _ST_BITS:
            raise ValueError(f"Tensor {brief(name)} is of type {brief(dtype)}; this app reads "
                             f"{', '.join(_ST_BITS)}.")
        if (not isinstance(shape, list) or len(shape) > LIMITS["tensor_dims"]
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise ValueError(bad.format(f"tensor {brief(name)} has the shape {brief(shape)}; a shape is at most "
                                        f"{LIMITS['tensor_dims']} sizes of 0 or more"))
        if not (isinstance(span, list) and len(span) == 2 and all(type(o) is int for o in span)
                and 0 <= span[0] <= span[1] <= body):
            raise ValueError(bad.format(f"tensor {brief(name)} claims bytes {brief(span)} of the "
                                        f"{body:,} the file holds"))
        count = math.prod(shape)
        total += count
        if total > LIMITS["weight_values"]:
            raise ValueError(f"The file's tensors hold more than {LIMITS['weight_values']:,} numbers (tensor "
                             f"{brief(name)} alone has shape {brief(shape)}): the limit here.")
        if count * _ST_BITS[dtype] != 8 * (span[1] - span[0]):
            raise ValueError(bad.format(f"tensor {brief(name)} of shape {brief(shape)} needs "
                                        f"{count * _ST_BITS[dtype] // 8:,} bytes but spans {span[1] - span[0]:,}"))


def _check_pt(data: bytes) -> None:
    """Every size a ``torch.save`` file declares, checked before ``torch.load`` reads it: it must be the zip archive
    torch.save writes (since PyTorch 1.6), with a central directory, member count and declared unpacked sizes
    within ``LIMITS`` and a pickle (``data.pkl``) of at most ``LIMITS["pickle_bytes"]``. (torch.load then checks
    that each storage's size in the pickle matches its record.)"""
    not_pt = ("This is not a readable PyTorch weights file (it is damaged or another format, or the legacy format "
              "before PyTorch 1.6). Upload the file torch.save(model.state_dict(), path) wrote, or a .safetensors "
              "file.")
    infos = _zip_members(data, "weights", not_pt, LIMITS["weights_unpacked"])
    pickles = [i for i in infos if i.filename.endswith("data.pkl")]
    if not pickles:
        raise ValueError(not_pt)
    big = max(i.file_size for i in pickles)
    if big > LIMITS["pickle_bytes"]:
        raise ValueError(f"The weights file's pickle (data.pkl) is {big:,} bytes; the limit is "
                         f"{LIMITS['pickle_bytes']:,} (a state_dict needs about 110 bytes a tensor).")


def _check_tensors(state: dict) -> None:
    """The count of tensors and of numbers in all, read from their shapes before any is copied or converted (a
    forged pickle can make a tensor of shape 2^20 × 2^20 over a 4-byte storage, with strides 0)."""
    if len(state) > LIMITS["tensors"]:
        raise ValueError(f"The file holds {len(state):,} tensors; the limit is {LIMITS['tensors']:,}.")
    total = 0
    for name, v in state.items():
        if v.layout != torch.strided or v.is_nested or v.is_quantized:
            raise ValueError(f"Tensor {brief(name)} is a sparse, nested or quantized tensor: save the dense float "
                             "weights (model.state_dict() of a float model).")
        total += v.numel()
        if total > LIMITS["weight_values"]:
            raise ValueError(f"The file's tensors hold more than {LIMITS['weight_values']:,} numbers (tensor "
                             f"{brief(name)} alone has shape {'×'.join(map(str, v.shape))}): the limit here.")


def read_weights(data: bytes, filename: str = "") -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file (``weights_only=True``) or a safetensors file; ValueError in plain
    words for anything else -- a file with pickled code is refused without running it.

    Bounds: every size the file declares is checked before it is unpacked (``_check_pt``, ``_check_safetensors``)
    and the tensors' counts before they are converted (``_check_tensors``). A forged file is refused in
    milliseconds (a .pt's pickle, at most ``LIMITS["pickle_bytes"]``, is unpickled in under a second) with under
    10 MB allocated besides the upload itself; an accepted one costs its tensors (about its size again) and 4 bytes
    a number for those not stored as float32 (measured: a 19 MB file of 5 M float32 in 0.02 s)."""
    _check_size(data, "weights")
    if filename.lower().endswith(".safetensors") or (len(data) > 8 and data[8:9] == b"{"):
        from safetensors.torch import load as st_load
        _check_safetensors(data)
        try:
            state = st_load(data)
        except Exception as e:  # noqa: BLE001 -- any damage (SafetensorError and others): the same plain answer
            raise ValueError(f"This safetensors file cannot be read ({str(e)[:120]}): it is damaged or not "
                             "safetensors.") from None
    else:
        _check_pt(data)
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
    _check_tensors(state)
    try:
        return {str(k): v.detach().to("cpu", torch.float32) for k, v in state.items()}
    except (RuntimeError, TypeError) as e:  # a dtype with no float value
        raise ValueError(f"A tensor in the file cannot be read as numbers ({str(e).splitlines()[0][:120]}).") \
            from None


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
        only = values[0].item() if isinstance(values[0], np.generic) else values[0]
        raise ValueError(f"The {where} has a single class ({brief(only)}): a classifier needs at least two.")
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
    x, kind = _kind(x.astype(np.float32, copy=False), shape_hint)
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", filename.rsplit(".", 1)[0])[:24].strip("_") or "data"
    name = f"upload-{hashlib.sha256(name_bytes + shape_hint.encode()).hexdigest()[:8]}-{stem}"  # readable in a list
    return Upload(name, filename, np.ascontiguousarray(x), y, kind, classes, splits)


def _check_csv_text(data: bytes) -> None:
    """What a CSV's bytes declare, checked before pandas parses them: no line longer than
    ``LIMITS["csv_line_bytes"]`` (scanned 1 MB at a time, under 10 MB of scratch), a header of at most
    ``LIMITS["columns"]`` features and a label, and no more numbers than ``LIMITS["values"]`` in its rows."""
    limit, chunk = LIMITS["csv_line_bytes"], 1 << 20
    view = np.frombuffer(data, np.uint8)
    start, lines = 0, 0  # where the current line starts; lines ended so far
    for lo in range(0, len(data), chunk):
        ends = np.flatnonzero(view[lo:lo + chunk] == 10) + lo
        if len(ends):
            lengths = np.diff(ends, prepend=start - 1) - 1
            if lengths.max() > limit:
                i = int(lengths.argmax())
                raise ValueError(f"Line {lines + i + 1:,} of the CSV is {int(lengths[i]):,} bytes long; the limit "
                                 f"is {_mb(limit)} (a row of {LIMITS['columns']:,} numbers needs about 100 KB).")
            start, lines = int(ends[-1]) + 1, lines + len(ends)
        if min(lo + chunk, len(data)) - start > limit:
            raise ValueError(f"Line {lines + 1:,} of the CSV is more than {_mb(limit)} long, the limit (a row of "
                             f"{LIMITS['columns']:,} numbers needs about 100 KB).")
    end = data.find(b"\n")
    header = re.sub(rb'"[^"]*"', b"", data[:end if end >= 0 else len(data)])  # commas inside quotes are no columns
    columns = header.count(b",") + 1
    if columns > LIMITS["columns"] + 1:
        raise ValueError(f"The CSV has {columns:,} columns; the limit is {LIMITS['columns']:,} features.")
    rows = min(lines + (not data.endswith(b"\n")) - 1 - data.count(b"\n\n") - data.count(b"\n\r\n"),
               LIMITS["rows"] + 1)  # lines after the header, blank ones left out (pandas reads rows + 1 at most)
    if rows * (columns - 1) > LIMITS["values"]:
        raise ValueError(f"The data holds {rows * (columns - 1):,} numbers ({rows:,} rows × {columns - 1:,} "
                         f"features); the limit here is {LIMITS['values']:,}.")


def csv_columns(data: bytes) -> list[str]:
    """The column names in a CSV's header (to choose the label), its sizes checked first as ``read_csv`` checks
    them: a forged header of a million columns is refused before pandas reads it."""
    import pandas as pd

    _check_size(data, "CSV")
    _check_csv_text(data)
    try:
        return [str(c) for c in pd.read_csv(io.BytesIO(data), nrows=0).columns]
    except Exception as e:  # noqa: BLE001 -- pandas raises many kinds for a damaged file
        raise ValueError(f"This is not a readable CSV file ({(str(e).splitlines() or [type(e).__name__])[0][:140]})."
                         ) from None


def read_csv(data: bytes, filename: str = "data.csv", label: str | None = None, shape_hint: str = "auto") -> Upload:
    """A CSV with a header row: numeric feature columns and a label column (``label``; default the last).

    Bounds: the longest line, the header's columns and rows × features are read off the bytes before pandas parses
    them (``_check_csv_text``), and pandas reads at most ``LIMITS["rows"]`` + 1 rows. A forged file is refused in
    under 50 ms with under 10 MB of scratch; an accepted one costs about 16 bytes a number (pandas' float64 table
    and the float32 inputs) besides the upload itself (measured: 10 M numbers, 157 MB at the peak, 2.5 s)."""
    import pandas as pd

    _check_size(data, "CSV")
    _check_csv_text(data)
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
        raise ValueError(f"There is no column {brief(label)}; the columns are "
                         f"{', '.join(map(str, df.columns[:10]))}.")
    columns = [c for c in df.columns if c != label]
    x = np.empty((len(df), len(columns)), np.float32)  # filled a column at a time: no copy of the whole table
    for j, col in enumerate(columns):
        values = df[col]
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise ValueError(f"Column {col!r} has a missing value in row {row + 2} (counting the header as row 1).")
        num = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")
        if num.isna().any():
            row = int(num.isna().to_numpy().argmax())
            raise ValueError(f"Column {col!r} is not numeric: row {row + 2} holds {brief(values.iloc[row])}.")
        num = num.to_numpy(dtype=float)
        if not np.isfinite(num).all():
            row = int((~np.isfinite(num)).argmax())
            raise ValueError(f"Column {col!r} has an infinite value in row {row + 2}.")
        x[:, j] = num
    if df[label].isna().any():
        row = int(df[label].isna().to_numpy().argmax())
        raise ValueError(f"The label column {label!r} is empty in row {row + 2}.")
    return _finish(data + label.encode(), filename, x, df[label].to_numpy(), shape_hint)


NPZ_KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")


def _npy_header(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, dtype and header length a member of an NPZ declares, read from its first bytes only (its header's
    length is checked before the header is read: numpy reads it first and checks after)."""
    name = info.filename.removesuffix(".npy")
    bad = f"Array {brief(name)} in the archive cannot be read ({{}}): it is damaged or not a .npy array."

    def first(n: int) -> bytes:
        try:
            with z.open(info) as fp:
                return fp.read(n)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
                struct.error) as e:  # a damaged member fails in zipfile or zlib
            raise ValueError(bad.format(str(e)[:100] or type(e).__name__)) from None

    head = first(12)
    if len(head) < 12 or head[:6] != b"\x93NUMPY" or head[6] not in (1, 2, 3):
        raise ValueError(bad.format("it does not start as a .npy array does"))
    start, size = (10, struct.unpack("<H", head[8:10])[0]) if head[6] == 1 else (12, struct.unpack("<I", head[8:12])[0])
    if size > LIMITS["npy_header_bytes"]:
        raise ValueError(f"The header of array {brief(name)} claims {size:,} bytes; the limit is "
                         f"{LIMITS['npy_header_bytes']:,}. Nothing was unpacked.")
    if head[6] == 3:  # UTF-8 field names: a structured array, not numbers
        raise ValueError(f"Array {brief(name)} holds structured records, not numbers.")
    head = first(start + size)
    if len(head) < start + size:
        raise ValueError(bad.format("its header is cut short"))
    try:
        fp = io.BytesIO(head)
        version = np.lib.format.read_magic(fp)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fp, max_header_size=LIMITS["npy_header_bytes"])
    except Exception as e:  # noqa: BLE001 -- a forged header fails numpy's literal parser in many ways
        raise ValueError(bad.format(f"its header: {(str(e).splitlines() or [type(e).__name__])[0][:100]}")) \
            from None
    return shape, dtype, start + size


def _check_npz_members(data: bytes, infos: list[zipfile.ZipInfo]) -> None:
    """Each member's declared shape and dtype, checked before ``np.load`` allocates the arrays they describe: no
    object arrays, no negative sizes, at most 4 dimensions, no more numbers than ``LIMITS["values"]`` (and a label
    per row) in all, and no more bytes than the member holds."""
    total, limit = 0, LIMITS["values"] + LIMITS["rows"]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in infos:
            name = brief(info.filename.removesuffix(".npy"))
            shape, dtype, header = _npy_header(z, info)
            if dtype.hasobject:
                raise ValueError(f"Array {name} holds Python objects: object arrays (pickles) are refused.")
            if any(d < 0 for d in shape):
                raise ValueError(f"Array {name} declares the shape {brief(shape)}, with a negative size: the file "
                                 "is damaged.")
            if len(shape) > 4:
                raise ValueError(f"Array {name} has {len(shape)} dimensions; an array here has at most 4.")
            count = math.prod(shape)
            if count > LIMITS["values"]:
                raise ValueError(f"Array {name} declares {count:,} numbers (shape {brief(shape)}); the limit here is "
                                 f"{LIMITS['values']:,}. Nothing was unpacked.")
            total += count
            if total > limit:
                raise ValueError(f"The arrays declare more than {limit:,} numbers in all; the limit here is "
                                 f"{LIMITS['values']:,} inputs and a label a row. Nothing was unpacked.")
            if count * dtype.itemsize > info.file_size - header:
                raise ValueError(f"Array {name} declares shape {brief(shape)} ({count * dtype.itemsize:,} bytes) but "
                                 f"holds {max(info.file_size - header, 0):,}: the file is damaged.")


def read_npz(data: bytes, filename: str = "data.npz", shape_hint: str = "auto") -> Upload:
    """An NPZ with ``x`` and ``y`` (and optionally ``x_val``/``y_val``, ``x_test``/``y_test``: the splits).

    Bounds: the zip's directory, member count and declared unpacked sizes (``_zip_members``), then each member's
    .npy header: its length, shape and dtype (``_check_npz_members``), are checked before anything is unpacked. A
    forged archive is refused in milliseconds (a header nested thousands deep in 0.3 s) with under 5 MB allocated
    besides the upload itself; an accepted one costs its arrays as stored (at most ``LIMITS["values"]`` numbers and
    a label a row) and about 5 bytes a number more (measured: 10 M float64 numbers, 115 MB at the peak)."""
    _check_size(data, "NPZ")
    infos = _zip_members(data, "NPZ", "This is not an NPZ archive (numpy.savez writes one): it is damaged or another "
                         "format.", LIMITS["npz_uncompressed"])
    names = {i.filename.removesuffix(".npy") for i in infos}
    unknown = sorted(names - set(NPZ_KEYS))
    if unknown:
        raise ValueError(f"Unknown array(s) {', '.join(unknown)}; an NPZ here holds {', '.join(NPZ_KEYS)}.")
    if not {"x", "y"} <= names:
        raise ValueError("The archive needs arrays named 'x' (inputs) and 'y' (labels).")
    _check_npz_members(data, infos)
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
        if not np.isfinite(xa).all():  # any number type as it is: no float64 copy
            row = int(np.argwhere(~np.isfinite(xa.reshape(len(xa), -1).astype(np.float64)))[0][0])
            raise ValueError(f"Array {a!r} has a missing or infinite value in row {row}.")
    shapes = {arrays[a].shape[1:] for a, _ in parts}
    if len(shapes) > 1:
        raise ValueError(f"The splits' inputs have different shapes: {sorted(shapes)}.")
    x = arrays["x"] if len(parts) == 1 else np.concatenate([arrays[a] for a, _ in parts])
    y = arrays["y"] if len(parts) == 1 else np.concatenate([arrays[b] for _, b in parts])
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
