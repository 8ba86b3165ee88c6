"""A compression recipe: a pipeline of steps applied to one trained baseline, as a frozen, hashable config.

A ``Recipe`` names the baseline (data set, model, seed and, optionally, its training config) and a tuple of
steps, run in order:

- ``Prune``: magnitude or random, per weight, per neuron/channel (the network is then shrunk to smaller dense
  layers) or 2:4; per layer or global; one-shot, iterative (prune → fine-tune → repeat) or gradual (cubic).
- ``FineTune``: train the network as it is, pruned weights held at zero.
- ``Distill``: fine-tune with knowledge distillation from the float baseline (Hinton et al. 2015), pruned weights
  held at zero; after a QAT ``Quantize`` it trains the fake-quantized network. ``control()`` is the same student
  trained as long without the teacher (α = 0: plain fine-tuning, bit for bit).
- ``Quantize``: post-training (calibrated ranges) or quantization-aware training (fake quantization with the
  straight-through estimator, or LSQ's learned steps); any bit width, scheme and granularity.
- ``Share``: k-means weight sharing (Han et al. 2016): each layer's survivors share 2^bits values.

Quantize and Share end a recipe (training after them would undo them), and only one of them is used; only Distill
steps may follow a quantization-aware Quantize (they train the fake-quantized network).
In JSON a step is a mapping with ``"step"`` naming its kind; everything round-trips, and a bad recipe is
refused with a message naming the step and the field.

Usage::

    r = Recipe("digits", "mlp", steps=(Prune(sparsity=0.9, finetune_epochs=1), Quantize(weight_bits=4)))
    Recipe.from_json(r.to_json()) == r      # True
    r.hash()                                # its cache entry's name
    PRESETS["prune 90 % + int4"]("digits", "mlp", 0)
    presets_for("gpt")["W8A8"]("pydoc", "gpt", 0)   # the GPT's own presets
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from ..catalog import parse_model
from ..config import SCOPES, Config, _hints, brief, param, read_json
from ..data import is_uploaded, list_datasets
from ..models import model_problems
from ..pruning import PruneSettings
from ..quant import METHODS as CALIBRATION_METHODS
from ..quant import QuantConfig
from ..train import TrainConfig

__all__ = ["GPT_PRESETS", "RECIPE_LIMITS", "STEPS", "PRESETS",
           "Distill", "FineTune", "Prune", "Quantize", "Recipe", "Share", "Step",
           "grid", "presets_for", "with_value"]

MAX_STEPS = 6
MAX_EPOCHS = 50
MAX_TRAIN_EPOCHS = 200  # a recipe's own baseline training (the sidebar's slider stops there too)

# What a recipe file may hold, checked on the raw text before it is parsed (``loads``) and on the parsed lists
# before any recipe or step is built: a forged file is refused in milliseconds, with at most about 25 MB allocated
# (the JSON of a 1 MB file at its worst; the Compare page's download of 6 recipes is about 10 KB).
RECIPE_LIMITS = {
    "chars": 1024 * 1024,  # the whole text
    "depth": 16,  # lists and mappings inside one another ({"recipes": [{"steps": [{...}]}]} is 4)
    "containers": 20_000,  # lists and mappings in all (a recipe needs about 10)
    "recipes": 1_000,  # recipes in one file
}


def _whole(config, name: str, lo: int, hi: int, what: str = "a whole number") -> list[str]:
    """The problem with field ``name`` of ``config`` unless it is an int (not a bool) in [lo, hi]."""
    v = getattr(config, name)
    ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    return [] if ok else [f"{name} must be {what} from {lo} to {hi} (got {brief(v)})"]


def _rate(config, name: str) -> list[str]:
    """The problem with a learning rate ``name`` of ``config`` unless it is in (0, 1]."""
    v = getattr(config, name)
    ok = isinstance(v, (int, float)) and 0 < v <= 1
    return [] if ok else [f"{name} must be above 0 and at most 1 (got {brief(v)})"]


def _choice(name: str, v: Any, choices) -> list[str]:
    return [] if v in choices else [f"{name} must be one of {', '.join(map(str, choices))} (got {brief(v)})"]


class Step(Config):
    """A recipe step: a config with a ``kind`` (its JSON ``"step"`` entry) and plain-words checks."""

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def canonical(self) -> dict:
        """A whole number given for a float field becomes a float: ``sparsity=0`` and ``0.0`` are one setting
        (one hash, one cache entry)."""
        hints = _hints(type(self))
        return {f.name: float(v) for f in dataclasses.fields(self) if hints.get(f.name) is float
                and isinstance(v := getattr(self, f.name), int) and not isinstance(v, bool)}

    def to_dict(self) -> dict:
        return {"step": self.kind, **super().to_dict()}

    def cache_dict(self) -> dict:
        return {"step": self.kind, **super().cache_dict()}

    @classmethod
    def _from_dict(cls, d: Any, where: str) -> "Step":
        if isinstance(d, Mapping) and "step" in d:  # its own to_dict names its kind
            if d["step"] != cls.kind:
                raise ValueError(f"{where}: a {brief(d['step'])} step is not a {cls.kind!r} step.")
            d = {k: v for k, v in d.items() if k != "step"}
        return super()._from_dict(d, where)


@dataclass(frozen=True)
class Prune(Step, label="prune"):
    """Remove weights (or whole neurons/channels, or 2 of every 4) and optionally fine-tune after each step."""

    kind: ClassVar[str] = "prune"
    title: ClassVar[str] = "Prune"

    sparsity: float = param(0.9, "fraction of weights (or neurons) removed, 0 ≤ s < 1")
    criterion: str = param("magnitude", "'magnitude' (smallest |w| first) or 'random'")
    granularity: str = param("weight", "'weight' (unstructured), 'neuron' (whole neurons/channels, or the GPT's MLP "
                                       "neurons, then the network is shrunk), 'head' (the GPT's attention heads, "
                                       "cut out) or 'nm' (2 of every 4)")
    scope: str = param("layer", "'layer': every layer at the same rate; 'global': one ranking across layers")
    schedule: str = param("one-shot", "'one-shot', 'iterative' (prune → fine-tune → repeat) or 'gradual' (cubic)")
    rounds: int = param(3, "pruning steps of the iterative and gradual schedules")
    finetune_epochs: int = param(1, "training epochs after each pruning step (0 = none)")
    finetune_lr: float = param(0.03, "fine-tuning learning rate (SGD with momentum 0.9)")
    output_scale: float = param(0.5, "the output layer's rate = sparsity × this (0 = not pruned)")

    def problems(self):
        if not isinstance(self.sparsity, (int, float)) or isinstance(self.sparsity, bool) \
                or not 0.0 <= self.sparsity < 1.0:
            yield f"sparsity must be at least 0 and below 1 (got {brief(self.sparsity)}): at 1 no weight is left"
        yield from _choice("criterion", self.criterion, ("magnitude", "random"))
        yield from _choice("granularity", self.granularity, ("weight", "neuron", "head", "nm"))
        yield from _choice("scope", self.scope, SCOPES)
        yield from _choice("schedule", self.schedule, ("one-shot", "iterative", "gradual"))
        yield from _whole(self, "rounds", 1, 10)
        yield from _whole(self, "finetune_epochs", 0, MAX_EPOCHS)
        yield from _rate(self, "finetune_lr")
        if not (isinstance(self.output_scale, (int, float)) and 0 <= self.output_scale <= 1):
            yield f"output_scale must be from 0 to 1 (got {brief(self.output_scale)})"

    def settings(self, seed: int) -> PruneSettings:
        """The ``PruneSettings`` this step runs (``compress_core.pruning.prune_with``)."""
        return PruneSettings(sparsity=float(self.sparsity), criterion=self.criterion, scope=self.scope,
                             granularity=self.granularity, output_scale=float(self.output_scale),
                             schedule=self.schedule, rounds=self.rounds, finetune_epochs=self.finetune_epochs,
                             finetune_lr=float(self.finetune_lr), seed=seed)

    def describe(self) -> str:
        what = {"weight": "unstructured", "neuron": "structured", "head": "attention heads", "nm": "2:4"}[
            self.granularity]
        amount = "" if self.granularity == "nm" else f" {self.sparsity:.0%}"
        tune = f", {self.finetune_epochs} ep fine-tune" if self.finetune_epochs else ""
        sched = "" if self.schedule == "one-shot" or self.granularity == "nm" else f" {self.schedule}×{self.rounds}"
        return f"prune {what}{amount}{sched}{tune}"


@dataclass(frozen=True)
class FineTune(Step, label="fine-tune"):
    """Train the network as it is (pruned weights stay zero)."""

    kind: ClassVar[str] = "finetune"
    title: ClassVar[str] = "Fine-tune"

    epochs: int = param(2, "passes over the training split")
    lr: float = param(1e-3, "learning rate")
    optimizer: str = param("adam", "'adam' or 'sgd' (momentum 0.9)")

    def problems(self):
        yield from _whole(self, "epochs", 1, MAX_EPOCHS)
        yield from _rate(self, "lr")
        yield from _choice("optimizer", self.optimizer, ("adam", "sgd"))

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=float(self.lr), optimizer=self.optimizer, batch_size=64)

    def describe(self) -> str:
        return f"fine-tune {self.epochs} ep"


TEACHERS = ("baseline",)


@dataclass(frozen=True)
class Distill(Step, label="distill"):
    """Fine-tune with knowledge distillation: α·T²·KL(teacher ‖ student at temperature T) + (1 − α)·cross-entropy."""

    kind: ClassVar[str] = "distill"
    title: ClassVar[str] = "Distill"

    teacher: str = param("baseline", "the teacher: 'baseline', the float network the recipe started from")
    T: float = param(4.0, "temperature: above 1 softens the teacher's and the student's outputs")
    alpha: float = param(0.9, "weight of the teacher's soft targets (0 = plain fine-tuning on the labels)")
    epochs: int = param(2, "passes over the training split")
    lr: float = param(1e-3, "learning rate")
    optimizer: str = param("adam", "'adam' or 'sgd' (momentum 0.9)")

    def problems(self):
        yield from _choice("teacher", self.teacher, TEACHERS)
        if not (isinstance(self.T, (int, float)) and not isinstance(self.T, bool) and 0 < self.T <= 100):
            yield f"T must be above 0 and at most 100 (got {brief(self.T)})"
        if not (isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool) and 0 <= self.alpha <= 1):
            yield f"alpha must be from 0 to 1 (got {brief(self.alpha)})"
        yield from _whole(self, "epochs", 1, MAX_EPOCHS)
        yield from _rate(self, "lr")
        yield from _choice("optimizer", self.optimizer, ("adam", "sgd"))

    def train_config(self) -> TrainConfig:
        """The same schedule as ``FineTune`` with these epochs, learning rate and optimizer."""
        return TrainConfig(epochs=self.epochs, lr=float(self.lr), optimizer=self.optimizer, batch_size=64)

    def control(self) -> "Distill":
        """The same-extra-training control: the student trained as long, on the labels alone (α = 0)."""
        return dataclasses.replace(self, alpha=0.0)

    def describe(self) -> str:
        if self.alpha == 0:
            return f"fine-tune {self.epochs} ep (distillation control)"
        return f"distill T={self.T:g} α={self.alpha:g} {self.epochs} ep"


@dataclass(frozen=True)
class Quantize(Step, label="quantize"):
    """Post-training quantization (calibrated ranges) or quantization-aware training; r = S(q − Z)."""

    kind: ClassVar[str] = "quantize"
    title: ClassVar[str] = "Quantize"

    mode: str = param("ptq", "'ptq' (post-training, calibrated) or 'qat' (quantization-aware training)")
    weight_bits: int = param(8, "bits per weight (signed)")
    act_bits: int = param(8, "bits per activation")
    target: str = param("both", "'both' (integer-only inference applies) or 'weights' (weights only)")
    per_channel: bool = param(True, "weights: one scale per output channel (else one per tensor)")
    weight_symmetric: bool = param(True, "weights: symmetric range, Z = 0 (keeps pruned weights exactly zero)")
    weight_method: str = param("minmax", "weight range calibration method")
    act_method: str = param("minmax", "activation range calibration method")
    calibration: int = param(256, "training examples used to calibrate the activation ranges")
    qat_epochs: int = param(3, "QAT only: fine-tuning epochs with fake quantization")
    qat_lr: float = param(5e-4, "QAT only: learning rate (Adam)")
    lsq: bool = param(False, "QAT only: learn the step sizes (LSQ, Esser et al. 2020)")

    def problems(self):
        yield from _choice("mode", self.mode, ("ptq", "qat"))
        yield from _whole(self, "weight_bits", 1, 8)
        yield from _whole(self, "act_bits", 2, 8)
        yield from _choice("target", self.target, ("both", "weights"))
        yield from _choice("weight_method", self.weight_method, CALIBRATION_METHODS)
        yield from _choice("act_method", self.act_method, CALIBRATION_METHODS)
        yield from _whole(self, "calibration", 1, 100_000, "a whole number of examples")
        yield from _whole(self, "qat_epochs", 1, MAX_EPOCHS)
        yield from _rate(self, "qat_lr")
        for name in ("per_channel", "weight_symmetric", "lsq"):
            if not isinstance(getattr(self, name), bool):
                yield f"{name} must be true or false (got {brief(getattr(self, name))})"

    def quant_config(self) -> QuantConfig:
        return QuantConfig(target=self.target, weight_bits=self.weight_bits, act_bits=self.act_bits,
                           weight_symmetric=self.weight_symmetric, per_channel=self.per_channel,
                           weight_method=self.weight_method, act_method=self.act_method)

    def describe(self) -> str:
        what = f"w{self.weight_bits}a{self.act_bits}" if self.target == "both" else f"w{self.weight_bits}"
        how = f"QAT {self.qat_epochs} ep" + (" LSQ" if self.lsq else "") if self.mode == "qat" else "PTQ"
        return f"{how} {what}" + ("" if self.per_channel else " per-tensor")


@dataclass(frozen=True)
class Share(Step, label="share"):
    """k-means weight sharing: each layer's surviving weights share k = 2^bits values (Han et al. 2016)."""

    kind: ClassVar[str] = "share"
    title: ClassVar[str] = "Share weights"

    bits: int = param(4, "bits per code: k = 2^bits shared values per layer")
    iters: int = param(30, "Lloyd iterations of k-means")
    centroid_epochs: int = param(1, "epochs of centroid fine-tuning (0 = none)")
    centroid_lr: float = param(1e-3, "learning rate of the centroids (Adam)")

    def problems(self):
        yield from _whole(self, "bits", 1, 8)
        yield from _whole(self, "iters", 1, 500)
        yield from _whole(self, "centroid_epochs", 0, MAX_EPOCHS)
        yield from _rate(self, "centroid_lr")

    def describe(self) -> str:
        return f"k-means {self.bits}-bit" + (f" + {self.centroid_epochs} ep centroids" if self.centroid_epochs else "")


STEPS: dict[str, type[Step]] = {c.kind: c for c in (Prune, FineTune, Distill, Quantize, Share)}
TERMINAL = ("quantize", "share")


def step_from_dict(d: Any, where: str) -> Step:
    """A step from its JSON mapping; ValueError naming ``where`` (e.g. "step 2") and the field."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: expected a mapping with a 'step' entry, got {type(d).__name__}.")
    d = dict(d)
    kind = d.pop("step", None)
    if not isinstance(kind, str) or kind not in STEPS:
        raise ValueError(f"{where}: unknown step {brief(kind)}; the steps are {', '.join(STEPS)}.")
    where = f"{where} ({kind})"
    try:
        return STEPS[kind]._from_dict(d, where)
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from None


@dataclass(frozen=True)
class Recipe(Config, label="recipe", version=1):
    """A baseline and the steps applied to it, in order."""

    dataset: str = param("digits", "the data set (compress_core.data.list_datasets())")
    model: str = param("mlp", "the architecture: a registered name or a spec such as 'mlp:256-128'")
    seed: int = param(0, "fixes the baseline, the data split and every step's randomness")
    steps: tuple = param((), "the pipeline: Prune, FineTune, Distill, Quantize and Share steps, in order")
    train: TrainConfig | None = param(None, "the baseline's training; None = the pair's default recipe")
    name: str = param("", "a label for tables and charts (not part of the cache key)", compare=False)
    weights: str = param("", "the digest of uploaded weights to start from (compress_core.uploads); '' = trained",
                         hash_default=False)

    def problems(self):
        if self.dataset not in list_datasets() and not is_uploaded(self.dataset):
            yield f"unknown data set {brief(self.dataset)}; the data sets are {', '.join(list_datasets())}"
        else:
            yield from (p.rstrip(".") for p in model_problems(self.model, self.dataset))
        yield from _whole(self, "seed", 0, 9999)
        epochs = getattr(self.train, "epochs", 0)
        if isinstance(epochs, int) and not 0 <= epochs <= MAX_TRAIN_EPOCHS:  # before a baseline trains for ever
            yield f"train.epochs must be from 0 to {MAX_TRAIN_EPOCHS} (got {brief(epochs)})"
        if not isinstance(self.steps, tuple) or not all(isinstance(s, Step) for s in self.steps):
            yield "steps must be a tuple of Prune, FineTune, Distill, Quantize or Share steps"
            return
        yield from self._family_problems()
        if len(self.steps) > MAX_STEPS:
            yield f"at most {MAX_STEPS} steps (got {len(self.steps)})"
        ends = [i for i, s in enumerate(self.steps, 1) if s.kind in TERMINAL]
        if len(ends) > 1:
            yield (f"steps {' and '.join(map(str, ends))} both quantize or share the weights: use one of them "
                   "(sharing and quantizing are two ways to store the same weights)")
        elif ends and ends[0] != len(self.steps):
            s = self.steps[ends[0] - 1]
            after = self.steps[ends[0]:]
            qat = s.kind == "quantize" and s.mode == "qat"
            if not (qat and all(a.kind == "distill" for a in after)):
                yield (f"step {ends[0]} ({s.kind}) must be the last step: training or pruning after it would undo it "
                       "(use QAT to train a quantized network; only Distill steps may follow a QAT step)")

    def family(self) -> str:
        """The model's family: "mlp", "cnn" or "gpt" ("" for a name that does not parse)."""
        try:
            return parse_model(self.model).family
        except ValueError:
            return ""

    def _family_problems(self):
        """Steps that do not fit the model's family: attention heads are the GPT's alone."""
        gpt = self.family() == "gpt"
        for i, s in enumerate(self.steps, 1):
            if isinstance(s, Prune) and s.granularity == "head" and not gpt:
                yield f"step {i} (prune): only the GPT has attention heads to cut; choose weight, neuron or nm"

    def cache_dict(self) -> dict:
        d = super().cache_dict()
        d.pop("name", None)  # a label does not change the result
        return d

    @classmethod
    def _from_dict(cls, d: Any, where: str) -> "Recipe":
        if isinstance(d, Mapping) and "steps" in d:
            steps = d["steps"]
            if not isinstance(steps, (list, tuple)):
                raise ValueError(f"{where}.steps: expected a list of steps, got {type(steps).__name__}.")
            if len(steps) > MAX_STEPS:  # before building any of them
                raise ValueError(f"{where}.steps: at most {MAX_STEPS} steps (got {len(steps):,}).")
            d = dict(d, steps=tuple(step_from_dict(s, f"step {i}") for i, s in enumerate(steps, 1)))
        return super()._from_dict(d, where)

    # ---- reading it --------------------------------------------------------------------------------
    def step(self, kind: str) -> Step | None:
        """The first step of this kind, or None."""
        return next((s for s in self.steps if s.kind == kind), None)

    def describe(self) -> str:
        return " → ".join(s.describe() for s in self.steps) or "float baseline"

    def distill_control(self) -> "Recipe":
        """This recipe with every Distill step replaced by its control (``Distill.control``: the student trained as
        long without the teacher), named "<title> (control)"; the fair reference for what distillation adds."""
        steps = tuple(s.control() if isinstance(s, Distill) else s for s in self.steps)
        return dataclasses.replace(self, steps=steps, name=f"{self.title} (control)")

    def training_control(self) -> "Recipe | None":
        """The float baseline given the same extra training as this recipe, compressed not at all: each step that
        trains the network becomes a ``FineTune`` of as many epochs with the same optimizer and learning rate (a
        pruning step's fine-tuning after each of its pruning steps, SGD with momentum 0.9; a QAT step's epochs,
        Adam; a Distill step's, on the labels alone; a FineTune as it is). A Share step's centroid fine-tuning is
        not counted: it trains only the k shared values of each layer, not the network. Named "<title> (dense
        control)"; None when the recipe trains nothing. A baseline trained for only a few epochs gains from more:
        a compressed variant that trains is better than float only if it beats this, not just the baseline."""
        out = []
        for s in self.steps:
            if isinstance(s, Prune) and s.finetune_epochs:
                epochs = s.finetune_epochs * len(s.settings(self.seed).targets())
                out.append(FineTune(epochs=min(epochs, MAX_EPOCHS), lr=s.finetune_lr, optimizer="sgd"))
            elif isinstance(s, FineTune):
                out.append(s)
            elif isinstance(s, Distill):
                out.append(FineTune(epochs=s.epochs, lr=s.lr, optimizer=s.optimizer))
            elif isinstance(s, Quantize) and s.mode == "qat":
                out.append(FineTune(epochs=s.qat_epochs, lr=s.qat_lr, optimizer="adam"))
        return dataclasses.replace(self, steps=tuple(out), name=f"{self.title} (dense control)") if out else None

    @property
    def title(self) -> str:
        return self.name or self.describe()


def with_value(recipe: Recipe, path: str, value: Any) -> Recipe:
    """A copy of ``recipe`` with one field changed: ``"seed"`` (a recipe field) or ``"prune.sparsity"`` (the first
    step of that kind; a missing step is added with its defaults, before Quantize/Share).

    >>> with_value(r, "quantize.weight_bits", 4)
    """
    if "." not in path:
        if path not in {f.name for f in dataclasses.fields(Recipe)}:
            raise ValueError(f"{path!r} is not a recipe field; use e.g. 'seed' or 'prune.sparsity'.")
        return dataclasses.replace(recipe, **{path: value})
    kind, field_name = path.split(".", 1)
    if kind not in STEPS:
        raise ValueError(f"{path!r}: unknown step {kind!r}; the steps are {', '.join(STEPS)}.")
    if field_name not in {f.name for f in dataclasses.fields(STEPS[kind])}:
        raise ValueError(f"{path!r}: {STEPS[kind].__name__} has no field {field_name!r}.")
    steps = list(recipe.steps)
    i = next((j for j, s in enumerate(steps) if s.kind == kind), None)
    if i is None:
        new = STEPS[kind](**{field_name: value})
        end = next((j for j, s in enumerate(steps) if s.kind in TERMINAL), len(steps))
        steps.insert(end if kind not in TERMINAL else len(steps), new)
    else:
        steps[i] = dataclasses.replace(steps[i], **{field_name: value})
    return dataclasses.replace(recipe, steps=tuple(steps))


def grid(recipe: Recipe, axes: Mapping[str, list]) -> list[Recipe]:
    """Every combination of the ``axes`` values ({path: values}, paths as in ``with_value``), first axis
    slowest: the recipes of a sweep, e.g. ``grid(r, {"prune.sparsity": [.5, .9], "quantize.weight_bits": [8, 4]})``.
    """
    out = [recipe]
    for path, values in axes.items():
        if not values:
            raise ValueError(f"The sweep axis {path!r} has no values.")
        out = [with_value(r, path, v) for r in out for v in values]
    return out


def loads(text: str) -> list[Recipe]:
    """Recipes from JSON text: one recipe, a list of them, or {"recipes": [...]} (the page's download).
    ValueError in plain words for anything else, naming the recipe, step and field.

    Bounds (``RECIPE_LIMITS``): the text's length, nesting depth and number of lists and mappings are read off the
    raw text before it is parsed, the number of recipes and of each recipe's steps before any is built, and every
    number is checked against its field's range as the recipe is built, before any work (no epochs=10^12 runs).
    A forged file is refused in milliseconds with at most about 25 MB allocated."""
    data = read_json(text, "The recipe file", max_chars=RECIPE_LIMITS["chars"], max_depth=RECIPE_LIMITS["depth"],
                     max_containers=RECIPE_LIMITS["containers"])
    if isinstance(data, Mapping) and "recipes" in data:
        data = data["recipes"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ValueError("The file holds no recipe.")
    if len(items) > RECIPE_LIMITS["recipes"]:
        raise ValueError(f"The file holds {len(items):,} recipes; the limit is {RECIPE_LIMITS['recipes']:,}.")
    out = []
    for i, item in enumerate(items, 1):
        try:
            out.append(Recipe.from_dict(item))
        except ValueError as e:
            raise ValueError(f"Recipe {i}: {e}") from None
    return out


def dumps(recipes: list[Recipe]) -> str:
    """The JSON ``loads`` reads back: {"recipes": [...]}, indented."""
    return json.dumps({"recipes": [r.to_dict() for r in recipes]}, indent=2, sort_keys=True)


# ---- presets ---------------------------------------------------------------------------------------------
def _preset(name: str, *steps: Step) -> Callable[[str, str, int], Recipe]:
    return lambda dataset, model, seed=0: Recipe(dataset, model, seed, steps=tuple(steps), name=name)


PRESETS: dict[str, Callable[..., Recipe]] = {
    "float baseline": _preset("float baseline"),
    "prune 90 %": _preset("prune 90 %", Prune(sparsity=0.9, schedule="iterative", rounds=3, finetune_epochs=1)),
    "int8": _preset("int8", Quantize(weight_bits=8, act_bits=8)),
    "prune 90 % + int4": _preset("prune 90 % + int4",
                                 Prune(sparsity=0.9, schedule="iterative", rounds=3, finetune_epochs=1),
                                 Quantize(weight_bits=4, act_bits=8)),
    "structured 50 % + int8": _preset("structured 50 % + int8",
                                      Prune(sparsity=0.5, granularity="neuron", finetune_epochs=2),
                                      Quantize(weight_bits=8, act_bits=8)),
    "Deep Compression": _preset("Deep Compression",
                                Prune(sparsity=0.9, schedule="iterative", rounds=3, finetune_epochs=1,
                                      output_scale=1.0),
                                Share(bits=4, centroid_epochs=1)),
    "int2 QAT": _preset("int2 QAT", Quantize(mode="qat", weight_bits=2, act_bits=8, qat_epochs=3)),
}

# The GPT's: what is done to language models (weight-only low-bit, W8A8, pruning with recovery by fine-tuning or
# distillation, attention heads cut out). Recovery is a FineTune / Distill step (Adam, the baseline's optimizer),
# not the Prune step's own SGD fine-tuning, which is tuned for the classifiers.
GPT_PRESETS: dict[str, Callable[..., Recipe]] = {
    "float baseline": _preset("float baseline"),
    "W4 weight-only": _preset("W4 weight-only", Quantize(weight_bits=4, target="weights")),
    "W8A8": _preset("W8A8", Quantize(weight_bits=8, act_bits=8)),
    "magnitude 50 % + fine-tune": _preset("magnitude 50 % + fine-tune", Prune(sparsity=0.5, finetune_epochs=0),
                                          FineTune(epochs=1)),
    "2:4 + fine-tune": _preset("2:4 + fine-tune", Prune(granularity="nm", finetune_epochs=0), FineTune(epochs=1)),
    "1 of 4 heads cut + fine-tune": _preset("1 of 4 heads cut + fine-tune",
                                            Prune(sparsity=0.25, granularity="head", finetune_epochs=0),
                                            FineTune(epochs=1)),
    "prune 50 % → distill": _preset("prune 50 % → distill", Prune(sparsity=0.5, finetune_epochs=0),
                                     Distill(epochs=1)),
    "W4 QAT": _preset("W4 QAT", Quantize(mode="qat", weight_bits=4, target="weights", qat_epochs=1)),
}


def presets_for(model: str) -> dict[str, Callable[..., Recipe]]:
    """The presets that fit ``model``'s family: ``GPT_PRESETS`` for a GPT, else ``PRESETS``."""
    try:
        gpt = parse_model(model).family == "gpt"
    except ValueError:
        gpt = False
    return GPT_PRESETS if gpt else PRESETS
