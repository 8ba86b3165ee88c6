"""The architecture list in a ``.clab`` file's JSON header: written from a network, checked, built back.

Han, Mao & Dally 2016 (*Deep Compression*) store only weights; a file that ``han_format.load`` turns back into a
network without a data set also needs the layer list. It is plain JSON (no pickle): one ``[name, type,
arguments…]`` per child of an ``nn.Sequential``, for the layer types below only, with exactly the settings listed
(docs/FORMAT.md, "Header"). Anything else is refused when saving, because a setting the list cannot say (a
max-pool's padding, a dilation) would load as a different network.

``check_spec`` reads a list from a file without building anything: every type, argument count and value is
checked, and the layers' parameters are counted and capped (``MAX_PARAMETERS``) *before* any module exists, so a
forged header declaring ``Linear(10**9, 10**9)`` is refused in microseconds, not after a terabyte allocation.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

EXTENSION = ".clab"
MAX_LAYERS = 1024  # layers in one file: far above any network here, and a bound on modules built from a header
MAX_INT = 2 ** 31 - 1  # any size, kernel, stride or padding (torch's int32 sizes)
MAX_PARAMETERS = 2 ** 24  # weights + biases, 64 MiB of float32: 8× the lab's largest model, all a forged header gets
WEIGHTED = ("Linear", "Conv1d", "Conv2d")
# the arguments each type stores, in order (docs/FORMAT.md); "bias" is 1 or 0, "padding" may be 0, the rest ≥ 1
ARGS = {"Linear": ("in", "out", "bias"),
        "Conv1d": ("in", "out", "kernel", "stride", "padding", "bias"),
        "Conv2d": ("in", "out", "kernel", "stride", "padding", "bias"),
        "MaxPool1d": ("kernel", "stride"), "MaxPool2d": ("kernel", "stride"),
        "ReLU": (), "Flatten": ()}
_RESERVED = frozenset(dir(nn.Sequential()))  # names add_module refuses: "forward", "training", "_modules"...


@dataclass(frozen=True)
class Layer:
    """One checked entry of the list: the weight's shape and bias length (None, 0 for unweighted layers)."""

    name: str
    kind: str
    args: tuple[int, ...]
    weight: tuple[int, ...] | None
    bias: int


def _one(v, what: str) -> int:
    """An int, or a tuple of equal ints (a square kernel), as one int."""
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(set(t)) != 1 or not isinstance(t[0], int):
        raise ValueError(f"Cannot describe {what} = {v!r}: only square, whole-number settings are stored.")
    return t[0]


def arch_spec(model: nn.Module) -> list[list]:
    """The network as a JSON-ready layer list: [name, type, arguments...] per child of an ``nn.Sequential``.

    Linear: in, out, bias (1/0). Conv1d/Conv2d: in, out, kernel, stride, padding, bias (square, no groups,
    dilation or padding mode). MaxPool1d/2d: kernel, stride (no padding, dilation, ceil_mode or return_indices).
    ReLU, Flatten (the default dims): none. Exact types only: a subclass may compute something else. Anything
    else raises ValueError naming the layer.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"Only nn.Sequential models are stored (got {type(model).__name__}).")
    spec = []
    for name, m in model.named_children():
        kind = type(m).__name__
        if type(m) is nn.Linear:
            spec.append([name, kind, m.in_features, m.out_features, int(m.bias is not None)])
        elif type(m) in (nn.Conv1d, nn.Conv2d):
            if m.groups != 1 or _one(m.dilation, f"{name}.dilation") != 1 or m.padding_mode != "zeros":
                raise ValueError(f"Layer {name}: only plain convolutions (no groups, dilation or padding mode).")
            spec.append([name, kind, m.in_channels, m.out_channels, _one(m.kernel_size, f"{name}.kernel_size"),
                         _one(m.stride, f"{name}.stride"), _one(m.padding, f"{name}.padding"),
                         int(m.bias is not None)])
        elif type(m) in (nn.MaxPool1d, nn.MaxPool2d):
            # the file stores kernel and stride only: any other setting would load as a different pooling
            if (_one(m.padding, f"{name}.padding") != 0 or _one(m.dilation, f"{name}.dilation") != 1
                    or m.ceil_mode or m.return_indices):
                raise ValueError(f"Layer {name}: a {EXTENSION} file stores max-pooling with padding 0, dilation 1, "
                                 "ceil_mode and return_indices off; this one differs, so it cannot be stored.")
            spec.append([name, kind, _one(m.kernel_size, f"{name}.kernel_size"), _one(m.stride, f"{name}.stride")])
        elif type(m) is nn.Flatten and (m.start_dim, m.end_dim) == (1, -1) or type(m) is nn.ReLU:
            spec.append([name, kind])
        else:
            raise ValueError(f"Layer {name} ({kind}) cannot be stored in a {EXTENSION} file.")
    check_spec(spec, "The model")  # save refuses what load would refuse (too many layers or parameters)
    return spec


def _invalid(source: str, entry, why: str) -> ValueError:
    return ValueError(f"{source} is invalid: its architecture entry {str(entry)[:80]} {why}.")


def check_spec(spec, source: str = "The file") -> list[Layer]:
    """The checked layers of a layer list, built from nothing: raises ValueError ("invalid") for an unknown type,
    a wrong argument count, a non-integer or out-of-range value, a bad or repeated name, more than ``MAX_LAYERS``
    layers or more than ``MAX_PARAMETERS`` parameters in all."""
    if not isinstance(spec, list) or len(spec) > MAX_LAYERS:
        raise ValueError(f"{source} is invalid: its architecture must be a list of at most {MAX_LAYERS:,} layers.")
    layers, names, total = [], set(), 0
    for entry in spec:
        if not (isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str)):
            raise _invalid(source, entry, "is not [name, type, arguments…]")
        name, kind, args = entry[0], entry[1], entry[2:]
        if not name or "." in name or name in names or name in _RESERVED:
            raise _invalid(source, entry, "has an empty, dotted, repeated or reserved layer name")
        if not isinstance(kind, str) or kind not in ARGS:
            raise _invalid(source, entry, f"has an unknown layer type {str(kind)[:40]!r} (the types that can be "
                                          f"read: {', '.join(ARGS)})")
        if len(args) != len(ARGS[kind]):
            raise _invalid(source, entry,
                           f"needs {len(ARGS[kind])} arguments ({', '.join(ARGS[kind]) or 'none'})")
        for arg, v in zip(ARGS[kind], args):
            least, most = {"bias": (0, 1), "padding": (0, MAX_INT)}.get(arg, (1, MAX_INT))
            if type(v) is not int or not least <= v <= most:  # bool is no size (type(True) is bool, not int)
                raise _invalid(source, entry,
                               f"has {arg} = {str(v)[:20]}, not a whole number from {least} to {most:,}")
        names.add(name)
        weight, bias = None, 0
        if kind in WEIGHTED:
            k = () if kind == "Linear" else (args[2],) * (1 if kind == "Conv1d" else 2)
            weight, bias = (args[1], args[0], *k), args[1] * args[-1]
            count = 1
            for d in weight:
                count *= d  # exact (Python ints): no overflow to hide a gigantic layer
            total += count + bias
            if total > MAX_PARAMETERS:
                raise _invalid(source, entry, f"brings the network above {MAX_PARAMETERS:,} parameters, the "
                                              f"most a {EXTENSION} file may declare")
        layers.append(Layer(name, kind, tuple(args), weight, bias))
    return layers


def build_arch(spec: list, device: str | torch.device | None = None) -> nn.Sequential:
    """The network ``arch_spec`` described, after ``check_spec``; freshly initialised (the global random state is
    left untouched), or on ``device="meta"`` with no storage at all, for ``load`` to assign the file's tensors."""
    makers = {"Linear": lambda a: nn.Linear(a[0], a[1], bias=bool(a[2])),
              "Conv1d": lambda a: nn.Conv1d(a[0], a[1], a[2], stride=a[3], padding=a[4], bias=bool(a[5])),
              "Conv2d": lambda a: nn.Conv2d(a[0], a[1], a[2], stride=a[3], padding=a[4], bias=bool(a[5])),
              "MaxPool1d": lambda a: nn.MaxPool1d(a[0], a[1]), "MaxPool2d": lambda a: nn.MaxPool2d(a[0], a[1]),
              "ReLU": lambda a: nn.ReLU(), "Flatten": lambda a: nn.Flatten()}
    layers = check_spec(spec)
    with torch.random.fork_rng(devices=[]), torch.device(device or "cpu"):
        try:
            return nn.Sequential(OrderedDict((la.name, makers[la.kind](la.args)) for la in layers))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:  # e.g. a name torch reserves ("forward")
            raise ValueError(f"The file is invalid: its header's architecture cannot be built ({e}).") from None


__all__ = ["ARGS", "MAX_LAYERS", "MAX_PARAMETERS", "Layer", "arch_spec", "build_arch", "check_spec"]
