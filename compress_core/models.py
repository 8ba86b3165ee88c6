"""Model registry: small classic architectures built for any registered data set.

- ``mlp``: the LeNet-300-100 shape (LeCun et al. 1998; Han et al. 2015; Frankle & Carbin 2019):
  flatten -> 300 -> 100 -> classes, ReLU between.
- ``cnn``: a LeNet-5-style conv net: two conv + ReLU + max-pool stages, then 120 -> 84 -> classes.
  2-D convolutions for images, 1-D for sequences.
- ``tiny``: a small MLP (32 -> 32) for 2-D points (only: on images and signals it is too small to be a
  fair subject for compression).

Every model is an ``nn.Sequential`` with named children (``conv1``, ``fc1``, ``relu1``, ...), and only
``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` layers carry parameters, so every pruning and quantization
algorithm works on every model by walking ``model.named_children()``.

Usage::

    model = build_model("mlp", load_dataset("digits"), seed=0)
    summary(model, (1, 8, 8))["total_params"]   # 52,410 weights and biases
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from .data import Dataset, load_dataset

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    kinds: tuple[str, ...]  # data kinds the architecture is built for


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("mlp", "LeNet-300-100: two hidden fully connected layers of 300 and 100 ReLU units.",
                  ("image", "sequence", "points")),
        ModelSpec("cnn", "LeNet-5 style: conv → pool → conv → pool, then 120 → 84 → classes.",
                  ("image", "sequence")),
        ModelSpec("tiny", "A tiny MLP with two hidden layers of 32 units, for 2-D points.", ("points",)),
    )
}


def list_models(dataset: str | Dataset | None = None) -> list[str]:
    """Registered model names; with a data set, only those built for its kind."""
    if dataset is None:
        return list(REGISTRY)
    kind = _as_dataset(dataset).kind
    return [n for n, s in REGISTRY.items() if kind in s.kinds]


def _as_dataset(dataset: str | Dataset) -> Dataset:
    return load_dataset(dataset) if isinstance(dataset, str) else dataset


def _mlp(in_features: int, classes: int, hidden: tuple[int, ...]) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    widths = (in_features, *hidden)
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        layers += [(f"fc{i}", nn.Linear(a, b)), (f"relu{i}", nn.ReLU())]
    layers.append((f"fc{len(hidden) + 1}", nn.Linear(widths[-1], classes)))
    return layers


def _cnn(input_shape: tuple[int, ...], classes: int) -> list[tuple[str, nn.Module]]:
    if len(input_shape) == 3:  # (channels, height, width): 2-D convolutions
        c, h, w = input_shape
        conv, pool, k = nn.Conv2d, nn.MaxPool2d, 3
        c1, c2 = 6, 16
        flat = c2 * (h // 4) * (w // 4)
    else:  # (channels, length): 1-D convolutions
        c, length = input_shape
        conv, pool, k = nn.Conv1d, nn.MaxPool1d, 5
        c1, c2 = 16, 32
        flat = c2 * (length // 4)
    return [
        ("conv1", conv(c, c1, k, padding=k // 2)), ("relu1", nn.ReLU()), ("pool1", pool(2)),
        ("conv2", conv(c1, c2, k, padding=k // 2)), ("relu2", nn.ReLU()), ("pool2", pool(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(flat, 120)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(120, 84)), ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(84, classes)),
    ]


def build_model(name: str, dataset: str | Dataset, seed: int = 0) -> nn.Sequential:
    """A freshly initialised model ``name`` for ``dataset`` (a name or a loaded ``Dataset``).

    The seed fixes the initial weights θ0. Raises ValueError for an unknown name or an architecture
    that is not built for the data set's kind (a CNN on 2-D points).
    """
    if name not in REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Valid models: {', '.join(REGISTRY)}.")
    ds = _as_dataset(dataset)
    spec = REGISTRY[name]
    if ds.kind not in spec.kinds:
        raise ValueError(f"Model {name!r} is not built for {ds.kind} data ({ds.name}). "
                         f"Models for {ds.name}: {', '.join(list_models(ds))}.")
    in_features = 1
    for d in ds.input_shape:
        in_features *= d
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # layers initialise themselves from the global generator: seed it, then restore
    try:
        if name == "mlp":
            layers = _mlp(in_features, ds.num_classes, (300, 100))
        elif name == "tiny":
            layers = _mlp(in_features, ds.num_classes, (32, 32))
        else:
            layers = _cnn(ds.input_shape, ds.num_classes)
        model = nn.Sequential(OrderedDict(layers))
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) for every Linear / Conv layer, in forward order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHTED)]


def output_layer_name(model: nn.Module) -> str:
    """Name of the last weighted layer (the classifier)."""
    return weighted_layers(model)[-1][0]


def summary(model: nn.Module, input_shape: tuple[int, ...], bytes_per_param: int = 4) -> dict:
    """Layer table of ``model``: output shape, weight and bias counts, and size in bytes.

    Returns ``{"layers": [row, ...], "total_params": int, "total_bytes": int}`` where each row has
    ``name``, ``type``, ``output_shape``, ``weights``, ``biases``, ``params`` and ``bytes``.
    """
    rows = []
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            w = getattr(module, "weight", None)
            b = getattr(module, "bias", None)
            nw = w.numel() if isinstance(w, torch.Tensor) else 0
            nb = b.numel() if isinstance(b, torch.Tensor) else 0
            rows.append(dict(name=name, type=type(module).__name__, output_shape=tuple(x.shape[1:]),
                             weights=nw, biases=nb, params=nw + nb, bytes=(nw + nb) * bytes_per_param))
    total = sum(r["params"] for r in rows)
    return {"layers": rows, "total_params": total, "total_bytes": total * bytes_per_param}
