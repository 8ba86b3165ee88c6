"""Which layer broke it: a drop debugger for any compressed variant of a model.

A *variant* is a copy of a float model with some weighted layers changed: quantized (``quant.quantize_model``
turns a layer into a ``QuantLayer``; weights only, or weights and activations), pruned (``pruning.apply_mask``
zeroes weights), k-means shared (``deep_compression.share_layers``), or several of these at once. Each Linear/Conv
layer of the float model (``models.weighted_layers``, nested ones included) is a *unit*; its compressed self is the
module at the same path in the variant. The debugger swaps units between the two models without copying or
changing either (the containers along a path are shallow-copied), and measures:

- **Per layer** (``DropDebugger.layers``): the error at the layer's output and at the model's output when ONLY that
  layer is compressed (every other layer float), against the error accumulated up to that layer when ALL are
  compressed. Errors are SQNR = 10·log10(Σx² / Σ(x − x̂)²) in dB (``quant.analysis.sqnr_db``) and the relative MSE
  Σ(x − x̂)² / Σx² = 10^(−SQNR/10), on the debugger's inputs. A layer's output is read after the ReLU that follows
  it, where a quantized layer's output range is (the ReLU is fused as a clamp). The weight error
  Σ(w − ŵ)² splits into *pruning* (weights the variant zeroes), *other* changes of the stored weight (k-means
  sharing, weight-only rounding), and, for a quantized weight, *clipping* (entries outside the representable range,
  ``quant.primitives.clip_mask``) and *rounding* (inside it); the parts add up to the total whenever pruned
  weights are zero codes (any symmetric scheme). A quantized output activation's own error (on the float
  activations) splits into clipping and rounding the same way.
- **Flipped examples** (``DropDebugger.flips``): the examples whose predicted class differs between the float
  model and the variant, with the label, both logits and probabilities, each layer's per-example relative error
  ‖a − â‖² / ‖a‖² (all layers compressed), the *first divergent layer* (the first whose per-example relative error
  exceeds ``threshold``, default 0.1, i.e. an SQNR below 10 dB; None when none does) and the layer where that error
  *jumps* most (largest increase over the layer before; the first layer's increase is its own error).
- **Revert** (``DropDebugger.revert``): the variant with a chosen set of layers put back to float/dense and its
  accuracy. The variant's input to every top-level child is cached once, so a revert re-runs only the children
  from the first reverted one on.

A reverted layer gets the float module back, so a quantized layer loses its weight *and* its output-activation
quantization, and the first layer its input quantization; "only this layer compressed" keeps exactly those.

Language models (the GPT): its Linear layers sit inside the blocks (``block1.attn.q``), and weight-only variants
(pruning masks, ``quant.weight_only``, GPTQ, AWQ) keep them Linear, so the per-layer errors, the output error
(``bits`` per character instead of accuracy: cross-entropy of every next character in bits) and ``revert`` work.
``flips`` is for classifiers only (a language model "flips" thousands of next characters per window).
``quant.quantize_model`` quantizes a GPT's nested Linears too (the Compare page's W4 and W8A8 variants): their
weight error splits into clipping and rounding as a classifier's does; they quantize their inputs, not their
outputs, so no output-activation split is reported there (``act_bits`` 32). A ``quant.weight_only`` variant stores
plain float weights: its error is reported as a whole, under ``other``.
The debugger keeps every layer's activations on its examples: give a GPT a few hundred windows, not thousands.

Usage::

    q = quantize_model(b.model, QuantConfig(weight_bits=3), ds.x_train[:256])
    dbg = DropDebugger(b.model, q, ds.x_val, ds.y_val)
    dbg.layers()          # rows per layer: only_layer_sqnr_db, accumulated_sqnr_db, clip / round split, …
    dbg.flips()           # rows per flipped example: index, label, logits, first_divergence, …
    dbg.revert(["fc1"]).accuracy
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models import is_language_model, weighted_layers
from ..quant.analysis import sqnr_db
from ..quant.model import QuantLayer
from ..quant.primitives import QParams, clip_mask, fake_quantize

__all__ = ["DIVERGENCE", "DropDebugger", "Reverted", "activation_error", "rel_mse", "swapped", "weight_error"]

DIVERGENCE = 0.1  # per-example relative error (‖a − â‖²/‖a‖²) above which a layer's activations "diverge": 10 dB


def rel_mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Σ(x − x̂)² / Σx²: 10^(−SQNR/10); ``inf`` when x is all zero and x̂ is not, 0 when they are equal."""
    noise = float((x - x_hat).double().pow(2).sum())
    signal = float(x.double().pow(2).sum())
    if noise == 0.0:
        return 0.0
    return noise / signal if signal > 0 else math.inf


def _get(model: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        model = model._modules[part]
    return model


def swapped(model: nn.Module, replacements: dict[str, nn.Module]) -> nn.Module:
    """``model`` with the modules at the given dotted paths replaced, without copying or changing it: each
    container along a path is shallow-copied with its own child table; everything else is shared."""
    if not replacements:
        return model
    here, below = {}, {}
    for path, module in replacements.items():
        head, _, rest = path.partition(".")
        if rest:
            below.setdefault(head, {})[rest] = module
        else:
            here[head] = module
    out = copy.copy(model)
    out._modules = type(model._modules)(model._modules)
    for head, sub in below.items():
        if head in here:
            raise ValueError(f"Layer {head} is replaced both whole and in part.")
        out._modules[head] = swapped(model._modules[head], sub)
    for head, module in here.items():
        if head not in out._modules:
            raise ValueError(f"The model has no layer {head!r}.")
        out._modules[head] = module
    return out


class _Tap(nn.Module):
    """Runs ``inner`` and hands its output to ``store`` under ``key`` (a recording wrapper: nothing is mutated)."""

    def __init__(self, inner: nn.Module, store: dict, key: str):
        super().__init__()
        object.__setattr__(self, "_inner", inner)  # not registered: the wrapper owns nothing
        object.__setattr__(self, "_store", store)
        self.key = key

    def forward(self, x):
        y = self._inner(x)
        self._store[self.key] = y
        return y


def weight_error(float_layer: nn.Module, layer: nn.Module) -> dict:
    """The squared weight error Σ(w − ŵ)² of a compressed layer against its float self, split in parts.

    With w' the weight the compressed layer holds before any quantization (pruned, shared, or rounded to a grid
    and stored as float): ``prune`` = Σw² over the entries w' zeroes; ``other`` = Σ(w − w')² over the rest (k-means
    sharing, weight-only rounding); ``clip`` / ``round`` = Σ(w' − q(w'))² over the entries of w' outside / inside
    a ``QuantLayer``'s range (0 when it does not quantize weights); ``total`` = Σ(w − ŵ)², ŵ the weight the layer
    computes with. ``*_rel`` are each divided by Σw². Also ``clip_fraction`` (of entries), ``weight_bits`` (32 for
    float) and ``sparsity`` (fraction of exact zeros in ŵ).
    """
    w = float_layer.weight.detach().double()
    held = layer.weight.detach().double()
    qp = layer.weight_qparams if isinstance(layer, QuantLayer) else None
    w_hat = layer.quantized_weight().detach().double() if isinstance(layer, QuantLayer) else held
    zeroed = (held == 0) & (w != 0)
    d2 = (w - held).pow(2)
    out = {"prune": float(d2[zeroed].sum()), "other": float(d2[~zeroed].sum()), "clip": 0.0, "round": 0.0,
           "clip_fraction": 0.0}
    if qp is not None:
        clipped = clip_mask(layer.weight.detach(), qp)
        e2 = (held - w_hat).pow(2)
        out.update(clip=float(e2[clipped].sum()), round=float(e2[~clipped].sum()),
                   clip_fraction=float(clipped.float().mean()))
    out["total"] = float((w - w_hat).pow(2).sum())
    signal = float(w.pow(2).sum())
    for k in ("prune", "other", "clip", "round", "total"):
        out[f"{k}_rel"] = out[k] / signal if signal > 0 else 0.0
    out["weight_bits"] = qp.bits if qp is not None else 32
    out["sparsity"] = float((w_hat == 0).double().mean())
    return out


def activation_error(a: torch.Tensor, qp: QParams | None) -> dict:
    """The quantization error of activations ``a`` (float, as the float model computes them) on their grid ``qp``,
    split like a weight's: ``act_clip`` / ``act_round`` = Σ(a − q(a))² outside / inside the range, ``act_total``
    their sum, each also ``*_rel`` (divided by Σa²); ``act_clip_fraction``; ``act_bits`` (32: not quantized)."""
    if qp is None:
        return {"act_bits": 32, "act_clip": 0.0, "act_round": 0.0, "act_total": 0.0, "act_clip_rel": 0.0,
                "act_round_rel": 0.0, "act_total_rel": 0.0, "act_clip_fraction": 0.0}
    a = a.detach()
    clipped = clip_mask(a, qp)
    e2 = (a.double() - fake_quantize(a, qp).double()).pow(2)
    clip, rnd = float(e2[clipped].sum()), float(e2[~clipped].sum())
    signal = float(a.double().pow(2).sum())
    rel = (lambda v: v / signal if signal > 0 else 0.0)  # noqa: E731
    return {"act_bits": qp.bits, "act_clip": clip, "act_round": rnd, "act_total": clip + rnd,
            "act_clip_rel": rel(clip), "act_round_rel": rel(rnd), "act_total_rel": rel(clip + rnd),
            "act_clip_fraction": float(clipped.float().mean())}


@dataclass(frozen=True)
class Reverted:
    """The variant with ``layers`` back to float, and how it scores on the debugger's examples.

    ``model`` shares its modules with the debugger's private copies: read it, or ``copy.deepcopy`` it before
    changing anything. ``accuracy`` (fraction; next-character accuracy for a language model), ``loss`` (mean
    cross-entropy, nats), ``bits`` (the same in bits: bits per character for a language model),
    ``change_pts`` against the float model (negative = worse), ``lost`` (examples the float model gets right beyond
    those this one does; an integer, so budgets compare exactly) and ``n`` (examples, or characters, scored)."""

    layers: tuple[str, ...]
    accuracy: float
    loss: float
    change_pts: float
    lost: int
    n: int
    model: nn.Module = field(repr=False, compare=False)

    @property
    def bits(self) -> float:
        return self.loss / math.log(2)


class DropDebugger:
    """Per-layer errors, flipped examples and per-layer reverts of ``variant`` against ``float_model`` on (x, y).

    Args:
        float_model: the uncompressed network (an ``nn.Sequential``, as every model of the registry).
        variant: its compressed copy, with the same layer names (quantized, pruned, shared, or a mix).
        x, y: the examples to measure on (a validation split to choose settings, the test split to report).
        threshold: per-example relative error above which a layer counts as diverged (``flips``).
        batch_size: examples per forward pass.

    Neither model is changed: the debugger keeps its own copies in eval mode. Results are lists of plain dicts
    (one per layer or example), ready for a table or a chart.
    """

    def __init__(self, float_model: nn.Module, variant: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 threshold: float = DIVERGENCE, batch_size: int = 1024):
        if not isinstance(float_model, nn.Sequential) or not isinstance(variant, nn.Sequential):
            raise ValueError("The drop debugger reads nn.Sequential models (every model in the registry is one).")
        if len(x) == 0 or len(x) != len(y):
            raise ValueError("Give the debugger at least one example, with one label each.")
        if [n for n, _ in float_model.named_children()] != [n for n, _ in variant.named_children()]:
            raise ValueError("The variant's layers are not the float model's: compare a model with its own copy.")
        self.float = copy.deepcopy(float_model).eval()
        self.variant = copy.deepcopy(variant).eval()
        self.device = next((p.device for p in self.float.parameters()), torch.device("cpu"))
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.threshold, self.batch_size = float(threshold), int(batch_size)
        self.language = is_language_model(self.float)
        self.units = [n for n, _ in weighted_layers(self.float)]
        for name in self.units:
            try:
                _get(self.variant, name)
            except KeyError:
                raise ValueError(f"The variant has no layer {name}: compare a model with its own copy.") from None
        self.children = [n for n, _ in self.float.named_children()]
        self._taps = self._tap_paths()
        self._float_run = self._run(self.float, taps=True)
        self._variant_run = self._run(self.variant, taps=True)
        self._cache: list[torch.Tensor] | None = None  # the variant's input to each top-level child, per batch
        self._layers: list[dict] | None = None

    # ---- plumbing ---------------------------------------------------------------------------------------
    def _tap_paths(self) -> dict[str, str]:
        """{unit: the module whose output is that unit's output}: the ReLU right after a top-level layer, else the
        layer itself (a quantized layer's output range is after its ReLU)."""
        out = {}
        for unit in self.units:
            tap = unit
            if "." not in unit:
                i = self.children.index(unit)
                if i + 1 < len(self.children) and isinstance(self.float._modules[self.children[i + 1]], nn.ReLU):
                    tap = self.children[i + 1]
            out[unit] = tap
        return out

    def changed(self) -> list[str]:
        """The layers the variant compresses (weights or module differ from the float model's)."""
        out = []
        for unit in self.units:
            f, v = _get(self.float, unit), _get(self.variant, unit)
            if type(f) is not type(v) or not torch.equal(f.weight, v.weight) or \
                    (f.bias is None) != (v.bias is None) or (f.bias is not None and not torch.equal(f.bias, v.bias)):
                out.append(unit)
        return out

    def _batches(self):
        for i in range(0, len(self.x), self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]

    @torch.no_grad()
    def _run(self, model: nn.Module, taps: bool = False) -> dict:
        """Logits (classifiers), per-example loss and correctness, and, with ``taps``, each unit's output."""
        out = {"logits": [], "loss": [], "correct": [], "acts": {u: [] for u in self.units} if taps else None}
        for xb, yb in self._batches():
            store: dict = {}
            m = swapped(model, {p: _Tap(_get(model, p), store, u) for u, p in self._taps.items()}) if taps else model
            logits = m(xb)
            self._score(out, logits, yb)
            if taps:
                for u in self.units:
                    out["acts"][u].append(store[u])
        return out

    def _score(self, out: dict, logits: torch.Tensor, yb: torch.Tensor) -> None:
        out["loss"].append(F.cross_entropy(logits, yb, reduction="none"))
        out["correct"].append(logits.argmax(1) == yb)
        out["logits"].append(logits)

    def _summary(self, run: dict) -> tuple[float, float, int]:
        """(accuracy, mean loss, examples right) of a run; per character for a language model."""
        correct = torch.cat(run["correct"])
        return float(correct.float().mean()), float(torch.cat(run["loss"]).mean()), int(correct.sum())

    # ---- what the float model and the variant score ------------------------------------------------------
    @property
    def float_accuracy(self) -> float:
        return self._summary(self._float_run)[0]

    @property
    def variant_accuracy(self) -> float:
        return self._summary(self._variant_run)[0]

    @property
    def n(self) -> int:
        return self.y.numel()

    # ---- per layer -----------------------------------------------------------------------------------------
    def _output_error(self, run: dict) -> tuple[float, float]:
        """(SQNR dB, relative MSE) of a run's logits against the float model's (batch by batch, exactly)."""
        signal = noise = 0.0
        for a, b in zip(self._float_run["logits"], run["logits"]):
            signal += float(a.double().pow(2).sum())
            noise += float((a - b).double().pow(2).sum())
        return _db(signal, noise), _rel(signal, noise)

    def _unit_error(self, unit: str, run: dict) -> tuple[float, float]:
        a = torch.cat(self._float_run["acts"][unit])
        b = torch.cat(run["acts"][unit])
        return sqnr_db(a, b), rel_mse(a, b)

    def layers(self) -> list[dict]:
        """One row per weighted layer, in forward order (computed once, then cached):

        layer, compressed (bool), weight_bits, sparsity; only_layer_sqnr_db / only_layer_rel_mse (at this layer's
        output, only this layer compressed); only_output_sqnr_db / only_output_rel_mse (at the model's output, only
        this layer compressed), only_accuracy,
        only_change_pts, only_lost (examples or characters lost against float; negative = gained), only_bits (mean
        cross-entropy in bits); accumulated_sqnr_db / accumulated_rel_mse (at this layer's output, every layer
        compressed); weight error parts prune, other, clip, round, total (and *_rel, clip_fraction) from
        ``weight_error``; the output activations' quantization error on the float activations, split the same
        way (act_bits, act_clip, act_round, act_total, *_rel, act_clip_fraction) from ``activation_error``.
        """
        if self._layers is not None:
            return [dict(r) for r in self._layers]
        f_acc, _, f_right = self._summary(self._float_run)
        changed = set(self.changed())
        rows = []
        for unit in self.units:
            row = {"layer": unit, "compressed": unit in changed}
            layer = _get(self.variant, unit)
            row.update(weight_error(_get(self.float, unit), layer))
            out_qp = layer.output_qparams if isinstance(layer, QuantLayer) else None
            row.update(activation_error(torch.cat(self._float_run["acts"][unit]), out_qp))
            if unit in changed:
                run = self._run(swapped(self.float, {unit: _get(self.variant, unit)}), taps=True)
                only_db, only_rel = self._unit_error(unit, run)
                out_db, out_rel = self._output_error(run)
                acc, loss, right = self._summary(run)
            else:
                only_db, only_rel, out_db, out_rel = math.inf, 0.0, math.inf, 0.0
                acc, loss, right = f_acc, self._summary(self._float_run)[1], f_right
            acc_db, acc_rel = self._unit_error(unit, self._variant_run)
            row.update(only_layer_sqnr_db=only_db, only_layer_rel_mse=only_rel, only_output_sqnr_db=out_db,
                       only_output_rel_mse=out_rel, only_accuracy=acc, only_change_pts=100 * (acc - f_acc),
                       only_lost=f_right - right, only_bits=loss / math.log(2),
                       accumulated_sqnr_db=acc_db, accumulated_rel_mse=acc_rel)
            rows.append(row)
        self._layers = rows
        return [dict(r) for r in rows]

    def ranking(self, by: str = "lost") -> list[str]:
        """The compressed layers, most harmful first: by examples lost when only that layer is compressed, then by
        the output's relative error it causes alone; or (``by="bits"``) by the mean cross-entropy in bits with only
        that layer compressed (a language model's bits per character), then by that error."""
        if by not in ("lost", "bits"):
            raise ValueError(f"The layers are ranked by 'lost' or 'bits'; got {by!r}.")
        rows = [r for r in self.layers() if r["compressed"]]
        rows.sort(key=lambda r: (-r["only_lost"] if by == "lost" else -r["only_bits"], -r["only_output_rel_mse"]))
        return [r["layer"] for r in rows]

    # ---- flipped examples ----------------------------------------------------------------------------------
    def example_errors(self) -> torch.Tensor:
        """(examples, layers) per-example relative error ‖a − â‖²/‖a‖² at each layer's output, all compressed."""
        cols = []
        for unit in self.units:
            a = torch.cat(self._float_run["acts"][unit]).flatten(1).double()
            b = torch.cat(self._variant_run["acts"][unit]).flatten(1).double()
            noise, signal = (a - b).pow(2).sum(1), a.pow(2).sum(1)
            cols.append(torch.where(noise == 0, torch.zeros_like(noise), noise / signal))  # x/0 = inf when noisy
        return torch.stack(cols, 1)

    def flips(self) -> list[dict]:
        """The examples whose predicted class differs between the float model and the variant (classifiers).

        Rows: index (into the debugger's x), label, float_pred, variant_pred, float_logits, variant_logits,
        float_probs, variant_probs (lists), errors ({layer: per-example relative error, all compressed}),
        first_divergence (the first layer whose error exceeds ``threshold``, or None), largest_jump (the layer
        whose error grew most over the previous layer's) and float_correct / variant_correct.
        """
        if self.language:
            raise ValueError("Flipped examples are for classifiers: a language model predicts every next character.")
        lf, lv = torch.cat(self._float_run["logits"]), torch.cat(self._variant_run["logits"])
        pf, pv = lf.argmax(1), lv.argmax(1)
        idx = torch.nonzero(pf != pv).flatten().tolist()
        if not idx:
            return []
        errs = self.example_errors()
        prob_f, prob_v = lf.softmax(1), lv.softmax(1)
        rows = []
        for i in idx:
            e = errs[i].tolist()
            over = [u for u, v in zip(self.units, e) if v > self.threshold]
            jumps = [e[0]] + [b - a for a, b in zip(e[:-1], e[1:])]
            label = int(self.y[i])
            rows.append({"index": i, "label": label, "float_pred": int(pf[i]), "variant_pred": int(pv[i]),
                         "float_correct": int(pf[i]) == label, "variant_correct": int(pv[i]) == label,
                         "float_logits": lf[i].tolist(), "variant_logits": lv[i].tolist(),
                         "float_probs": prob_f[i].tolist(), "variant_probs": prob_v[i].tolist(),
                         "errors": dict(zip(self.units, e)), "first_divergence": over[0] if over else None,
                         "largest_jump": self.units[max(range(len(jumps)), key=jumps.__getitem__)]})
        return rows

    # ---- revert ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _prefix(self) -> list[list[torch.Tensor]]:
        """Per batch, the variant's input to each top-level child (computed on the first revert)."""
        if self._cache is None:
            cache = []
            for xb, _ in self._batches():
                h, ins = xb, []
                for name in self.children:
                    ins.append(h)
                    h = self.variant._modules[name](h)
                cache.append(ins)
            self._cache = cache
        return self._cache

    def mixed(self, layers: Iterable[str]) -> nn.Module:
        """The variant with ``layers`` back to float (shares modules with the debugger: read only)."""
        layers = list(dict.fromkeys(layers))
        unknown = [u for u in layers if u not in self.units]
        if unknown:
            raise ValueError(f"No weighted layer {', '.join(unknown)}: the layers are {', '.join(self.units)}.")
        return swapped(self.variant, {u: _get(self.float, u) for u in layers})

    @torch.no_grad()
    def revert(self, layers: Sequence[str] | Iterable[str]) -> Reverted:
        """The variant with ``layers`` restored to float/dense, scored on the debugger's examples.

        Only the top-level children from the first reverted one on are re-run: the variant's activations before
        it come from a cache. Reverting every layer gives the float model's logits exactly."""
        layers = tuple(dict.fromkeys(layers))
        model = self.mixed(layers)
        start = min((self.children.index(u.split(".")[0]) for u in layers), default=len(self.children))
        out = {"logits": [], "loss": [], "correct": []}
        if start == len(self.children):
            out = self._variant_run
        else:
            rest = [model._modules[n] for n in self.children[start:]]
            for ins, (_, yb) in zip(self._prefix(), self._batches()):
                h = ins[start]
                for m in rest:
                    h = m(h)
                self._score(out, h, yb)
        acc, loss, right = self._summary(out)
        f_acc, _, f_right = self._summary(self._float_run)
        return Reverted(layers=layers, accuracy=acc, loss=loss, change_pts=100 * (acc - f_acc), lost=f_right - right,
                        n=self.n, model=model)


def _db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def _rel(signal: float, noise: float) -> float:
    if noise == 0.0:
        return 0.0
    return noise / signal if signal > 0 else math.inf
