"""Run a ``Recipe`` end to end and measure the result; cached by recipe, in memory and on disk.

``run(recipe)`` loads the baseline, applies the steps in order and returns a ``Result``: test accuracy with its
binomial standard error, loss, weights kept, stored bytes in a named format (``accounting``), the ratio to the
float32 network, measured latency (the float baseline, the shrunk dense network after structured pruning, the
integer-only program after full quantization), an energy estimate per inference, a per-layer breakdown and, for
2-D data, the decision boundary.

On the GPT (``models.is_language_model``) the score is bits per character on the held-out windows (``metric`` is
"bpc"), with its standard error and its difference from the float baseline paired window by window; ``test_acc``
is the next-character accuracy; costs are per token and latency is one context window of tokens (batch 1). The
.clab file and the integer-only engine do not apply to it: ``file_note`` and ``integer_note`` say so.

``compressed(recipe)`` returns the compressed network itself (what ``run`` measures), for the drop debugger.

Every run is computed on one torch thread, whatever the caller's setting, so that the same recipe gives the same
numbers in a notebook, in the app, in a CLI sweep and on a Ray worker (matmul reductions differ in their last bits
between thread counts, and fine-tuning amplifies that). Results are JSON, cached as
``<cache>/runs/<RESULT_VERSION>-<recipe hash>.json``.

Usage::

    res = run(PRESETS["prune 90 % + int4"]("digits", "mlp"))
    res.test_acc, res.bytes, res.ratio, res.latency_ms, res.energy_pj
    net = compressed(recipe).model     # the network it measured (a fresh copy)
"""
from __future__ import annotations

import base64
import copy
import dataclasses
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..baselines import cache_lock, cache_root, get_baseline
from ..data import Dataset, is_uploaded, load_dataset
from ..deep_compression import share_layers, tune_shared
from ..export import han_format
from ..integer import ConversionError, integer_accuracy, to_integer
from ..lm.variants import score_with_metrics, window_bpc
from ..models import decision_grid, is_language_model, predictor
from ..pruning import apply_mask, prune_with, shrink
from ..pruning.formats import LATENCY_REPEATS, time_call
from ..quant import quant_layers, quantization_aware_training, quantize_model
from ..quant.analysis import qparams_bits
from ..recover.distill import distill
from ..stats import standard_error
from ..train import TrainConfig, evaluate, torch_threads, train
from .accounting import layer_costs, summarize
from .recipe import TERMINAL, Distill, FineTune, Prune, Quantize, Recipe, Share

__all__ = ["RESULT_VERSION", "Compressed", "Result", "cached", "compressed", "forget", "run", "standard_error"]

RESULT_VERSION = 3  # part of every cached run's file name: bump it when Result or the pipeline changes
RUN_THREADS = 1
BOUNDARY_STEPS = 70

Progress = Callable[[float, str], None]


@dataclass
class Result:
    """What one recipe gives. Plain values only: it round-trips through JSON (disk cache, Ray, downloads)."""

    recipe: dict
    title: str
    describe: str
    test_acc: float
    test_acc_se: float
    test_loss: float
    n_test: int
    baseline_acc: float
    weights: int
    kept: int
    bytes: int
    float32_bytes: int
    format: str
    macs: int
    energy_pj: float
    compute_pj: float
    memory_pj: float
    float_energy_pj: float
    latency_ms: dict  # {"float": ms, "shrunk": ms or None, "integer": ms or None}, one inference (batch 1)
    integer_acc: float | None
    integer_note: str
    layers: list[dict]
    boundary: dict | None = None  # {"x": [...], "y": [...], "z": [[class, ...], ...]} for 2-D data
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # the compressed weights as a .clab file (export.han_format), base64, when they are shared or on a symmetric
    # grid; its length, and the accuracy of the network loaded back from it (activations in float)
    file_b64: str | None = None
    file_bytes: int | None = None
    file_acc: float | None = None
    file_note: str = ""  # why there is no file, when the format does not apply (the GPT)
    # a language model's score: "bpc" (bits per character, lower is better; test_acc is then the next-character
    # accuracy); "accuracy" for the classifiers. Bits per character with its standard error over the test windows,
    # the float baseline's, and the difference from it paired window by window with that difference's s.e.
    metric: str = "accuracy"
    bpc: float | None = None
    bpc_se: float | None = None
    baseline_bpc: float | None = None
    bpc_diff: float | None = None
    bpc_diff_se: float | None = None

    @property
    def ratio(self) -> float:
        """float32 bytes / stored bytes: how many times smaller."""
        return self.float32_bytes / self.bytes

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.weights if self.weights else 0.0

    @property
    def is_lm(self) -> bool:
        """A language model's result: its score is bits per character (lower is better)."""
        return self.metric == "bpc"

    @property
    def score(self) -> float:
        """The number a page ranks by: test accuracy (higher is better) or bits per character (lower is better)."""
        return self.bpc if self.is_lm else self.test_acc

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def comparable(self) -> dict:
        """Everything but the measured times: equal for equal recipes wherever they ran."""
        d = self.to_dict()
        d.pop("latency_ms")
        d.pop("seconds")
        return d

    def row(self) -> dict:
        """One line of the runs table (a language model's: bits per character, per-token costs, no integer path)."""
        if self.is_lm:
            return {"variant": self.title, "recipe": self.describe, "bits / char": self.bpc, "± (s.e.)": self.bpc_se,
                    "Δ bits / char vs float": self.bpc_diff, "± Δ (paired s.e.)": self.bpc_diff_se,
                    "next-char accuracy": self.test_acc, "weights kept": self.kept_fraction,
                    "stored bytes": self.bytes, "× smaller": self.ratio, "format": self.format,
                    "float ms": self.latency_ms.get("float"), "shrunk ms": self.latency_ms.get("shrunk"),
                    "energy µJ": self.energy_pj / 1e6, "MACs / token": self.macs,
                    "hash": Recipe.from_dict(self.recipe).hash()}
        return {"variant": self.title, "recipe": self.describe, "test accuracy": self.test_acc,
                "± (s.e.)": self.test_acc_se, "weights kept": self.kept_fraction, "stored bytes": self.bytes,
                "× smaller": self.ratio, "format": self.format, "float ms": self.latency_ms.get("float"),
                "shrunk ms": self.latency_ms.get("shrunk"), "integer ms": self.latency_ms.get("integer"),
                "integer accuracy": self.integer_acc, "energy µJ": self.energy_pj / 1e6,
                "MACs": self.macs, ".clab bytes": self.file_bytes, ".clab accuracy": self.file_acc,
                "hash": Recipe.from_dict(self.recipe).hash()}

    def file(self) -> bytes | None:
        """The .clab file (``compress_core.export.han_format.load`` reads it), or None."""
        return base64.b64decode(self.file_b64) if self.file_b64 else None


# ---- caching ---------------------------------------------------------------------------------------------
_MEMORY: OrderedDict[str, Result] = OrderedDict()
_MEMORY_SIZE = 512
_GUARD = threading.Lock()


def _path(recipe: Recipe, cache_dir: Path | None) -> Path:
    return (cache_dir or cache_root()) / "runs" / f"{RESULT_VERSION}-{recipe.hash()}.json"


def _remember(key: str, res: Result) -> None:
    with _GUARD:
        _MEMORY[key] = res
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > _MEMORY_SIZE:
            _MEMORY.popitem(last=False)


def _on_disk(recipe: Recipe) -> bool:
    """Whether this recipe's result may be written to disk: never one derived from an upload."""
    return not (recipe.weights or is_uploaded(recipe.dataset))


def forget(needle: str) -> int:
    """Drop the in-memory results whose recipe mentions ``needle`` (an uploaded data set's name or weights'
    digest), e.g. when the session that uploaded it ends; how many were dropped."""
    with _GUARD:
        gone = [k for k, r in _MEMORY.items() if needle in json.dumps(r.recipe)]
        for k in gone:
            del _MEMORY[k]
    return len(gone)


def cached(recipe: Recipe, cache_dir: str | Path | None = None) -> Result | None:
    """The cached result of ``recipe`` (memory, then disk), or None. Never computes."""
    key = f"{cache_dir}:{recipe.hash()}"
    with _GUARD:
        if key in _MEMORY:
            return _MEMORY[key]
    if not _on_disk(recipe):
        return None
    path = _path(recipe, Path(cache_dir) if cache_dir else None)
    try:
        res = Result.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    _remember(key, res)
    return res


def run(recipe: Recipe, progress: Progress | None = None, *, use_cache: bool = True,
        cache_dir: str | Path | None = None) -> Result:
    """The ``Result`` of ``recipe``: from the cache if it ran before, else computed (and cached).

    Args:
        progress: ``progress(fraction, text)`` between steps (the app's heavy-run pool stops a run by raising
            from it).
        use_cache: False computes without reading or writing any cache.
        cache_dir: overrides the cache root (``$COMPRESS_LAB_CACHE`` or ~/.cache/compression-lab).

    Raises ValueError in plain words when a step cannot run (e.g. structured pruning that leaves a layer empty).
    """
    if not use_cache:
        return _compute(recipe, progress or (lambda f, t: None))
    hit = cached(recipe, cache_dir)
    if hit is not None:
        return retitled(hit, recipe)
    if not _on_disk(recipe):  # in memory only
        res = _compute(recipe, progress or (lambda f, t: None))
        _remember(f"{cache_dir}:{recipe.hash()}", res)
        return res
    path = _path(recipe, Path(cache_dir) if cache_dir else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(path.parent.parent / "locks" / f"run-{path.stem}"):  # another process may be computing it
        hit = cached(recipe, cache_dir)
        if hit is not None:
            return retitled(hit, recipe)
        res = _compute(recipe, progress or (lambda f, t: None))
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(res.to_dict(), f)
        os.replace(tmp, path)
    _remember(f"{cache_dir}:{recipe.hash()}", res)
    return res


def retitled(res: Result, recipe: Recipe) -> Result:
    """The cached result under this recipe's own name (the name is not part of the cache key)."""
    return res if res.title == recipe.title else dataclasses.replace(res, title=recipe.title, recipe=recipe.to_dict())


# ---- the pipeline ----------------------------------------------------------------------------------------
@dataclass
class _State:
    """The network as the steps leave it."""

    net: nn.Module  # the float network (pruned, shrunk, fine-tuned, shared)
    mask: dict | None = None
    final: nn.Module | None = None  # what is evaluated: the fake-quantized copy after Quantize, else ``net``
    value_bits: int = 32
    side_bits: dict = field(default_factory=dict)
    integer: bool = False
    shrunk: bool = False
    warnings: list = field(default_factory=list)
    teacher: nn.Module | None = None  # the float baseline (a fresh copy), for Distill


def _pipeline(recipe: Recipe, say: Progress):
    """(baseline, data set, ``_State``): the recipe's steps applied to a fresh copy of its baseline, on
    ``RUN_THREADS`` threads (the caller holds them)."""
    torch.manual_seed(recipe.seed)
    ds = load_dataset(recipe.dataset, seed=recipe.seed)
    say(0.0, "Loading the baseline")
    base = get_baseline(recipe.dataset, recipe.model, seed=recipe.seed, train_config=recipe.train,
                        weights=recipe.weights)
    dev = torch.device("cpu")
    st = _State(net=base.model.to(dev).eval())
    if recipe.step("distill") is not None:
        st.teacher = base.model.to(dev).eval()  # a fresh copy, never trained
    n = len(recipe.steps)
    for i, step in enumerate(recipe.steps):
        say(i / (n + 1), f"Step {i + 1}/{n}: {step.describe()}")
        _STEP[step.kind](st, step, ds, recipe.seed + i)
    return base, ds, st


def _compute(recipe: Recipe, say: Progress) -> Result:
    t0 = time.perf_counter()
    with torch_threads(RUN_THREADS):
        base, ds, st = _pipeline(recipe, say)
        say(len(recipe.steps) / (len(recipe.steps) + 1), "Measuring")
        return _measure(recipe, base, ds, st, time.perf_counter() - t0)


@dataclass(frozen=True)
class Compressed:
    """A recipe's compressed network as ``run`` measures it: ``model`` (the fake-quantized copy after Quantize, else
    the pruned / shrunk / shared float network), its pruning ``mask`` (None after surgery or without pruning) and
    the float baseline it started from."""

    model: nn.Module
    mask: dict | None
    baseline: nn.Module


_NETS: OrderedDict[str, Compressed] = OrderedDict()
_NETS_SIZE = 8


def compressed(recipe: Recipe, progress: Progress | None = None) -> Compressed:
    """The compressed network of ``recipe`` (the same steps as ``run``, shared code), cached in memory by recipe
    hash; each call returns fresh copies, so the cached networks are never changed by a caller."""
    key = recipe.hash()
    with _GUARD:
        hit = _NETS.get(key)
    if hit is None:
        with torch_threads(RUN_THREADS):
            base, _ds, st = _pipeline(recipe, progress or (lambda f, t: None))
        final = st.final if st.final is not None else st.net
        hit = Compressed(model=final.eval(), mask=st.mask, baseline=base.model.eval())
        with _GUARD:
            _NETS[key] = hit
            while len(_NETS) > _NETS_SIZE:
                _NETS.popitem(last=False)
    return Compressed(model=copy.deepcopy(hit.model), mask=None if hit.mask is None else dict(hit.mask),
                      baseline=copy.deepcopy(hit.baseline))


def _prune(st: _State, step: Prune, ds: Dataset, seed: int) -> None:
    out = prune_with(st.net, ds, step.settings(seed))
    mask = dict(out.mask)
    if st.mask is not None:  # a second pruning step: what the first removed stays removed
        mask = {k: v * st.mask[k] if k in st.mask else v for k, v in mask.items()}
    st.net, st.mask = apply_mask(out.model, mask), mask
    st.warnings += out.warnings
    if step.granularity in ("neuron", "head"):  # the GPT's heads and MLP neurons: gpt_structured's surgery
        try:
            st.net = shrink(st.net, mask).eval()
        except ValueError as e:
            raise ValueError(f"Structured pruning at {step.sparsity:.0%} cannot run: {e}") from None
        st.mask, st.shrunk = None, True


def _finetune(st: _State, step: FineTune, ds: Dataset, seed: int) -> None:
    train(st.net, ds, step.train_config(), seed=seed, mask=st.mask, device=torch.device("cpu"))
    st.net.eval()


def _distill(st: _State, step: Distill, ds: Dataset, seed: int) -> None:
    """Fine-tune with the baseline as teacher; after a QAT step, train the fake-quantized network (its frozen
    ranges kept) and copy what it learned into the float net, as ``_quantize`` does."""
    student = st.final if st.final is not None else st.net
    distill(student, st.teacher, ds, step.train_config(), temperature=float(step.T), alpha=float(step.alpha),
            seed=seed, mask=st.mask, device=torch.device("cpu"))
    student.eval()
    if st.final is not None:
        with torch.no_grad():
            for name, ql in quant_layers(st.final):
                st.net.get_submodule(name).weight.copy_(ql.weight.detach())
                st.net.get_submodule(name).bias.copy_(ql.bias.detach())


def _quantize(st: _State, step: Quantize, ds: Dataset, seed: int) -> None:
    qc = step.quant_config()
    calib = ds.x_train[:step.calibration]
    if step.mode == "qat":
        st.final, _ = quantization_aware_training(st.net, qc, ds, TrainConfig(epochs=step.qat_epochs,
                                                  lr=float(step.qat_lr)), calibration_data=calib, lsq=step.lsq,
                                                  seed=seed, mask=st.mask)
        st.final.to("cpu")
        for name, ql in quant_layers(st.final):  # QAT trained the float weights: account for what it learned
            st.net.get_submodule(name).weight.data.copy_(ql.weight.detach())
    else:
        st.final = quantize_model(st.net, qc, calib)
    st.final.eval()
    st.value_bits, st.integer = step.weight_bits, step.target == "both"
    for name, ql in quant_layers(st.final):  # scales and zero points, counted as the Quantization page counts them
        st.side_bits[f"{name}.weight"] = (qparams_bits(ql.weight_qparams) + qparams_bits(ql.output_qparams)
                                          + (qparams_bits(ql.input_qparams) if ql.quantize_input else 0))


def _share(st: _State, step: Share, ds: Dataset, seed: int) -> None:
    k = 2 ** step.bits
    books = share_layers(st.net, st.mask, k, step.iters)
    if step.centroid_epochs > 0:
        tune_shared(st.net, books, ds, step.centroid_epochs, float(step.centroid_lr), seed)
    st.value_bits = step.bits
    st.side_bits = {key: 32 * k for key in books}  # a float32 codebook per layer


_STEP = {"prune": _prune, "finetune": _finetune, "distill": _distill, "quantize": _quantize, "share": _share}


NOT_FOR_LM = {"file": "does not apply to the GPT: the .clab format stores plain stacks of Linear and Conv layers",
              "integer": "does not apply to the GPT: the integer-only engine runs plain stacks of Linear and Conv "
                         "layers (no attention, LayerNorm or embeddings)"}


@torch.no_grad()
def _measure(recipe: Recipe, base, ds: Dataset, st: _State, seconds: float) -> Result:
    final = st.final if st.final is not None else st.net
    if is_language_model(final):
        return _measure_lm(recipe, base, ds, st, final, seconds)
    metrics = evaluate(final, ds.x_test, ds.y_test)
    rows, total, dense, dense_net, latency = _costs(base, ds, st)
    x1 = ds.x_test[:1]
    int_acc, note = None, "" if st.integer else "does not apply: it needs weights and activations quantized"
    if st.integer:
        try:
            program = to_integer(final, ds.input_shape)
            int_acc = integer_accuracy(program, ds.x_test, ds.y_test)
            latency["integer"] = time_call(lambda: program(x1), repeats=LATENCY_REPEATS)["median_ms"]
        except ConversionError as e:
            note = str(e)
    n_test = len(ds.y_test)
    blob = _file(recipe, st)
    file_acc = evaluate(han_format.load(blob), ds.x_test, ds.y_test).accuracy if blob else None
    return Result(recipe=recipe.to_dict(), title=recipe.title, describe=recipe.describe(),
                  test_acc=metrics.accuracy, test_acc_se=standard_error(metrics.accuracy, n_test),
                  test_loss=metrics.loss, n_test=n_test, baseline_acc=base.test_metrics.accuracy,
                  weights=dense["weights"], kept=total["kept"], bytes=total["bytes"], float32_bytes=dense["bytes"],
                  format=total["format"], macs=total["macs"], energy_pj=total["energy_pj"],
                  compute_pj=total["compute_pj"], memory_pj=total["memory_pj"], float_energy_pj=dense["energy_pj"],
                  latency_ms=latency, integer_acc=int_acc, integer_note=note, layers=rows,
                  boundary=_boundary(final, ds) if ds.kind == "points" else None, warnings=list(st.warnings),
                  seconds=seconds, file_b64=base64.b64encode(blob).decode() if blob else None,
                  file_bytes=len(blob) if blob else None, file_acc=file_acc)


def _costs(base, ds: Dataset, st: _State) -> tuple[list[dict], dict, dict, nn.Module, dict]:
    """(layer rows, their totals, the float network's totals, the float network, latencies in ms of one input)."""
    rows = layer_costs(st.net, st.mask, ds.input_shape, value_bits=st.value_bits, side_bits=st.side_bits,
                       integer=st.integer)
    dense_net = base.model.eval()  # a fresh copy
    dense = summarize(layer_costs(dense_net, None, ds.input_shape))
    x1 = ds.x_test[:1]
    latency = {"float": time_call(lambda: dense_net(x1), repeats=LATENCY_REPEATS)["median_ms"],
               "shrunk": None, "integer": None}
    if st.shrunk:
        latency["shrunk"] = time_call(lambda: st.net(x1), repeats=LATENCY_REPEATS)["median_ms"]
    return rows, summarize(rows), dense, dense_net, latency


def _measure_lm(recipe: Recipe, base, ds: Dataset, st: _State, final: nn.Module, seconds: float) -> Result:
    """The GPT's ``Result``: bits per character paired with the float baseline's on the same test windows, costs
    per token, latency of one context window (batch 1); no .clab file and no integer path (``NOT_FOR_LM``)."""
    rows, total, dense, dense_net, latency = _costs(base, ds, st)
    reference = window_bpc(dense_net, ds)
    score, _, metrics = score_with_metrics(final, ds, reference)
    chars = ds.y_test.numel()
    return Result(recipe=recipe.to_dict(), title=recipe.title, describe=recipe.describe(),
                  test_acc=metrics.accuracy, test_acc_se=standard_error(metrics.accuracy, chars),
                  test_loss=metrics.loss, n_test=chars, baseline_acc=base.test_metrics.accuracy,
                  weights=dense["weights"], kept=total["kept"], bytes=total["bytes"], float32_bytes=dense["bytes"],
                  format=total["format"], macs=total["macs"], energy_pj=total["energy_pj"],
                  compute_pj=total["compute_pj"], memory_pj=total["memory_pj"], float_energy_pj=dense["energy_pj"],
                  latency_ms=latency, integer_acc=None, integer_note=NOT_FOR_LM["integer"], layers=rows,
                  warnings=list(st.warnings), seconds=seconds, file_note=NOT_FOR_LM["file"], metric="bpc",
                  bpc=score.bpc, bpc_se=score.se, baseline_bpc=float(reference.mean()), bpc_diff=score.diff,
                  bpc_diff_se=score.diff_se)


def _file(recipe: Recipe, st: _State) -> bytes | None:
    """The .clab file of the compressed weights: k-means codebooks after Share, per-channel (or per-tensor) grids
    after a Quantize step with symmetric weights; None when the weights are float32 values or on an affine grid."""
    meta = {"dataset": recipe.dataset, "model": recipe.model, "recipe": recipe.describe()}
    last = next((s for s in recipe.steps if s.kind in TERMINAL), None)  # only Distill steps may follow it
    if isinstance(last, Share):
        return han_format.save(st.net, st.mask, meta=meta)
    if not isinstance(last, Quantize) or not last.weight_symmetric:
        return None
    net, grids = copy.deepcopy(st.net), {}
    with torch.no_grad():
        for name, ql in quant_layers(st.final):
            qp = ql.weight_qparams
            w = ql.quantized_weight().detach()
            net.get_submodule(name).weight.copy_(w)
            grids[f"{name}.weight"] = (qp.scale.reshape(-1).expand(w.shape[0]).clone(), qp.bits)
    return han_format.save(net, st.mask, uniform=grids, meta=meta)


def _boundary(model: nn.Module, ds: Dataset) -> dict:
    """The predicted class over a grid around the test points (``models.decision_grid``), as plain lists."""
    grid = decision_grid(predictor(model), ds.x_test.numpy(), BOUNDARY_STEPS)
    return {k: v.tolist() for k, v in grid.items()}
