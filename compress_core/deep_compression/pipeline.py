"""The deep-compression pipeline: prune, share or quantize the surviving weights, write the file, count every bit.

Han, Mao & Dally 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
Quantization and Huffman Coding" chain three steps; all three are here:

1. **Prune** by magnitude (per layer or globally) to a target sparsity, in rounds, fine-tuning under the
   mask after each round (Han et al. 2015) -- ``compress_core.pruning.prune_to`` and ``train(mask=)``.
2. **Share** the surviving weights of each layer among k = 2^bits centroids found by 1-D k-means with
   *linear* initialisation (k points evenly spaced over [min, max] of the layer's weights, the choice
   Han 2016 found best because it keeps the rare large weights), then fine-tune the centroids: the
   gradient of a centroid is the sum of its weights' gradients. The alternative is uniform per-channel
   quantization (``compress_core.quant``, symmetric so zero stays exactly zero).
3. **Store**: dense float32; pruned = CSR (float32 values + column indices + row pointers,
   ``compress_core.pruning.formats.csr_bytes``); shared = log2(k)-bit codes per surviving weight + a k × 32-bit codebook
   per layer + the same CSR index cost (biases float32); and the **file** (``export.han_format``): Han's
   relative indices with filler zeros, the codes and indices Huffman-coded, biases as ``bias_bits``-bit
   integers, a JSON header and a checksum. Its size is the length of its bytes, and its accuracy that of the
   network loaded back from them.

Han's formula for the sharing step alone, r = n·b / (n·log2(k) + k·b) for n weights of b bits, is given
next to the measured ratio (``han_ratio``). ``HAN_SETTINGS`` reaches ≥ 50× on digits·mlp within a point of
the float accuracy (bench/bench_ship.py measures it on three seeds).

Usage::

    b, ds = get_baseline("digits", "mlp"), load_dataset("digits")
    res = run_pipeline(b, ds, PipelineConfig(sparsity=0.9, bits=4))
    for row in res.stages: print(row["stage"], row["test_acc"], row["bytes"], row["ratio"])
    open("model.clab", "wb").write(res.file)       # len(res.file) == res.stages[-1]["bytes"]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .. import optim
from ..config import SCOPES, Config, param
from ..data import Dataset
from ..export import han_format
from ..models import weighted_layers
from ..pruning import Mask, prune_to
from ..pruning.formats import csr_bytes
from ..quant import QuantConfig, fake_quantize, weight_qparams_for
from ..train import TrainConfig, apply_mask_, evaluate, state_copy, train

METHODS = ("kmeans", "uniform")
SCHEDULES = ("constant", "cosine")
FLOAT_BITS = 32


@dataclass(frozen=True)
class PipelineConfig(Config, unknown="ignore"):
    """Settings of one deep-compression run (hashable, JSON round trip)."""

    sparsity: float = param(0.9, "overall fraction of weights removed at the end of pruning")
    scope: str = param("layer", "'layer': every layer at the same rate; 'global': one magnitude ranking")
    rounds: int = param(3, "prune-then-fine-tune rounds; each removes the same fraction of what remains")
    epochs: int = param(3, "fine-tune epochs after each pruning round (0 = no fine-tuning)")
    # 1e-3 recovered less in 3 epochs on digits
    lr: float = param(3e-3, "fine-tune learning rate (Adam)")
    method: str = param("kmeans", "'kmeans' weight sharing or 'uniform' per-channel quantization")
    bits: int = param(4, "bits per surviving weight: k = 2^bits centroids or quantization levels")
    kmeans_iters: int = param(30, "Lloyd iterations of k-means")
    centroid_epochs: int = param(1, "epochs of centroid fine-tuning after k-means (0 = re-evaluate only)")
    centroid_lr: float = param(1e-3, "learning rate of the centroids' fine-tuning (Adam)")
    seed: int = param(0, "fixes the random state and the fine-tuning batch order")
    # added with the file stage (issue 13): at their defaults they stay out of the hash, so older entries stay valid
    output_scale: float = param(1.0, "the output layer is pruned at sparsity × this, on its own ranking (1 = as "
                                     "the others; lower keeps more of the classifier)", hash_default=False)
    lr_schedule: str = param("constant", "fine-tuning learning rate per round: 'constant' or 'cosine' (decays to 0 "
                                         "within each round)", hash_default=False)
    bias_bits: int = param(8, "the file stores biases as signed integers of this many bits with one float32 scale "
                              "per layer (0 = float32)", hash_default=False)
    huffman: bool = param(True, "Huffman-code the file's codes and indices (each stream only where it is smaller)",
                          hash_default=False)
    index_bits: int = param(0, "bits of the file's relative indices (Han: 5 for fc layers); 0 = per layer, the "
                               "width that makes the layer smallest", hash_default=False)

    def problems(self):
        if not isinstance(self.sparsity, (int, float)) or not 0.0 <= self.sparsity < 1.0:
            yield (f"Target sparsity must be at least 0 % and below 100 % (got {self.sparsity!r}): "
                   "at 100 % no weight is left to share.")
        if self.scope not in SCOPES:
            yield f"Scope must be one of {', '.join(SCOPES)} (got {self.scope!r})."
        if self.method not in METHODS:
            yield f"Sharing method must be one of {', '.join(METHODS)} (got {self.method!r})."
        for name, lo, hi in (("rounds", 1, 20), ("epochs", 0, 50), ("bits", 1, 8), ("kmeans_iters", 1, 500),
                             ("centroid_epochs", 0, 50)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                yield f"{name} must be a whole number from {lo} to {hi} (got {v!r})."
        if not (self.lr > 0 and self.centroid_lr > 0):
            yield "Learning rates must be positive."
        if not (isinstance(self.output_scale, (int, float)) and 0.0 <= self.output_scale <= 1.0):
            yield f"output_scale must be from 0 to 1 (got {self.output_scale!r})."
        if self.lr_schedule not in SCHEDULES:
            yield f"lr_schedule must be one of {', '.join(SCHEDULES)} (got {self.lr_schedule!r})."
        bb = self.bias_bits
        if isinstance(bb, bool) or not isinstance(bb, int) or not (bb == 0 or 2 <= bb <= 16):
            yield f"bias_bits must be 0 (float32) or a whole number from 2 to 16 (got {bb!r})."
        ib = self.index_bits
        if isinstance(ib, bool) or not isinstance(ib, int) or not 0 <= ib <= han_format.MAX_INDEX_BITS:
            yield f"index_bits must be 0 (chosen per layer) or from 1 to {han_format.MAX_INDEX_BITS} (got {ib!r})."
        if not isinstance(self.huffman, bool):
            yield f"huffman must be true or false (got {self.huffman!r})."

    @property
    def k(self) -> int:
        return 2 ** self.bits

    def targets(self) -> list[float]:
        """Cumulative sparsity after each round: 1 − (1 − s)^(r/R), the same fraction of survivors each time."""
        return [1.0 - (1.0 - self.sparsity) ** (r / self.rounds) for r in range(1, self.rounds + 1)]


# Han et al.'s recipe (prune in rounds with fine-tuning, k-means with linear initialisation and trained centroids,
# relative indices, Huffman coding), with settings chosen for digits·mlp: ≥ 50× smaller than the float32 parameters
# within a point of float accuracy, mean of seeds 0-2 (bench/bench_ship.py, one thread: 69.1×, accuracy 0.1 point
# above float; unseen seeds 3-5: 68.6×, 0.7 above). Searched on seeds 0-2 over 95-99 % sparsity, 3-5 bits, 5-8 rounds
# of 8-15 epochs at 3e-3..1e-2 (constant or cosine): at 97 % the mean drop stays well inside a point (98 %: 0.8-1.0
# points, 99 %: over 4). The global ranking prunes the output layer less (82 %) without a separate rate.
HAN_SETTINGS = PipelineConfig(sparsity=0.97, scope="global", rounds=5, epochs=8, lr=6e-3, method="kmeans", bits=4,
                              centroid_epochs=2, centroid_lr=1e-3, bias_bits=8, huffman=True, index_bits=0)


def han_ratio(n: int, k: int, b: int = FLOAT_BITS) -> float:
    """Han et al. 2016, eq. 1: compression of n b-bit weights shared among k centroids (log2(k)-bit codes)."""
    if n <= 0 or k < 1:
        raise ValueError("Need at least one weight and one centroid.")
    return n * b / (n * math.log2(k) + k * b)


@torch.no_grad()
def kmeans_share(weights: torch.Tensor, mask: torch.Tensor | None, k: int, iters: int = 30
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Share the surviving weights of one layer among ``k`` values (1-D k-means, linear initialisation).

    Args:
        weights: the layer's weight tensor (not modified).
        mask: 0/1 tensor of the same shape (1 = surviving); None = every weight survives.
        k: number of centroids (2^bits).
        iters: Lloyd iterations (stops early when the assignment no longer changes).

    Returns:
        (shared weights of ``weights``' shape: zero exactly where mask is 0, a centroid elsewhere;
        centroids, shape (k,), sorted; codes, int64 of ``weights``' shape, −1 where pruned).

    Example::

        w2, c, codes = kmeans_share(layer.weight, mask["fc1.weight"], 16)
        assert torch.unique(w2[mask["fc1.weight"].bool()]).numel() <= 16
    """
    if k < 1:
        raise ValueError("k-means needs at least one centroid.")
    w = weights.detach().to("cpu", torch.float32)
    keep = torch.ones_like(w, dtype=torch.bool) if mask is None else mask.to("cpu").bool()
    codes = torch.full(w.shape, -1, dtype=torch.int64)
    vals = w[keep]
    if vals.numel() == 0:  # a layer pruned away entirely: nothing to share, the codebook stays at zero
        return torch.zeros_like(w), torch.zeros(k), codes
    # linear initialisation over [min, max] of the surviving weights (Han 2016, section 3.2)
    c = torch.linspace(float(vals.min()), float(vals.max()), k)
    assign = None
    for _ in range(iters):
        # nearest centroid in 1-D: the centroids are sorted, so bucket by the midpoints between them
        new = torch.bucketize(vals, (c[1:] + c[:-1]) / 2)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        sums = torch.zeros(k).index_add_(0, assign, vals)
        counts = torch.bincount(assign, minlength=k).float()
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)  # an empty cluster keeps its place
        c, _ = torch.sort(c)
    assign = torch.bucketize(vals, (c[1:] + c[:-1]) / 2)
    codes[keep] = assign
    shared = torch.zeros_like(w)
    shared[keep] = c[assign]
    return shared, c, codes


def _shared_weight(c: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Rebuild a layer's weight from its codebook (differentiable in ``c``); code −1 = pruned = 0."""
    return torch.where(codes >= 0, c[codes.clamp(min=0)], torch.zeros((), dtype=c.dtype))


def finetune_centroids(model: nn.Module, books: dict[str, tuple[torch.Tensor, torch.Tensor]], dataset: Dataset,
                       epochs: int, lr: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Train only the centroids (Han 2016, fig. 3: a centroid's gradient = the sum of its weights' gradients).

    Args:
        model: the network (only its biases/other parameters are read; not modified).
        books: {weight name: (centroids, codes)} from ``kmeans_share``.
    Returns {weight name: tuned centroids}; codes and pruned positions never change.
    """
    params = {k: v.detach() for k, v in model.named_parameters()}
    cents = {n: c.clone().requires_grad_(True) for n, (c, _) in books.items()}
    opt = optim.Adam(list(cents.values()), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    x, y = dataset.x_train.cpu(), dataset.y_train.cpu()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            idx = order[i:i + 64]
            p = dict(params, **{n: _shared_weight(cents[n], books[n][1]) for n in cents})
            loss = F.cross_entropy(functional_call(model, p, (x[idx],)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {n: c.detach() for n, c in cents.items()}


@torch.no_grad()
def share_layers(model: nn.Module, mask: Mapping[str, torch.Tensor] | None, k: int, iters: int = 30
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``kmeans_share`` every weighted layer of ``model`` **in place** (its weights become the shared values).
    Returns {weight name: (centroids, codes)} for ``tune_shared``."""
    params, books = dict(model.named_parameters()), {}
    for name, _ in weighted_layers(model):
        key = f"{name}.weight"
        shared, c, codes = kmeans_share(params[key], None if mask is None else mask[key], k, iters)
        params[key].copy_(shared)
        books[key] = (c, codes)
    return books


def tune_shared(model: nn.Module, books: dict[str, tuple[torch.Tensor, torch.Tensor]], dataset: Dataset,
                epochs: int, lr: float, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``finetune_centroids``, then write the tuned shared weights into ``model`` **in place**; the new books."""
    tuned = finetune_centroids(model, books, dataset, epochs, lr, seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, c in tuned.items():
            params[key].copy_(_shared_weight(c, books[key][1]))
    return {key: (c, books[key][1]) for key, c in tuned.items()}


# ---- sizes -----------------------------------------------------------------------------------------------
def index_bytes(mask: torch.Tensor) -> int:
    """The CSR index cost of a layer's survivors alone: column indices + row pointers (no values)."""
    return csr_bytes(mask, value_bytes=0)


def stage_bytes(model: nn.Module, mask: Mapping[str, torch.Tensor] | None, bits: int | None = None,
                side_bits: Mapping[str, int] | None = None) -> dict:
    """Bytes of ``model`` stored three ways, with a per-layer breakdown.

    mask None: dense float32. bits None: CSR with float32 values. bits b: CSR index + ceil(nnz·b / 8) code
    bytes + the layer's side information (``side_bits[weight name]``: the k·32-bit codebook, or the per-channel
    scales). Biases are float32 in every format. Returns {"bytes", "layers": [{layer, n, values, index, side}]}.
    """
    rows, total = [], 0
    for name, m in weighted_layers(model):
        key = f"{name}.weight"
        nb = m.bias.numel() * 4 if getattr(m, "bias", None) is not None else 0
        if mask is None:
            n, values, index, side = m.weight.numel(), m.weight.numel() * 4, 0, 0
        else:
            mk = mask[key]
            n = int(mk.count_nonzero())
            index = index_bytes(mk)
            values = n * 4 if bits is None else -(-n * bits // 8)
            side = 0 if bits is None else -(-int((side_bits or {}).get(key, 0)) // 8)
        rows.append(dict(layer=name, n=n, values=values, index=index, side=side, bias=nb,
                         bytes=values + index + side + nb))
        total += rows[-1]["bytes"]
    return {"bytes": total, "layers": rows}


# ---- the pipeline ----------------------------------------------------------------------------------------
@dataclass
class PipelineResult:
    """What ``run_pipeline`` measured: one row per stage, Han's formula per layer, and the weights."""

    config: PipelineConfig
    stages: list[dict]
    formula: list[dict]
    centroids: dict[str, list[float]]  # per weight name: the k shared values (k-means) or empty (uniform)
    pruned_state: dict[str, torch.Tensor] = field(repr=False)
    final_state: dict[str, torch.Tensor] = field(repr=False)  # the network loaded back from ``file``
    mask: Mask = field(repr=False)
    file: bytes = field(default=b"", repr=False)  # the .clab file (export.han_format); its length is the last stage
    file_parts: list[dict] = field(default_factory=list)  # where the file's bytes go (han_format.parts)

    def to_dict(self) -> dict:
        return dict(config=self.config.to_dict(), stages=self.stages, formula=self.formula, centroids=self.centroids,
                    layer_sparsity=self.mask.layer_sparsity(), file_bytes=len(self.file), file_parts=self.file_parts)


def _row(stage: str, model: nn.Module, ds: Dataset, size: dict, dense_bytes: int, sparsity: float,
         bits: float, detail: str) -> dict:
    acc = evaluate(model, ds.x_test, ds.y_test).accuracy
    return dict(stage=stage, test_acc=acc, bytes=size["bytes"], ratio=dense_bytes / size["bytes"],
                sparsity=sparsity, bits_per_weight=bits, detail=detail)


def dense_control(baseline, dataset: Dataset, config: PipelineConfig = PipelineConfig()):
    """The control for the pipeline's fine-tuning: the dense network (``baseline.model``, a fresh copy) given the
    same extra training -- one run of ``config.epochs`` per pruning round, round r with seed ``config.seed + r``,
    as ``run_pipeline`` fine-tunes the pruned one -- but nothing pruned. Test ``Metrics``; None without
    fine-tuning. (The centroid fine-tuning trains only k values per layer and has no dense counterpart.)"""
    if config.epochs <= 0:
        return None
    model = baseline.model.to("cpu")
    ft = TrainConfig(epochs=config.epochs, lr=config.lr, batch_size=64, lr_schedule=config.lr_schedule)
    torch.manual_seed(config.seed)
    for r in range(1, config.rounds + 1):
        train(model, dataset, ft, seed=config.seed + r, device=torch.device("cpu"))
    return evaluate(model, dataset.x_test, dataset.y_test)


def run_pipeline(baseline, dataset: Dataset, config: PipelineConfig = PipelineConfig(),
                 progress: Callable[[float, str], None] | None = None) -> PipelineResult:
    """Dense → pruned (rounds of prune + fine-tune) → shared/quantized → the file, measured at every stage.

    Args:
        baseline: a ``Baseline`` (its ``.model`` is a fresh copy, so the cached one is never changed).
        dataset: the baseline's data set.
        config: a ``PipelineConfig``.
        progress: optional ``progress(fraction, text)``.

    Returns:
        a ``PipelineResult``. Stage rows: stage, test_acc, bytes, ratio (dense bytes / bytes), sparsity,
        bits_per_weight, detail. The last row is the file: bytes = ``len(result.file)``, test_acc that of the
        network loaded back from it (its biases quantized to ``bias_bits``), bits_per_weight the mean bits of a
        stored code after Huffman coding.
    """
    say = progress or (lambda f, t: None)
    torch.manual_seed(config.seed)
    model = baseline.model.to("cpu")
    dense = stage_bytes(model, None)
    stages = [_row("dense", model, dataset, dense, dense["bytes"], 0.0, 32, "float32, every weight stored")]
    steps = config.rounds + 3
    mask = None
    ft = TrainConfig(epochs=max(config.epochs, 1), lr=config.lr, batch_size=64, lr_schedule=config.lr_schedule)
    for r, target in enumerate(config.targets(), 1):
        say((r - 1) / steps, f"Pruning round {r}/{config.rounds} to {target:.1%} sparsity, fine-tuning…")
        mask = prune_to(model, target, scope=config.scope, mask=mask, output_scale=config.output_scale)
        if config.epochs > 0:
            train(model, dataset, ft, seed=config.seed + r, mask=mask, device=torch.device("cpu"))
        else:
            apply_mask_(model, mask)
        size = stage_bytes(model, mask)
        tuned = f", {config.epochs} fine-tune epochs" if config.epochs else ", no fine-tuning"
        stages.append(_row(f"pruned {r}/{config.rounds}", model, dataset, size, dense["bytes"], mask.sparsity(), 32,
                           f"CSR: float32 values + column indices + row pointers{tuned}"))
    pruned_state = state_copy(model)
    pruned_size = size  # the last round's: the model has not changed since
    params = dict(model.named_parameters())
    say(config.rounds / steps, "Sharing the surviving weights…")
    centroids, side, formula, grids = {}, {}, [], {}
    if config.method == "kmeans":
        books = share_layers(model, mask, config.k, config.kmeans_iters)
        side = {key: config.k * FLOAT_BITS for key in books}
        size = stage_bytes(model, mask, config.bits, side)
        stages.append(_row(f"k-means k={config.k}", model, dataset, size, dense["bytes"], mask.sparsity(),
                           config.bits, f"{config.bits}-bit codes + {config.k}×32-bit codebook per layer + CSR index"))
        if config.centroid_epochs > 0:
            say((config.rounds + 1) / steps, "Fine-tuning the centroids…")
            books = tune_shared(model, books, dataset, config.centroid_epochs, config.centroid_lr, config.seed)
            stages.append(_row("k-means + tuned centroids", model, dataset, size, dense["bytes"], mask.sparsity(),
                               config.bits, f"same storage; centroids trained {config.centroid_epochs} epoch(s)"))
        centroids = {k: [float(v) for v in c] for k, (c, _) in books.items()}
    else:
        qc = QuantConfig(target="weights", weight_bits=config.bits, weight_symmetric=True, per_channel=True)
        with torch.no_grad():
            for name, _ in weighted_layers(model):
                key = f"{name}.weight"
                w = params[key]
                qp = weight_qparams_for(w, qc, config.bits)
                # symmetric: zero point 0, so a pruned weight stays exactly 0 after rounding
                params[key].copy_(fake_quantize(w, qp) * mask[key])
                side[key] = qp.scale.numel() * FLOAT_BITS
                grids[key] = (qp.scale, config.bits)
        size = stage_bytes(model, mask, config.bits, side)
        stages.append(_row(f"uniform {config.bits}-bit", model, dataset, size, dense["bytes"], mask.sparsity(),
                           config.bits, f"{config.bits}-bit codes + one float32 scale per output channel + CSR index"))
    for p_row, s_row in zip(pruned_size["layers"], size["layers"]):
        n = p_row["n"]
        k = config.k
        formula.append(dict(layer=p_row["layer"], n=n, k=k, b=FLOAT_BITS,
                            han_formula=han_ratio(n, k) if n else float("nan"),
                            measured=p_row["values"] / (s_row["values"] + s_row["side"]) if n else float("nan"),
                            measured_with_index=(p_row["values"] + p_row["index"]) /
                            (s_row["values"] + s_row["side"] + s_row["index"]) if n else float("nan")))
    say((config.rounds + 2) / steps, "Writing the file (relative indices, Huffman coding)…")
    blob = han_format.save(model, mask, uniform=grids, bias_bits=config.bias_bits, huffman=config.huffman,
                           index_bits=config.index_bits or None, meta=_file_meta(baseline, dataset))
    contents = han_format.read(blob)
    model.load_state_dict(contents.state)  # the network is now exactly what the file holds
    stages.append(_file_row(model, dataset, blob, contents, dense["bytes"], mask.sparsity(), config))
    say(1.0, "Done")
    return PipelineResult(config=config, stages=stages, formula=formula, centroids=centroids,
                          pruned_state=pruned_state, final_state=state_copy(model), mask=mask, file=blob,
                          file_parts=han_format.parts(blob))


def file_stage_name(config: PipelineConfig) -> str:
    return "Huffman-coded file" if config.huffman else "file, fixed-width codes"


def _file_meta(baseline, dataset: Dataset) -> dict:
    """What the file's header says about where the network came from (the layer list is always there)."""
    cfg = getattr(baseline, "config", None)
    meta = {"input": list(dataset.input_shape)}
    if cfg is not None:
        meta.update(dataset=cfg.dataset, model=cfg.model)
    return meta


def _file_row(model: nn.Module, ds: Dataset, blob: bytes, contents, dense_bytes: int, sparsity: float,
              config: PipelineConfig) -> dict:
    entries = sum(p.entries for p in contents.layers)
    fillers = sum(p.fillers for p in contents.layers)
    code_bits = 8 * sum(p.codes for p in contents.layers) / entries if entries else 0.0  # stream headers included
    widths = "/".join(str(p.index_bits) for p in contents.layers)
    biases = f"{config.bias_bits}-bit" if config.bias_bits else "float32"
    coding = "Huffman-coded codes and indices" if config.huffman else "fixed-width codes and indices"
    detail = (f"the .clab file's length: relative indices ({widths} bits per layer, {fillers} filler zeros), "
              f"{coding}, codebooks, {biases} biases, JSON header, CRC-32")
    return _row(file_stage_name(config), model, ds, {"bytes": len(blob)}, dense_bytes, sparsity, round(code_bits, 2),
                detail)
