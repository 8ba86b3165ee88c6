"""Model registry: small classic architectures built for any registered data set.

- ``mlp``: the LeNet-300-100 shape (LeCun et al. 1998; Han et al. 2015; Frankle & Carbin 2019):
  flatten -> 300 -> 100 -> classes, ReLU between.
- ``cnn``: a LeNet-5-style conv net: two conv + ReLU + max-pool stages, then 120 -> 84 -> classes.
  2-D convolutions for images, 1-D for sequences.
- ``tiny``: a small MLP (32 -> 32) for 2-D points (only: on images and signals it is too small to be a
  fair subject for compression).
- ``gpt``: a tiny GPT (Radford et al. 2019, nanoGPT style; ``compress_core.gpt``) for text: 2 pre-LN transformer
  blocks 96 wide with 4 heads and a head tied to the token embedding. Its logits are (batch, vocabulary, time),
  so cross-entropy and accuracy score every next character with the classifiers' code.

Architectures you size yourself are named by a spec string, so they travel wherever a model name does (links,
recipes, cache keys): ``mlp:256-128-64`` is an MLP with those hidden widths; ``cnn:8k3-16k5`` a CNN with two conv
stages of 8 and 16 channels and kernels 3 and 5 (each followed by ReLU and a 2× max-pool), then 120 → 84 →
classes; ``gpt:4x128h4`` a GPT of 4 blocks, 128 wide, with 4 attention heads. ``model_problems`` checks one against
the limits in ``compress_core.catalog`` (the machine trains them in seconds; a GPT in about a minute).

Every model is an ``nn.Sequential`` with named children (``conv1``, ``fc1``, ``relu1``, ...; a GPT's ``embed``,
``block1`` …, ``ln_f``, ``head``). In the MLPs and CNNs only ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` layers carry
parameters, so every pruning and quantization algorithm works on every model by walking its weighted layers; a GPT
also has its embeddings and LayerNorms, and its Linear layers sit one level down (``block1.attn.q``), found by
``named_modules()``.

Usage::

    model = build_model("mlp", load_dataset("digits"), seed=0)
    summary(model, (1, 8, 8))["total_params"]   # 52,410 weights and biases
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np
import torch
from torch import nn

from .catalog import (  # noqa: F401  (re-exported: the registry lives in catalog)
    CNN_HEAD,
    REGISTRY,
    Architecture,
    built_architecture,
    list_models,
    model_problems,
    parse_model,
)
from .data import Dataset, load_dataset

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _as_dataset(dataset: str | Dataset) -> Dataset:
    return load_dataset(dataset) if isinstance(dataset, str) else dataset


def _mlp(in_features: int, classes: int, hidden: tuple[int, ...]) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    widths = (in_features, *hidden)
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        layers += [(f"fc{i}", nn.Linear(a, b)), (f"relu{i}", nn.ReLU())]
    layers.append((f"fc{len(hidden) + 1}", nn.Linear(widths[-1], classes)))
    return layers


def _cnn(input_shape: tuple[int, ...], classes: int, convs: tuple[tuple[int, int], ...]) -> list[tuple[str, nn.Module]]:
    two_d = len(input_shape) == 3  # (channels, height, width): 2-D convolutions; (channels, length): 1-D
    conv, pool = (nn.Conv2d, nn.MaxPool2d) if two_d else (nn.Conv1d, nn.MaxPool1d)
    layers: list[tuple[str, nn.Module]] = []
    channels, sizes = input_shape[0], list(input_shape[1:])
    for i, (c, k) in enumerate(convs, start=1):
        layers += [(f"conv{i}", conv(channels, c, k, padding=k // 2)), (f"relu{i}", nn.ReLU()), (f"pool{i}", pool(2))]
        channels, sizes = c, [s // 2 for s in sizes]
    flat = channels
    for s in sizes:
        flat *= s
    n = len(convs)
    layers.append(("flatten", nn.Flatten()))
    widths = (flat, *CNN_HEAD)
    for j, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        layers += [(f"fc{j}", nn.Linear(a, b)), (f"relu{n + j}", nn.ReLU())]
    layers.append((f"fc{len(CNN_HEAD) + 1}", nn.Linear(widths[-1], classes)))
    return layers


def _build(arch: Architecture, ds: Dataset) -> nn.Sequential:
    if arch.family == "gpt":
        from .gpt import build_gpt

        return build_gpt(ds.num_classes, ds.input_shape[0], arch.layers, arch.width, arch.heads)
    in_features = 1
    for d in ds.input_shape:
        in_features *= d
    if arch.family == "mlp":
        return nn.Sequential(OrderedDict(_mlp(in_features, ds.num_classes, arch.hidden)))
    return nn.Sequential(OrderedDict(_cnn(ds.input_shape, ds.num_classes, arch.convs)))


def build_model(name: str, dataset: str | Dataset, seed: int = 0) -> nn.Sequential:
    """A freshly initialised model ``name`` (registered, or a spec such as ``mlp:256-128``) for ``dataset`` (a
    name or a loaded ``Dataset``).

    The seed fixes the initial weights θ0. Raises ValueError, in plain words, for an unknown name, a spec beyond
    the limits, or an architecture that is not built for the data set's kind (a CNN on 2-D points).
    """
    ds = _as_dataset(dataset)
    problems = model_problems(name, ds)
    if problems:
        raise ValueError(" ".join(problems))
    arch = built_architecture(name, ds.input_shape)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # layers initialise themselves from the global generator: seed it, then restore
    try:
        model = _build(arch, ds)
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) for every Linear / Conv layer, in forward order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHTED)]


def is_language_model(model: nn.Module) -> bool:
    """True for the GPT: its output is a head tied to the token embedding, and it reads token ids."""
    last = list(model.named_children())[-1] if isinstance(model, nn.Sequential) and len(model) else None
    return last is not None and hasattr(last[1], "tied_weight")


def output_layer_name(model: nn.Module) -> str:
    """Name of the layer that makes the outputs: the last weighted layer (a classifier's), or a GPT's tied ``head``,
    which reads the token embedding's weight and is no Linear layer: nothing that prunes or quantizes Linear layers
    reaches it, and no hidden layer is mistaken for the output layer."""
    if is_language_model(model):
        return list(model.named_children())[-1][0]
    return weighted_layers(model)[-1][0]


def summary(model: nn.Module, input_shape: tuple[int, ...], bytes_per_param: int = 4) -> dict:
    """Layer table of ``model``: output shape, weight and bias counts, and size in bytes.

    Returns ``{"layers": [row, ...], "total_params": int, "total_bytes": int}`` where each row has
    ``name``, ``type``, ``output_shape``, ``weights``, ``biases``, ``params`` and ``bytes``. A child with layers inside
    (a GPT's block) counts all their parameters; a GPT reads token ids, fed here as zeros of its ``input_dtype``.
    """
    rows = []
    children = list(model.named_children())
    dtype = getattr(children[0][1], "input_dtype", torch.float32) if children else torch.float32
    x = torch.zeros(1, *input_shape, dtype=dtype)
    with torch.no_grad():
        for name, module in children:
            x = module(x)
            params = list(module.named_parameters())
            nb = sum(p.numel() for n, p in params if n.rsplit(".", 1)[-1] == "bias")
            nw = sum(p.numel() for _, p in params) - nb
            rows.append(dict(name=name, type=type(module).__name__, output_shape=tuple(x.shape[1:]),
                             weights=nw, biases=nb, params=nw + nb, bytes=(nw + nb) * bytes_per_param))
    total = sum(r["params"] for r in rows)
    return {"layers": rows, "total_params": total, "total_bytes": total * bytes_per_param}


def predictor(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """``model`` as a function ``points (N, features) float32 -> predicted class (N,)``."""
    def predict(points: np.ndarray) -> np.ndarray:
        dev = next(model.parameters()).device
        with torch.no_grad():
            return model(torch.from_numpy(points).to(dev)).argmax(1).cpu().numpy()

    return predict


def decision_grid(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, steps: int = 120,
                  pad: float = 0.5) -> dict:
    """The predicted class over a ``steps`` × ``steps`` grid around the 2-D points ``x`` (``pad`` beyond their
    range): {"x": grid xs, "y": grid ys, "z": (steps, steps) classes, rows along y}."""
    xs = np.linspace(x[:, 0].min() - pad, x[:, 0].max() + pad, steps)
    ys = np.linspace(x[:, 1].min() - pad, x[:, 1].max() + pad, steps)
    gx, gy = np.meshgrid(xs, ys)
    z = predict(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)).reshape(gx.shape)
    return {"x": xs, "y": ys, "z": z}
