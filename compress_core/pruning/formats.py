"""What a pruned model really costs: bytes in several storage formats, and measured latency.

A mask alone saves nothing: zeros stored densely take as much memory and time as any other number.
Savings need a format that stores only the survivors -- and the survivors' *positions* cost memory
too (Han et al. 2016, "Deep Compression", store relative indices for this reason):

- dense float32: 4 bytes per parameter, pruned or not;
- CSR (compressed sparse row): 4-byte values + one column index per survivor (the smallest unsigned
  integer that holds the column count) + one row pointer per row (the smallest that holds nnz);
- bitmask: 4-byte values + 1 bit per position;
- ``torch.sparse_csr_tensor`` as PyTorch keeps it in memory (64-bit indices): measured with ``nbytes``;
- structured: the smaller dense model that ``shrink`` builds (for the GPT: fewer attention heads and MLP neurons,
  ``gpt_structured``).

Speed is *measured* (median of repeated timed runs), never derived from parameter counts: dense,
masked dense (same work), sparse CSR / COO matrix products (``torch.sparse.mm``), and the shrunk model.
Semi-structured 2:4 sparsity (``torch.sparse.to_sparse_semi_structured``) needs an NVIDIA GPU with
sparse tensor cores (Ampere or newer); ``semi_structured_benchmark`` measures it there and says why not
elsewhere.

Usage::

    size_report(model, mask)                          # rows: format, bytes, vs_dense
    latency_report(model, mask, (1, 8, 8), batch=512) # rows: variant, median_ms, p95_ms, vs_dense
"""
from __future__ import annotations

import copy
import statistics
import time
import warnings
from typing import Callable, Mapping

import torch
from torch import nn

from ..data import Dataset
from ..models import is_language_model, weighted_layers
from ..train import default_device, evaluate
from . import gpt_structured
from .masks import apply_mask
from .structured import kept_units, shrink


def uint_bytes(max_value: int) -> int:
    """Bytes of the smallest unsigned integer type (1, 2, 4 or 8) holding ``max_value``."""
    for b in (1, 2, 4, 8):
        if max_value < 256 ** b:
            return b
    raise ValueError("value too large")


def _rows(m: torch.Tensor) -> torch.Tensor:
    return m.reshape(m.shape[0], -1)


def csr_bytes(mask: torch.Tensor, value_bytes: int = 4) -> int:
    """Bytes of a CSR matrix holding the kept entries of ``mask`` (conv kernels flattened per filter)."""
    r = _rows(mask)
    nnz = int(r.count_nonzero())
    return nnz * value_bytes + nnz * uint_bytes(max(r.shape[1] - 1, 0)) + (r.shape[0] + 1) * uint_bytes(nnz)


def bitmask_bytes(mask: torch.Tensor, value_bytes: int = 4) -> int:
    """Bytes of the survivors' values plus one bit per position."""
    return int(mask.count_nonzero()) * value_bytes + -(-mask.numel() // 8)


def torch_csr_bytes(weight: torch.Tensor) -> int:
    """Measured bytes of ``weight`` converted to a PyTorch sparse CSR tensor (values + crow + col)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        c = _rows(weight.detach().cpu()).to_sparse_csr()
    return sum(t.numel() * t.element_size() for t in (c.values(), c.crow_indices(), c.col_indices()))


def torch_csr_layout_bytes(mask: torch.Tensor, value_bytes: int = 4) -> int:
    """What ``torch_csr_bytes`` measures, counted without building the tensor: values, int64 column
    indices and int64 row pointers (checked against real tensors in the tests)."""
    r = _rows(mask)
    nnz = int(r.count_nonzero())
    return nnz * (value_bytes + 8) + (r.shape[0] + 1) * 8


def structured_bytes(model: nn.Module, mask: Mapping[str, torch.Tensor], value_bytes: int = 4) -> int:
    """Bytes of ``shrink(model, mask)``'s parameters, counted without building it (ValueError if a layer
    would keep no neuron)."""
    keep = kept_units(model, mask)
    if not all(bool(k.any()) for k in keep.values()):
        raise ValueError("a layer would keep no neuron")
    total, prev_kept, prev_out = 0, None, 0
    for name, m in weighted_layers(model):
        out_kept = int(keep[name].sum())
        per_out = m.weight[0].numel()  # inputs × kernel positions of one output
        if prev_kept is not None:  # inputs fed by removed neurons of the previous layer go too
            per_out = per_out * prev_kept // prev_out
        total += out_kept * per_out + (out_kept if m.bias is not None else 0)
        prev_kept, prev_out = out_kept, m.weight.shape[0]
    return total * value_bytes


def size_report(model: nn.Module, mask: Mapping[str, torch.Tensor], value_bytes: int = 4, *,
                structured_mask: Mapping[str, torch.Tensor] | None = None, structured_label: str = "") -> list[dict]:
    """Bytes of the pruned model in each format. Biases (and any parameter without a mask) stay dense.

    Args:
        model, mask: the network and its mask.
        value_bytes: bytes per stored value (4 = float32).
        structured_mask: a neuron-level mask for the structured row instead of ``mask`` (to compare an
            unstructured mask with removing the same fraction of neurons); ``structured_label`` names it.

    Returns rows {format, bytes, vs_dense, detail, same_mask}; the structured row is absent when surgery
    is impossible (a layer would keep no neuron). ``same_mask`` is False for a row of ``structured_mask``.
    """
    params = dict(model.named_parameters())
    dense = sum(p.numel() for p in params.values()) * value_bytes
    weights = {f"{n}.weight": m.weight for n, m in weighted_layers(model)}
    rest = sum(p.numel() for k, p in params.items() if k not in weights) * value_bytes
    masks = {k: mask.get(k, torch.ones_like(w)).detach().cpu() for k, w in weights.items()}
    rows = [
        dict(format="dense float32", bytes=dense, detail="every parameter, 4 bytes, zeros included"),
        dict(format="masked dense", bytes=dense, detail="pruned weights are stored as zeros: no saving"),
        dict(format="CSR (values + indices)", bytes=rest + sum(csr_bytes(m, value_bytes) for m in masks.values()),
             detail="4-byte values, smallest-int column indices and row pointers"),
        dict(format="bitmask (values + 1 bit/weight)",
             bytes=rest + sum(bitmask_bytes(m, value_bytes) for m in masks.values()),
             detail="4-byte values and a 1-bit keep flag for every position"),
        dict(format="PyTorch sparse CSR (in memory)",
             bytes=rest + sum(torch_csr_layout_bytes(m, value_bytes) for m in masks.values()),
             detail="torch.sparse_csr_tensor: values + 64-bit column indices and row pointers"),
    ]
    smask = structured_mask if structured_mask is not None else mask
    # the GPT: a structured row when the mask cuts whole heads or MLP neurons (gpt_structured); a classifier: only
    # where every layer keeps a neuron (else no smaller network)
    if is_language_model(model):
        if gpt_structured.removes_units(model, smask):
            rows.append(dict(format="structured (smaller dense model)" + structured_label,
                             bytes=gpt_structured.shrunk_params(model, smask) * value_bytes,
                             detail="whole attention heads / MLP neurons removed by surgery",
                             same_mask=structured_mask is None))
    elif all(bool(k.any()) for k in kept_units(model, smask).values()):
        rows.append(dict(format="structured (smaller dense model)" + structured_label,
                         bytes=structured_bytes(model, smask, value_bytes),
                         detail="whole neurons/channels removed by surgery", same_mask=structured_mask is None))
    for r in rows:
        r["vs_dense"] = r["bytes"] / dense
        r.setdefault("same_mask", True)
    return rows


# ---- latency -------------------------------------------------------------------------------------
LATENCY_REPEATS = 30  # calls timed per latency everywhere in the lab (Compare, the lesson, Pruning's panel)


def time_call(fn: Callable[[], object], *, repeats: int = LATENCY_REPEATS, warmup: int = 3,
              device: torch.device | None = None) -> dict:
    """Median, 95th percentile and minimum wall time (ms) of ``repeats`` calls after ``warmup`` calls.

    On CUDA the device is synchronised around each call so the time covers the kernels, not just the
    launch.
    """
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return dict(median_ms=statistics.median(times), p95_ms=times[min(len(times) - 1, int(0.95 * len(times)))],
                min_ms=times[0], repeats=repeats)


def time_calls(fns: Mapping[str, Callable[[], object]], *, repeats: int = LATENCY_REPEATS, warmup: int = 3,
               device: torch.device | None = None) -> dict[str, dict]:
    """``time_call`` for several functions at once, interleaved: each round times one call of every function in
    turn, so a machine that gets busier or quieter during the measurement (other sessions on a shared server) slows
    every variant alike, and their ratio stays honest. Returns {name: time_call's dict}."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append((time.perf_counter() - t0) * 1000)
    out = {}
    for k, ts in times.items():
        ts.sort()
        out[k] = dict(median_ms=statistics.median(ts), p95_ms=ts[min(len(ts) - 1, int(0.95 * len(ts)))],
                      min_ms=ts[0], repeats=repeats)
    return out


class SparseLinear(nn.Module):
    """A Linear layer whose weight is a PyTorch sparse tensor (CSR or COO): y = W·xᵀ + b."""

    def __init__(self, linear: nn.Linear, mask: torch.Tensor | None, layout: str = "csr"):
        super().__init__()
        w = linear.weight.detach()
        w = w * mask.to(w) if mask is not None else w
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.weight = w.to_sparse_csr() if layout == "csr" else w.to_sparse().coalesce()
        self.bias = None if linear.bias is None else linear.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.device != x.device:  # plain attributes do not follow .to(device): move once, here
            self.weight = self.weight.to(x.device)
            self.bias = self.bias.to(x.device) if self.bias is not None else None
        y = torch.sparse.mm(self.weight, x.t()).t()
        return y + self.bias if self.bias is not None else y


def to_sparse_model(model: nn.Module, mask: Mapping[str, torch.Tensor], layout: str = "csr") -> nn.Module:
    """A copy of ``model`` whose Linear layers multiply with sparse weights (Conv layers stay dense)."""
    if layout not in ("csr", "coo"):
        raise ValueError("layout must be 'csr' or 'coo'.")
    out = copy.deepcopy(model)
    for name, module in list(out.named_children()):
        if isinstance(module, nn.Linear):
            setattr(out, name, SparseLinear(module, mask.get(f"{name}.weight"), layout))
    return out


@torch.inference_mode()
def latency_report(model: nn.Module, mask: Mapping[str, torch.Tensor], input_shape: tuple[int, ...], *,
                   batch: int = 512, repeats: int = 30, device: torch.device | None = None,
                   structured_mask: Mapping[str, torch.Tensor] | None = None, structured_label: str = "",
                   dataset: Dataset | None = None) -> list[dict]:
    """Measured forward latency of the pruned model in each form, on one random batch.

    ``structured_mask`` (a neuron-level mask) replaces ``mask`` for the shrunk variant, named with
    ``structured_label``, as in ``size_report``. With ``dataset``, each row also has ``test_acc``: the test
    accuracy of the very model timed (no fine-tuning), so a speed is never shown without what it costs.

    Returns rows {variant, median_ms, p95_ms, vs_dense, note[, test_acc]}; ``vs_dense`` is the ratio of medians
    measured in this one run, the variants timed in interleaved rounds (``time_calls``).
    """

    device = device or default_device()
    variants: list[tuple[str, nn.Module, str]] = [
        ("dense", copy.deepcopy(model), "the original model"),
        ("masked dense", apply_mask(model, mask), "same shapes, zeros multiplied like any number"),
    ]
    if is_language_model(model):  # token ids in; its Linear layers sit inside blocks, which sparse multiplication
        vocab = model.embed.tok.num_embeddings  # here does not rebuild; surgery cuts whole heads and MLP neurons
        x = torch.randint(0, vocab, (batch, *input_shape), generator=torch.Generator().manual_seed(0)).to(device)
        variants += [(name, None, "not built for the GPT's nested layers") for name in ("sparse CSR", "sparse COO")]
        smask = structured_mask if structured_mask is not None else mask
        label = "structured (shrunk)" + structured_label
        if gpt_structured.removes_units(model, smask):
            variants.append((label, gpt_structured.shrink_gpt(model, smask), "fewer heads / MLP neurons after surgery"))
        else:
            variants.append((label, None, "this mask cuts no whole head or MLP neuron: nothing to cut out"))
    else:
        x = torch.randn(batch, *input_shape, device=device)
        variants += [
            ("sparse CSR", to_sparse_model(model, mask, "csr"), "torch.sparse.mm on Linear layers (conv stays dense)"),
            ("sparse COO", to_sparse_model(model, mask, "coo"), "torch.sparse.mm on Linear layers (conv stays dense)"),
        ]
        try:
            small = shrink(model, structured_mask if structured_mask is not None else mask)
            variants.append(("structured (shrunk)" + structured_label, small, "smaller dense layers after surgery"))
        except ValueError as e:
            variants.append(("structured (shrunk)" + structured_label, None, str(e)))
    nets = {name: net.to(device).eval() for name, net, _ in variants if net is not None}
    timed = time_calls({name: (lambda net=net: net(x)) for name, net in nets.items()}, repeats=repeats, device=device)
    rows = []
    for name, net, note in variants:
        if net is None:
            rows.append(dict(variant=name, median_ms=None, p95_ms=None, note=note))
            continue
        t = timed[name]
        rows.append(dict(variant=name, median_ms=t["median_ms"], p95_ms=t["p95_ms"], note=note))
        if dataset is not None:
            rows[-1]["test_acc"] = evaluate(nets[name], dataset.x_test, dataset.y_test).accuracy
    dense_ms = rows[0]["median_ms"]
    for r in rows:
        r["vs_dense"] = r["median_ms"] / dense_ms if r["median_ms"] is not None else None
    return rows


@torch.inference_mode()
def semi_structured_benchmark(rows: int = 4096, cols: int = 4096, batch: int = 512, repeats: int = 50) -> dict:
    """Dense fp16 vs 2:4 semi-structured fp16 matrix product on a CUDA GPU with sparse tensor cores.

    Returns {available: bool, reason or dense_ms, sparse_ms, speedup}. Only a GPU of compute capability
    8.0 or newer (Ampere+) has the hardware; anywhere else ``available`` is False with the reason.
    """
    if not torch.cuda.is_available():
        return dict(available=False, reason="no CUDA GPU here: 2:4 sparse tensor cores are GPU hardware")
    major, _ = torch.cuda.get_device_capability()
    if major < 8:
        return dict(available=False, reason="this GPU predates sparse tensor cores (needs compute capability 8.0+)")
    try:
        from torch.sparse import to_sparse_semi_structured
        dev = torch.device("cuda")
        w = torch.randn(rows, cols, device=dev, dtype=torch.half)
        keep = torch.tensor([1, 1, 0, 0], device=dev, dtype=torch.half).repeat(rows, cols // 4)
        w = w * keep
        x = torch.randn(batch, cols, device=dev, dtype=torch.half)
        ws = to_sparse_semi_structured(w)
        dense = time_call(lambda: torch.nn.functional.linear(x, w), repeats=repeats, device=dev)
        sparse = time_call(lambda: torch.nn.functional.linear(x, ws), repeats=repeats, device=dev)
        return dict(available=True, shape=f"{batch}×{cols} · ({rows}×{cols})ᵀ fp16",
                    dense_ms=dense["median_ms"], sparse_ms=sparse["median_ms"],
                    speedup=dense["median_ms"] / sparse["median_ms"])
    except Exception as e:  # kernels missing in this build, unsupported shape...
        return dict(available=False, reason=f"semi-structured kernels unavailable: {e}")
