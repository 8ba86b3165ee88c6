"""Data sets that work offline: a small registry of real and synthetic classification tasks.

Every data set comes from an installed package or is generated, so nothing is downloaded:

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).
- ``mnist1d``: MNIST-1D (Greydanus, 2020), generated locally with
  ``mnist1d.data.make_dataset(get_dataset_args())``: 4,000 train / 1,000 test sequences of length 40.
- ``moons`` and ``spirals``: noisy 2-D points, small enough to draw a decision boundary.
- ``pydoc``: Python's own help texts read one character at a time, for a language model (``compress_core.text``):
  x holds windows of token ids (N, 64), y the next character at each position (N, 64), int64 both.

A seed fixes the train/validation/test split; normalisation statistics come from the training split
only. ``load_dataset`` caches its result per (name, seed): the tensors it returns are shared, so treat
them as read-only.

Usage::

    ds = load_dataset("digits", seed=0)
    ds.x_train.shape      # torch.Size([1257, 1, 8, 8])
"""
from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from .catalog import DATASETS, KINDS, is_uploaded, list_datasets  # noqa: F401  (re-exported)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test tensors of one data set, plus what the UI needs to draw samples."""

    name: str
    kind: str  # one of KINDS
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    description: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str
    description: str
    builder: object  # callable(seed) -> dict of numpy arrays and metadata


def _split(n: int, seed: int, n_val: int, n_test: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded permutation cut into train / validation / test index arrays."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, read straight from the package's data file.

    Same bytes as ``sklearn.datasets.load_digits`` (a test checks it) without importing scikit-learn,
    which costs over a second of the app's start-up.
    """
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The digits data set needs scikit-learn: pip install -r requirements.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.exists():  # an unusual layout: fall back to the public loader
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images.astype(np.float32), d.target.astype(np.int64)
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)


def _build_digits(seed: int) -> dict:
    images, y = _digits_arrays()
    x = images / 16.0  # pixel intensities 0..16 -> 0..1
    tr, va, te = _split(len(y), seed, n_val=180, n_test=360)
    return dict(x=x[:, None], y=y, idx=(tr, va, te), classes=tuple(str(i) for i in range(10)))


@functools.lru_cache(maxsize=1)
def _mnist1d_raw() -> dict:
    """Generate MNIST-1D locally (about 2 s); never calls the package's download helper."""
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()  # make_dataset seeds numpy's global generator: restore it
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    return {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}


def _build_mnist1d(seed: int) -> dict:
    raw = _mnist1d_raw()
    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float32)
    y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)
    n_train = len(raw["y"])
    # The published test split stays the test split; the seed picks 500 validation sequences from train.
    perm = np.random.default_rng(seed).permutation(n_train)
    idx = (perm[500:], perm[:500], np.arange(n_train, len(y)))
    return dict(x=x[:, None], y=y, idx=idx, classes=tuple(str(i) for i in range(10)))


def _build_moons(seed: int) -> dict:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1000, noise=0.2, random_state=seed)
    tr, va, te = _split(len(y), seed, n_val=150, n_test=250)
    return dict(x=x.astype(np.float32), y=y.astype(np.int64), idx=(tr, va, te), classes=("upper", "lower"))


def _build_spirals(seed: int, n_per_class: int = 400, arms: int = 3, noise: float = 0.25) -> dict:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(arms):
        r = np.linspace(0.15, 1.0, n_per_class)
        theta = 1.75 * np.pi * r + 2 * np.pi * k / arms
        pts = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1) * 3
        xs.append(pts + rng.normal(scale=noise * r[:, None], size=pts.shape))
        ys.append(np.full(n_per_class, k))
    x, y = np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)
    tr, va, te = _split(len(y), seed, n_val=180, n_test=300)
    return dict(x=x, y=y, idx=(tr, va, te), classes=tuple(f"arm {k}" for k in range(arms)))


def _build_pydoc(seed: int) -> dict:
    """The text as windows: the seed picks the training windows' starts; the held-out text is the same for every
    seed (the last 10 % of the corpus, see ``compress_core.text``)."""
    from . import text

    train, val, test = text.corpus_splits()
    parts = (text.train_windows(train, text.CONTEXT, seed), text.eval_windows(val, text.CONTEXT),
             text.eval_windows(test, text.CONTEXT))
    meta = {"vocab": text.VOCAB, "context": text.CONTEXT, "corpus_sha256": text.corpus_digest(),
            "characters": {"train": len(train), "val": len(val), "test": len(test)}}
    return dict(parts=parts, classes=tuple(text.VOCAB), meta=meta)


_BUILDERS = {"digits": _build_digits, "mnist1d": _build_mnist1d, "moons": _build_moons, "spirals": _build_spirals,
             "pydoc": _build_pydoc}
REGISTRY: dict[str, DatasetSpec] = {n: DatasetSpec(n, d.kind, d.description, _BUILDERS[n]) for n, d in DATASETS.items()}


# Uploaded data sets (compress_core.uploads), by name, while their uploader holds the ``Upload``: a weak registry,
# so a session's upload is gone with the session; never cached by ``load_dataset``'s LRU.
_UPLOADS: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()


def register_upload(upload) -> None:
    """Make an ``uploads.Upload`` loadable by name (for as long as someone holds it)."""
    _UPLOADS[upload.name] = upload


def _stratified(y: np.ndarray, seed: int, val: float = 0.15, test: float = 0.2) -> tuple[np.ndarray, ...]:
    """A seeded split that puts every class in each part (at least one example each)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_te, n_va = max(1, round(test * len(idx))), max(1, round(val * len(idx)))
        for part, chunk in zip(parts, (idx[n_te + n_va:], idx[n_te:n_te + n_va], idx[:n_te])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def _load_upload(name: str, seed: int) -> Dataset:
    up = _UPLOADS.get(name)
    if up is None:
        raise ValueError(f"The uploaded data set {name!r} is no longer here (uploads last as long as the session "
                         "that made them): upload it again.")
    tr, va, te = up.splits if up.splits is not None else _stratified(up.y, seed)
    return _standardized(name, up.kind, up.x, up.y, (tr, va, te), up.class_names, up.description, seed)


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name`` (an uploaded data set's is made from its upload); an unknown name raises a
    ValueError listing the valid ones."""
    if is_uploaded(name):
        up = _UPLOADS.get(name)
        if up is None:
            raise ValueError(f"The uploaded data set {name!r} is no longer here: upload it again.")
        return DatasetSpec(name, up.kind, up.description, None)
    if name not in REGISTRY:
        raise ValueError(f"Unknown data set {name!r}. Valid data sets: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load data set ``name`` (built in, or uploaded while its upload is held) split by ``seed``; inputs
    standardised with training statistics. ValueError for an unknown name."""
    if is_uploaded(name):
        return _load_upload(name, int(seed))
    return _load_builtin(name, int(seed))


@functools.lru_cache(maxsize=32)
def _load_builtin(name: str, seed: int = 0) -> Dataset:
    """Load data set ``name`` split by ``seed``; inputs standardised with training statistics.

    Args:
        name: one of ``list_datasets()``.
        seed: fixes the split (and, for the synthetic sets, the points themselves).
    """
    spec = get_spec(name)
    raw = spec.builder(int(seed))
    if spec.kind == "text":  # token ids: nothing to standardise
        (xtr, ytr), (xva, yva), (xte, yte) = (tuple(torch.from_numpy(np.array(a)) for a in p)
                                              for p in raw["parts"])
        return Dataset(name=name, kind=spec.kind, x_train=xtr, y_train=ytr, x_val=xva, y_val=yva, x_test=xte,
                       y_test=yte, input_shape=tuple(xtr.shape[1:]), class_names=raw["classes"],
                       description=spec.description, meta={**raw["meta"], "seed": int(seed)})
    return _standardized(name, spec.kind, raw["x"], raw["y"], raw["idx"], raw["classes"], spec.description, seed)


def _standardized(name: str, kind: str, x: np.ndarray, y: np.ndarray, idx, classes, description: str,
                  seed: int) -> Dataset:
    tr, va, te = idx
    if kind in ("points", "features"):  # per-feature standardisation keeps the features comparable
        mean, std = x[tr].mean(axis=0), x[tr].std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant feature stays 0 rather than NaN
    else:  # one scalar for all pixels / time steps keeps the picture's contrast
        mean, std = x[tr].mean(), x[tr].std()
        std = std if std > 0 else 1.0
    x = ((x - mean) / std).astype(np.float32)

    def t(a: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[idx]))

    return Dataset(
        name=name, kind=kind,
        x_train=t(x, tr), y_train=t(y, tr), x_val=t(x, va), y_val=t(y, va), x_test=t(x, te), y_test=t(y, te),
        input_shape=tuple(x.shape[1:]), class_names=tuple(classes), description=description,
        meta={"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist(), "seed": int(seed)},
    )
