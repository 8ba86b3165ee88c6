"""What the lab offers, readable without PyTorch: the built-in data sets' shapes, the model names, their limits
and parameter counts.

The sidebar and the start page need only this (and ``compress_core.settings``), so a server shows its first page
without importing PyTorch, about 0.7 s of a warm start. ``compress_core.data`` and ``compress_core.models`` build
the tensors and networks on top of it and re-export these names.

Usage::

    data_info("digits").input_shape          # (1, 8, 8)
    model_problems("cnn:8k3-16k5", "moons")  # ['A CNN needs images or signals; moons is points. Use an MLP.']
    param_count(parse_model("mlp"), data_info("digits"))  # 52,410
    parse_model("gpt:4x128h4")                # a GPT of 4 blocks, 128 wide, 4 attention heads
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# "features": an uploaded table that is none of the others; "text": token ids (N, context) whose targets are the
# next tokens (N, context), for a language model
KINDS = ("image", "sequence", "points", "features", "text")


@dataclass(frozen=True)
class DataInfo:
    """A data set as the catalog knows it: no tensors, only what choosing a model needs."""

    name: str
    kind: str  # one of KINDS
    description: str
    input_shape: tuple[int, ...]
    num_classes: int


DATASETS: dict[str, DataInfo] = {
    d.name: d
    for d in (
        DataInfo("digits", "image", "scikit-learn's 8×8 handwritten digits: 1,797 images, 10 classes.", (1, 8, 8), 10),
        DataInfo("mnist1d", "sequence", "MNIST-1D (Greydanus 2020): digit templates as 40-step 1-D signals with "
                 "shifts, scaling and noise; 4,000 train / 1,000 test.", (1, 40), 10),
        DataInfo("moons", "points", "Two interleaving half-moons in 2-D with noise: 1,000 points.", (2,), 2),
        DataInfo("spirals", "points", "Three interleaved noisy spirals in 2-D: 1,200 points.", (2,), 3),
        # (compress_core.text: CONTEXT characters at once, a vocabulary of 97 symbols; tests check these numbers)
        DataInfo("pydoc", "text", "Python's own help texts (pydoc's topics, from the standard library): about "
                 "465,000 characters, read one character at a time; 90 % train, then 5 % validation and 5 % test "
                 "text never seen in training.", (64,), 97),
    )
}

# Published test accuracies of the same kind of model on the same data set, shown beside ours as "published"
# (never as our result). Only MNIST-1D has a paper baseline; scikit-learn's digits and the 2-D sets do not.
PUBLISHED_BASELINES: dict[str, dict] = {
    "mnist1d": dict(citation="Greydanus 2020, “Scaling down deep learning” (MNIST-1D), README baselines",
                    accuracy={"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}),
}

# What an uploaded file may hold (compress_core.uploads enforces it; the sidebar states it). Every count and size a
# file declares (a zip's directory and member sizes, a safetensors or .npy header, a pickle, a CSV's header and lines)
# is checked against these before anything is unpacked or allocated: see the bounds in compress_core.uploads.
UPLOAD_LIMITS = {
    "bytes": 20 * 1024 * 1024,  # one file
    "rows": 50_000,
    "columns": 4_096,
    "min_rows": 30,
    "min_per_class": 3,  # every class in the training, validation and test splits
    "classes": 100,
    "npz_uncompressed": 200 * 1024 * 1024,  # an NPZ's members, as their zip entries declare them
    "values": 10_000_000,  # rows × features: 40 MB of float32
    "csv_line_bytes": 1024 * 1024,  # one line of a CSV (4,096 numbers need about 100 KB)
    "npy_header_bytes": 10_000,  # one .npy header in an NPZ (numpy's own default)
    "zip_members": 2_048,  # entries of a .pt or .npz archive
    "zip_directory_bytes": 512 * 1024,  # its central directory (about 250 bytes an entry)
    "weights_unpacked": 40 * 1024 * 1024,  # a .pt's entries, as declared (torch.save stores them uncompressed)
    "pickle_bytes": 256 * 1024,  # a .pt's data.pkl (a state_dict needs about 110 bytes a tensor)
    "header_bytes": 1024 * 1024,  # a safetensors JSON header (about 100 bytes a tensor)
    "tensors": 1_024,  # tensors in a weights file
    "tensor_dims": 8,  # dimensions of one tensor
    "weight_values": 10_000_000,  # numbers in all of a weights file's tensors: 40 MB of float32
}


def is_uploaded(name: str) -> bool:
    """True for an uploaded data set: results derived from it are never written to the disk cache."""
    return name.startswith("upload-")


def list_datasets() -> list[str]:
    """Names of the built-in data sets, in display order."""
    return list(DATASETS)


def data_info(dataset) -> DataInfo:
    """The catalog entry of a data set: a built-in name, an uploaded one (loaded through ``compress_core.data``,
    which imports PyTorch: an upload has been read by then), or a loaded ``Dataset``."""
    if not isinstance(dataset, str):
        return DataInfo(dataset.name, dataset.kind, dataset.description, tuple(dataset.input_shape),
                        dataset.num_classes)
    if dataset in DATASETS:
        return DATASETS[dataset]
    if is_uploaded(dataset):
        from .data import load_dataset

        return data_info(load_dataset(dataset))
    raise ValueError(f"Unknown data set {dataset!r}. Valid data sets: {', '.join(DATASETS)}.")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    kinds: tuple[str, ...]  # data kinds the architecture is built for


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("mlp", "LeNet-300-100: two hidden fully connected layers of 300 and 100 ReLU units.",
                  ("image", "sequence", "points", "features")),
        ModelSpec("cnn", "LeNet-5 style: conv → pool → conv → pool, then 120 → 84 → classes.",
                  ("image", "sequence")),
        ModelSpec("tiny", "A tiny MLP with two hidden layers of 32 units, for 2-D points.", ("points",)),
        ModelSpec("gpt", "A tiny GPT (nanoGPT style): 2 transformer blocks 96 wide with 4 attention heads, "
                  "predicting the next character.", ("text",)),
    )
}


# Limits of architectures sized by hand: what a 2-core laptop trains in seconds (and a class's server survives).
MAX_HIDDEN_LAYERS, MAX_WIDTH, MIN_WIDTH = 4, 1024, 2
MAX_CONV_STAGES, MAX_CHANNELS, KERNELS = 3, 64, (1, 3, 5, 7)
MAX_PARAMS = 1_000_000
MAX_MODEL_NAME = 64  # characters of a model name ('mlp:1024-1024-1024-1024' is 23): a link or recipe may hold any
CNN_HEAD = (120, 84)
# A GPT learns from every character of its windows: the default's 239 k parameters train in a minute on one core,
# and the time grows with the parameters (MAX_PARAMS: about four minutes).
MAX_GPT_LAYERS, MAX_GPT_WIDTH, MIN_GPT_WIDTH, MAX_GPT_HEADS = 8, 384, 8, 16
DEFAULT_GPT = (2, 96, 4)  # layers, width, heads: 239 k parameters (the recipe in settings says why this size)
FAMILY_NAMES = {"mlp": "An MLP", "cnn": "A CNN", "gpt": "A GPT"}


@dataclass(frozen=True)
class Architecture:
    """A parsed model name: the family ("mlp", "cnn" or "gpt") and its sizes."""

    family: str
    hidden: tuple[int, ...] = ()  # MLP hidden widths
    convs: tuple[tuple[int, int], ...] = ()  # CNN (channels, kernel size) per stage
    layers: int = 0  # GPT transformer blocks
    width: int = 0  # GPT residual stream width (embedding size)
    heads: int = 0  # GPT attention heads per block (width / heads wide each)

    @property
    def name(self) -> str:
        if self.family == "mlp":
            return "mlp:" + "-".join(map(str, self.hidden))
        if self.family == "gpt":
            return f"gpt:{self.layers}x{self.width}h{self.heads}"
        return "cnn:" + "-".join(f"{c}k{k}" for c, k in self.convs)


_SPEC_HELP = ("'mlp:256-128' (hidden widths), 'cnn:8k3-16k5' (channels and kernel per conv stage) or 'gpt:4x128h4' "
              "(layers x width, attention heads)")


def parse_model(name: str) -> Architecture:
    """The architecture a model name stands for: a registered name or a spec (``mlp:256-128``, ``cnn:8k3-16k5``,
    ``gpt:4x128h4``). ValueError in plain words for anything else."""
    if not isinstance(name, str):
        raise ValueError(f"A model name must be text (got {type(name).__name__}).")
    if len(name) > MAX_MODEL_NAME:  # before splitting it into sizes
        raise ValueError(f"A model name has at most {MAX_MODEL_NAME} characters (this one has {len(name):,}).")
    if name == "mlp":
        return Architecture("mlp", (300, 100))
    if name == "tiny":
        return Architecture("mlp", (32, 32))
    if name == "cnn":
        return Architecture("cnn", convs=((6, 3), (16, 3)))  # the 1-D variant widens it, see built_architecture
    if name == "gpt":
        return Architecture("gpt", layers=DEFAULT_GPT[0], width=DEFAULT_GPT[1], heads=DEFAULT_GPT[2])
    family, sep, sizes = name.partition(":")
    if not sep or family not in ("mlp", "cnn", "gpt") or not sizes:
        raise ValueError(f"Unknown model {name!r}. Use one of {', '.join(REGISTRY)}, or size one yourself: "
                         f"{_SPEC_HELP}.")
    parts = sizes.split("-")
    try:
        if family == "mlp":
            return Architecture("mlp", tuple(int(p) for p in parts))
        if family == "gpt":
            layers, _, rest = sizes.lower().partition("x")
            width, _, heads = rest.partition("h")
            if not (layers.isdigit() and width.isdigit() and heads.isdigit()):
                raise ValueError
            return Architecture("gpt", layers=int(layers), width=int(width), heads=int(heads))
        convs = []
        for p in parts:
            c, k, *rest = p.lower().split("k")
            if rest:
                raise ValueError
            convs.append((int(c), int(k)))
        return Architecture("cnn", convs=tuple(convs))
    except ValueError:
        example = {"mlp": "'mlp:256-128'", "cnn": "'cnn:8k3-16k5' (8 channels, kernel 3; 16, kernel 5)",
                   "gpt": "'gpt:4x128h4' (4 layers, 128 wide, 4 attention heads)"}[family]
        raise ValueError(f"Cannot read the sizes in {name!r}: write them like {example}.") from None


def built_architecture(name: str, input_shape: tuple[int, ...]) -> Architecture:
    """The architecture ``build_model`` builds for ``name`` on inputs of ``input_shape``: the registered CNN on
    1-D signals is LeNet-5's 1-D cousin, with wider kernels and channels."""
    arch = parse_model(name)
    if name == "cnn" and len(input_shape) == 2:
        return Architecture("cnn", convs=((16, 5), (32, 5)))
    return arch


def gpt_block_params(width: int) -> int:
    """Weights and biases of one transformer block: two LayerNorms (4·w), the q, k, v and output projections
    (4·(w² + w)), and the MLP w -> 4w -> w (8·w² + 5·w): 12·w² + 13·w."""
    return 12 * width * width + 13 * width


def param_count(arch: Architecture, info: DataInfo) -> int:
    """Weights and biases of ``arch`` built for ``info``, counted from the shapes (``build_model`` builds exactly
    these layers: conv stages keep the length with padding k // 2, each 2× max-pool halves it, rounding down; a
    GPT's token and position embeddings, its blocks and its final LayerNorm, the output head being the token
    embedding itself)."""
    def dense(widths) -> int:
        return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))

    if arch.family == "mlp":
        return dense((math.prod(info.input_shape), *arch.hidden, info.num_classes))
    if arch.family == "gpt":
        w = arch.width
        return (info.num_classes + info.input_shape[0]) * w + arch.layers * gpt_block_params(w) + 2 * w
    channels, sizes, n = info.input_shape[0], list(info.input_shape[1:]), 0
    for c, k in arch.convs:
        n += c * channels * k ** len(sizes) + c
        channels, sizes = c, [s // 2 for s in sizes]
    return n + dense((channels * math.prod(sizes), *CNN_HEAD, info.num_classes))


def weighted_layer_count(arch: Architecture) -> int:
    """Layers that carry parameters (Linear and Conv): hidden layers and the output layer of an MLP; a CNN's conv
    stages, its dense head and the output layer; a GPT's six Linear layers per block (q, k, v, the output
    projection and the MLP's two; its tied head is the embedding, not a Linear layer)."""
    if arch.family == "gpt":
        return 6 * arch.layers
    return len(arch.hidden) + 1 if arch.family == "mlp" else len(arch.convs) + len(CNN_HEAD) + 1


def _kind_problem(arch: Architecture, ds: DataInfo) -> str | None:
    """Why ``arch``'s family cannot read ``ds``'s kind of data at all, or None."""
    if (arch.family == "gpt") == (ds.kind == "text"):
        return None
    if arch.family == "gpt":
        return (f"A GPT needs text; {ds.name} is {ds.kind}. Use "
                f"{'an MLP or a CNN' if ds.kind in ('image', 'sequence') else 'an MLP'}.")
    reads = "images, signals, points or tables" if arch.family == "mlp" else "images or signals"
    return (f"{FAMILY_NAMES[arch.family]} needs {reads}; {ds.name} is text (characters to predict one after "
            "another). Use a GPT.")


def model_problems(name: str, dataset) -> list[str]:
    """What stops ``name`` from being built for ``dataset`` (a name, a ``DataInfo`` or a loaded ``Dataset``), in
    plain words (empty: it can be built)."""
    try:
        arch = parse_model(name)
    except ValueError as e:
        return [str(e)]
    ds = data_info(dataset)
    kind_problem = _kind_problem(arch, ds)
    if kind_problem:
        return [kind_problem]
    if name in REGISTRY:
        return [] if ds.kind in REGISTRY[name].kinds else [
            f"Model {name!r} is not built for {ds.kind} data ({ds.name}). Models for {ds.name}: "
            f"{', '.join(list_models(ds))}."]
    out = []
    if arch.family == "mlp":
        if not 1 <= len(arch.hidden) <= MAX_HIDDEN_LAYERS:
            out.append(f"An MLP here has 1 to {MAX_HIDDEN_LAYERS} hidden layers (got {len(arch.hidden)}).")
        if any(not MIN_WIDTH <= w <= MAX_WIDTH for w in arch.hidden):
            out.append(f"Each hidden layer has {MIN_WIDTH} to {MAX_WIDTH} units (got {list(arch.hidden)}).")
    elif arch.family == "gpt":
        if not 1 <= arch.layers <= MAX_GPT_LAYERS:
            out.append(f"A GPT here has 1 to {MAX_GPT_LAYERS} layers (got {arch.layers}).")
        if not MIN_GPT_WIDTH <= arch.width <= MAX_GPT_WIDTH:
            out.append(f"A GPT here is {MIN_GPT_WIDTH} to {MAX_GPT_WIDTH} wide (got {arch.width}).")
        if not 1 <= arch.heads <= MAX_GPT_HEADS:
            out.append(f"A GPT here has 1 to {MAX_GPT_HEADS} attention heads (got {arch.heads}).")
        elif arch.width % arch.heads:
            out.append(f"The width is split evenly between the heads: {arch.width} is not a multiple of "
                       f"{arch.heads}.")
    else:
        if ds.kind not in ("image", "sequence"):
            out.append(f"A CNN needs images or signals; {ds.name} is {ds.kind}. Use an MLP.")
            return out
        if not 1 <= len(arch.convs) <= MAX_CONV_STAGES:
            out.append(f"A CNN here has 1 to {MAX_CONV_STAGES} conv stages (got {len(arch.convs)}).")
        if any(not 1 <= c <= MAX_CHANNELS for c, _ in arch.convs):
            out.append(f"Each conv stage has 1 to {MAX_CHANNELS} channels.")
        if any(k not in KERNELS for _, k in arch.convs):
            out.append(f"Kernel sizes are odd: one of {', '.join(map(str, KERNELS))}.")
        side = min(ds.input_shape[1:])
        if side >> len(arch.convs) < 1:
            out.append(f"{len(arch.convs)} stages of 2× pooling shrink a {side}-wide input to nothing: use at most "
                       f"{max(side.bit_length() - 1, 0)}.")
    if not out:
        n = param_count(arch, ds)
        if n > MAX_PARAMS:
            out.append(f"This network has {n:,} parameters; the limit here is {MAX_PARAMS:,} (it must train in "
                       f"{'minutes' if arch.family == 'gpt' else 'seconds'} on a laptop CPU). Make it narrower or "
                       "shallower.")
    return out


def list_models(dataset=None) -> list[str]:
    """Registered model names; with a data set (a name, ``DataInfo`` or ``Dataset``), only those built for its
    kind."""
    if dataset is None:
        return list(REGISTRY)
    kind = data_info(dataset).kind
    return [n for n, s in REGISTRY.items() if kind in s.kinds]
