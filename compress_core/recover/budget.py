"""How to get the accuracy back: the smallest model within an accuracy budget.

Given a compressed setting and a budget ("lose at most 0.5 points"), search for the smallest model whose accuracy
stays within the budget of the float model's, on the **validation** split (the test split is only measured at the
end, so the search does not overfit the test set).

- ``quant_budget_search``: start fully quantized at the chosen bits; rank the layers by the drop debugger (most
  harmful first: examples lost when only that layer is quantized, as NNCF's accuracy-aware quantization ranks
  them) and, one layer at a time, re-measuring after each step, give it more weight bits (mixed precision through
  ``QuantConfig.layer_bits``) or put it back to float, whichever option costs fewer bytes among those that recover
  as much as going to float would; stop as soon as the budget is met. Then shrink: lower layers' bits again,
  least harmful first, while the budget holds; and do the same from the narrowest uniform width that meets the
  budget, keeping the smaller result.
- ``prune_budget_search``: start with every layer at the target rate (magnitude, per layer); while over budget,
  lower the rate of the most sensitive layer (the debugger's ranking of the pruned variant) one step; once within
  budget, raise the rates of the least sensitive layers one step while the budget still holds.

A budget is met exactly, in examples: ``lost``·100 ≤ budget·n (the budget as the decimal typed,
``Fraction(str(budget))``), with ``lost`` the examples the float model gets right beyond those the result gets
right. A safety margin (``margin_pts``) makes the search hold itself to budget − margin on the validation split:
a small validation split (180 images on digits) is easy to fit by chance, and the test split then loses more.
``count="broken"`` charges every example the float model gets right and the candidate gets wrong, without
subtracting those it fixes: stricter, since a search over many candidates favours the ones lucky on validation.
Sizes: ``quant.analysis.model_size`` for quantized models, ``experiments.accounting.layer_costs`` (the best
of dense, bitmask and CSR per layer) for pruned ones. The verdict on the test split is the project's
honest-comparison rule (``stats.compare_accuracies``, or ``stats.compare_bits`` for a budget in bits, with the
budget as tolerance): "worse" means the loss is real (beyond 2 standard errors of zero) and its estimate is beyond
the budget; the rule does not test the excess over the budget against its own noise.

Units: a budget is in accuracy points (``unit="points"``; next-character accuracy for a language model, whose
verdict's standard error then treats every character as independent, which overstates the precision: characters of
one window are not), or, for a language model, in **bits per character** (``unit="bits"``: "at most 0.05 bits per
character more"). Then a candidate is charged the mean over the validation windows of its bits per character less
the float model's on the same window, the layers are ranked by the bits they add alone, and the verdict on the test
split pairs the windows (``stats.compare_bits``). Both searches walk nested Linear layers, so both run on the GPT.

Usage::

    res = quant_budget_search(b.model, ds, QuantConfig(weight_bits=3), budget_pts=0.5)
    res.bytes, res.float_bytes, res.settings, res.val_lost, res.test_comparison.words()
    res = prune_budget_search(b.model, ds, sparsity=0.9, budget_pts=1.0)
    res = quant_budget_search(gpt, text, QuantConfig(weight_bits=3), budget_pts=0.05, unit="bits")
    res.val_bpc, res.test_bpc, res.float_test_bpc, res.verdict()      # "+0.041 ± 0.004 bits/char, 1 s.e.: …"
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Sequence

import torch
from torch import nn

from ..data import Dataset
from ..experiments.accounting import layer_costs, summarize
from ..models import is_language_model, weighted_layers
from ..pruning.formats import bitmask_bytes, csr_bytes
from ..pruning.masks import Mask, apply_mask, prune
from ..quant.analysis import model_size
from ..quant.model import QuantConfig, quantize_model
from ..quant.primitives import MAX_BITS
from ..stats import BitsComparison, Comparison, compare_accuracies, compare_bits, standard_error
from ..text import window_losses
from ..train import evaluate, evaluate_examples
from .debugger import DropDebugger, swapped

__all__ = ["BudgetResult", "FLOAT", "float_bytes", "prune_budget_search", "pruned_bytes", "quant_budget_search",
           "rates_mask", "search_budget", "uniform_quant_bytes", "within_budget"]

FLOAT = 32  # a layer's "bits" once it is back to float
UNITS = ("points", "bits")  # accuracy points, or bits per character (a language model)
RANK_WINDOWS = 128  # a language model's layers are ranked on its first validation windows (activations are kept)


def within_budget(lost: int, n: int, budget_pts: float | Fraction) -> bool:
    """``lost`` examples out of ``n`` are within ``budget_pts`` points: lost·100 ≤ budget·n, exactly."""
    return lost * 100 <= Fraction(str(budget_pts)) * n


def search_budget(budget_pts: float, margin_pts: float, unit: str = "points") -> Fraction:
    """The budget the search holds itself to on the validation split: the budget less the safety margin, exactly."""
    if unit not in UNITS:
        raise ValueError(f"A budget is in {' or '.join(UNITS)}; got {unit!r}.")
    words, top = ("points", 100) if unit == "points" else ("bits per character", 8)
    if not 0 <= budget_pts <= top:
        raise ValueError(f"The budget is in {words}, between 0 and {top}.")
    if not 0 <= margin_pts <= budget_pts:
        raise ValueError(f"The safety margin is in {words}, between 0 and the budget.")
    return Fraction(str(budget_pts)) - Fraction(str(margin_pts))


def float_bytes(model: nn.Module) -> int:
    """Bytes of the float model: every weight and bias as float32 (``model_size``; for a language model, every
    parameter, embeddings and LayerNorms included)."""
    if is_language_model(model):
        return 4 * sum(p.numel() for p in model.parameters())
    return model_size(model)["bits"] // 8


@dataclass(frozen=True)
class BudgetResult:
    """The smallest model the search found within the budget, and what it scores.

    ``kind``: "quantization" or "pruning"; ``settings``: per layer, its weight bits (32 = float) or its pruning
    rate; ``steps``: the search's path, one dict per measurement (action, layer, value, val_acc, val_lost,
    charged — examples, or bits per character added, charged to the budget —, bytes, met, and val_bpc for a budget
    in bits); accuracies are fractions on the validation and test splits (``*_se``: binomial standard errors);
    ``*_lost``: examples (characters) lost against the float model there; ``*_bpc``: a language model's bits per
    character; ``test_comparison``: the result against the float model on the test split with the budget as
    tolerance (``stats.compare_accuracies``, or ``stats.compare_bits`` when ``unit`` is "bits")."""

    kind: str
    budget_pts: float
    settings: tuple[tuple[str, float], ...]
    bytes: int
    float_bytes: int
    val_acc: float
    val_se: float
    val_lost: int
    n_val: int
    test_acc: float
    test_se: float
    test_lost: int
    n_test: int
    float_val_acc: float
    float_test_acc: float
    steps: tuple[dict, ...]
    test_comparison: Comparison | BitsComparison
    model: nn.Module = field(repr=False, compare=False)
    margin_pts: float = 0.0  # the search held itself to budget − margin on the validation split
    count: str = "net"  # how it charged examples to the budget there: "net" or "broken"
    unit: str = "points"  # the budget's unit: accuracy "points" or "bits" per character
    # a language model's mean bits per character over the windows (None for a classifier)
    val_bpc: float | None = None
    test_bpc: float | None = None
    float_val_bpc: float | None = None
    float_test_bpc: float | None = None

    @property
    def met_val(self) -> bool:
        if self.unit == "bits":
            return self.val_bpc - self.float_val_bpc <= self.budget_pts + 1e-12
        return within_budget(self.val_lost, self.n_val, self.budget_pts)

    @property
    def met_test(self) -> bool:
        if self.unit == "bits":
            return self.test_bpc - self.float_test_bpc <= self.budget_pts + 1e-12
        return within_budget(self.test_lost, self.n_test, self.budget_pts)

    @property
    def ratio(self) -> float:
        """Float bytes / result bytes: how many times smaller than the float model."""
        return self.float_bytes / self.bytes

    def verdict(self) -> str:
        """In words, on the test split: e.g. "−0.3 ± 0.9 points, 1 s.e.: no difference beyond your tolerance…"."""
        return self.test_comparison.words()

    def to_dict(self) -> dict:
        return dict(kind=self.kind, budget_pts=self.budget_pts, margin_pts=self.margin_pts, count=self.count,
                    unit=self.unit, val_bpc=self.val_bpc, test_bpc=self.test_bpc, float_val_bpc=self.float_val_bpc,
                    float_test_bpc=self.float_test_bpc,
                    settings=dict(self.settings), bytes=self.bytes,
                    float_bytes=self.float_bytes, ratio=self.ratio, val_acc=self.val_acc, val_se=self.val_se,
                    val_lost=self.val_lost, n_val=self.n_val, test_acc=self.test_acc, test_se=self.test_se,
                    test_lost=self.test_lost, n_test=self.n_test, float_val_acc=self.float_val_acc,
                    float_test_acc=self.float_test_acc, met_val=self.met_val, met_test=self.met_test,
                    verdict=self.verdict(), outcome=self.test_comparison.outcome, steps=list(self.steps))


def _right(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return round(evaluate(model, x, y).accuracy * y.numel())


COUNTS = ("net", "broken")


class _Scorer:
    """Examples charged against the budget on (x, y): "net" = examples the float model gets right beyond those a
    candidate gets right; "broken" = examples the float model gets right and the candidate gets wrong (gains
    are not subtracted: a candidate that breaks three and fixes three by chance is not lossless)."""

    def __init__(self, float_model: nn.Module, x: torch.Tensor, y: torch.Tensor, count: str):
        self.x, self.y, self.count = x, y, count
        self.float_ok = self._correct(float_model)
        self.f_right = int(self.float_ok.sum())

    def _correct(self, model: nn.Module) -> torch.Tensor:
        return evaluate_examples(model, self.x, self.y)[1]

    def __call__(self, model: nn.Module) -> dict:
        """The measurement's row entries: charged (examples), val_lost (net examples lost), val_acc."""
        ok = self._correct(model)
        right = int(ok.sum())
        net = self.f_right - right
        charged = net if self.count == "net" else int((self.float_ok & ~ok).sum())
        return dict(val_acc=right / self.y.numel(), val_lost=net, charged=charged)

    def met(self, charged: int, target: Fraction) -> bool:
        return within_budget(charged, self.y.numel(), target)


def _window_bits(model: nn.Module, dataset: Dataset, split: str) -> tuple[torch.Tensor, int]:
    """(each window's bits per character, the characters right) of ``model`` on ``split``, in one pass."""
    losses, right = window_losses(model, dataset, split)
    return losses / math.log(2), right


class _BitsScorer:
    """Bits per character charged against the budget on a language model's validation windows: the mean over the
    windows of the candidate's bits per character less the float model's on the same window (paired)."""

    def __init__(self, float_model: nn.Module, dataset: Dataset):
        self.dataset, self.n = dataset, dataset.y_val.numel()
        self.float_w, self.f_right = _window_bits(float_model, dataset, "val")

    def __call__(self, model: nn.Module) -> dict:
        """charged (bits per character added, mean over the windows), val_lost (next characters lost), val_acc,
        val_bpc."""
        w, right = _window_bits(model, self.dataset, "val")
        return dict(val_acc=right / self.n, val_lost=self.f_right - right, charged=float((w - self.float_w).mean()),
                    val_bpc=float(w.mean()))

    @staticmethod
    def met(charged: float, target: Fraction) -> bool:
        return charged <= float(target) + 1e-12


def _scorer(model: nn.Module, dataset: Dataset, count: str, unit: str) -> _Scorer | _BitsScorer:
    if count not in COUNTS:
        raise ValueError(f"The examples charged to the budget are counted {' or '.join(COUNTS)}; got {count!r}.")
    if unit == "bits":
        if count != "net":
            raise ValueError("A budget in bits per character charges the mean bits added over the windows; "
                             "count='broken' is for budgets in accuracy points.")
        if not is_language_model(model):
            raise ValueError("A budget in bits per character is for the language model; a classifier's budget is "
                             "in accuracy points.")
        return _BitsScorer(model, dataset)
    return _Scorer(model, dataset.x_val, dataset.y_val, count)


def _ranking(model: nn.Module, compressed: nn.Module, dataset: Dataset, unit: str) -> list[str]:
    """The drop debugger's ranking of ``compressed``'s layers on the validation split, most harmful first: by
    examples lost alone, or (bits) by the bits per character each adds alone, on a language model's first
    ``RANK_WINDOWS`` windows (the debugger keeps every layer's activations)."""
    lm = is_language_model(model)
    xv, yv = (dataset.x_val[:RANK_WINDOWS], dataset.y_val[:RANK_WINDOWS]) if lm else (dataset.x_val, dataset.y_val)
    return DropDebugger(model, compressed, xv, yv).ranking(by="bits" if unit == "bits" else "lost")


def _result(kind: str, budget: float, margin: float, count: str, model: nn.Module, float_model: nn.Module,
            ds: Dataset, settings, nbytes: int, steps: list[dict], unit: str = "points") -> BudgetResult:
    nv, nt = ds.y_val.numel(), ds.y_test.numel()
    bpc = {}
    if unit == "bits":  # one pass per split and model gives both the bits per character and the characters right
        (fvw, fv), (ftw, ft) = (_window_bits(float_model, ds, s) for s in ("val", "test"))
        (rvw, rv), (rtw, rt) = (_window_bits(model, ds, s) for s in ("val", "test"))
        cmp = compare_bits(rtw.numpy(), ftw.numpy(), tolerance=budget)
        bpc = dict(val_bpc=float(rvw.mean()), test_bpc=float(rtw.mean()), float_val_bpc=float(fvw.mean()),
                   float_test_bpc=float(ftw.mean()))
    else:
        fv, ft = _right(float_model, ds.x_val, ds.y_val), _right(float_model, ds.x_test, ds.y_test)
        rv, rt = _right(model, ds.x_val, ds.y_val), _right(model, ds.x_test, ds.y_test)
        cmp = compare_accuracies([rt / nt], [ft / nt], nt, tolerance=budget)
    return BudgetResult(kind=kind, budget_pts=float(budget), settings=tuple(settings), bytes=int(nbytes),
                        float_bytes=float_bytes(float_model), val_acc=rv / nv, val_se=standard_error(rv / nv, nv),
                        val_lost=fv - rv, n_val=nv, test_acc=rt / nt, test_se=standard_error(rt / nt, nt),
                        test_lost=ft - rt, n_test=nt, float_val_acc=fv / nv, float_test_acc=ft / nt,
                        steps=tuple(steps), test_comparison=cmp, model=model, margin_pts=float(margin), count=count,
                        unit=unit, **bpc)


# ---- quantization ----------------------------------------------------------------------------------------
def quant_budget_search(model: nn.Module, dataset: Dataset, config: QuantConfig = QuantConfig(weight_bits=4),
                        budget_pts: float = 0.5, *, raise_bits: Sequence[int] = (3, 4, 5, 6, 8),
                        margin_pts: float = 0.0, count: str = "net", calibration_data: torch.Tensor | None = None,
                        callback: Callable[[dict], None] | None = None, unit: str = "points") -> BudgetResult:
    """The smallest mixed-precision / partly float quantized ``model`` within ``budget_pts`` on the validation split.

    Args:
        model: the float model (a classifier, or the GPT, whose nested Linear layers are the ones searched); never
            changed.
        dataset: its data set: the search measures on ``x_val``, the result is also scored on ``x_test``.
        config: the quantization every layer starts from (``weight_bits``; activations as configured).
        budget_pts: the most accuracy points the result may lose against the float model (``unit="points"``), or the
            most bits per character it may add (``unit="bits"``, a language model).
        raise_bits: weight bit widths a harmful layer may be raised to (those above ``config.weight_bits``),
            besides going back to float.
        margin_pts: a safety margin: the search holds itself to ``budget_pts − margin_pts`` on the validation
            split, so that the result more often stays within the budget on data it has not seen.
        count: what the budget is charged on the validation split: "net" (examples lost, less those gained) or
            "broken" (examples the float model gets right that the candidate gets wrong; stricter).
        calibration_data: inputs for activation ranges (default: the first 256 training examples).
        callback: called with each step's dict as the search goes.
        unit: "points" or "bits" (module docstring).

    1. Recover: each step takes the next layer of the debugger's ranking (computed once, on the fully quantized
       model) and measures every option for it: each higher bit width, and float. It keeps the cheapest option
       that meets the budget if one does (and stops), else the cheapest that recovers as many examples as float.
       Should the ranking run out first, layers go back to float in its order until the budget is met (all
       float always meets it).
    2. Shrink: each layer, least harmful first, steps back down (float → the widest bits → … → the starting
       bits) as long as the budget still holds and the model gets smaller.
    3. Uniform start: the narrowest uniform width above the starting bits that meets the budget (if any, and if
       smaller than the result so far) is shrunk the same way; the smaller of the two results is kept. Greedy
       recovery can overshoot (it raises the most harmful layer, however large, as far as it takes), so the result
       is never bigger than the best uniform width among ``raise_bits``, on the validation split.
    """
    target = search_budget(budget_pts, margin_pts, unit)
    names = [nm for nm, _ in weighted_layers(model)]
    if not names:
        raise ValueError("The model has no Linear or Conv layer to quantize.")
    calib = calibration_data if calibration_data is not None else dataset.x_train[:256]
    score = _scorer(model, dataset, count, unit)
    levels = sorted({config.weight_bits, *(b for b in raise_bits if config.weight_bits < b <= MAX_BITS)}) + [FLOAT]
    steps: list[dict] = []

    def measure(action: str, layer: str, setting: dict) -> tuple[dict, nn.Module]:
        cfg = replace(config, layer_bits=tuple((k, b) for k, b in setting.items()
                                               if b not in (FLOAT, config.weight_bits)))
        q = quantize_model(model, cfg, calib)
        m = swapped(q, {k: copy.deepcopy(model.get_submodule(k)) for k, b in setting.items() if b == FLOAT})
        row = dict(action=action, layer=layer, value=setting.get(layer, config.weight_bits), **score(m),
                   bytes=model_size(m)["bits"] // 8)
        row["met"] = score.met(row["charged"], target)
        steps.append(row)
        if callback:
            callback(row)
        return row, m

    setting = {nm: config.weight_bits for nm in names}
    row, current = measure("start", "", setting)
    ranking = _ranking(model, current, dataset, unit)
    for layer in ranking:
        if row["met"]:
            break
        options = [(*measure("raise bits" if b != FLOAT else "to float", layer, {**setting, layer: b}), b)
                   for b in levels if b > setting[layer]]
        to_float = options[-1][0]
        pool = [o for o in options if o[0]["met"]] or [o for o in options if o[0]["charged"] <= to_float["charged"]]
        row, current, b = min(pool, key=lambda o: (o[0]["bytes"], o[0]["charged"]))
        setting = {**setting, layer: b}
        steps.append(dict(row, action="keep"))
    for layer in ranking:
        if row["met"]:
            break
        if setting[layer] != FLOAT:
            setting = {**setting, layer: FLOAT}
            row, current = measure("to float", layer, setting)
    def shrink(setting: dict, row: dict, current: nn.Module, ranking: list[str]):
        for layer in reversed(ranking):
            while row["met"] and setting[layer] != levels[0]:
                lower = levels[levels.index(setting[layer]) - 1]
                t_row, t_model = measure("lower bits", layer, {**setting, layer: lower})
                if not t_row["met"] or t_row["bytes"] >= row["bytes"]:
                    break
                setting, row, current = {**setting, layer: lower}, t_row, t_model
        return setting, row, current

    best = shrink(setting, row, current, ranking)
    # 3. the same shrink from the narrowest uniform width that meets the budget, when there is one above the start
    for b in levels[1:-1]:
        u_setting = {nm: b for nm in names}
        u_row, u_model = measure("uniform", "", u_setting)
        if u_row["met"]:
            if u_row["bytes"] < best[1]["bytes"]:
                cand = shrink(u_setting, u_row, u_model, _ranking(model, u_model, dataset, unit))
                best = min(best, cand, key=lambda c: c[1]["bytes"])
            break
    setting, row, current = best
    steps.append(dict(row, action="result"))
    settings = [(nm, setting[nm]) for nm in names]
    return _result("quantization", budget_pts, margin_pts, count, current, model, dataset, settings, row["bytes"],
                   steps, unit)


def uniform_quant_bytes(model: nn.Module, dataset: Dataset, config: QuantConfig, budget_pts: float,
                        bits: Sequence[int] = (2, 3, 4, 5, 6, 7, 8), *, margin_pts: float = 0.0, count: str = "net",
                        calibration_data: torch.Tensor | None = None, unit: str = "points") -> tuple[int | None, int]:
    """(the fewest uniform weight bits within budget on the validation split, its bytes); (None, float bytes)
    when no width in ``bits`` meets it. The reference the search's mixed result is compared with."""
    target = search_budget(budget_pts, margin_pts, unit)
    calib = calibration_data if calibration_data is not None else dataset.x_train[:256]
    score = _scorer(model, dataset, count, unit)
    for b in sorted(bits):
        q = quantize_model(model, replace(config, weight_bits=int(b), layer_bits=()), calib)
        if score.met(score(q)["charged"], target):
            return int(b), model_size(q)["bits"] // 8
    return None, float_bytes(model)


# ---- pruning ---------------------------------------------------------------------------------------------
def rates_mask(model: nn.Module, rates: dict[str, float]) -> Mask:
    """A magnitude mask with each layer pruned at its own rate (``rates``: {layer: fraction removed})."""
    names = [nm for nm, _ in weighted_layers(model)]
    out = Mask.ones(model)
    for nm in names:
        if rates.get(nm, 0.0) > 0:
            m = prune(model, rates[nm], exclude=[x for x in names if x != nm])
            out[f"{nm}.weight"] = m[f"{nm}.weight"]
    return out


def pruned_bytes(model: nn.Module, mask: Mask, input_shape: tuple[int, ...]) -> int:
    """Stored bytes of a pruned float model: per layer the smallest of dense, bitmask and CSR (float32 values),
    ``experiments.accounting.layer_costs``. A language model's nested layers are priced the same way with
    ``pruning.formats`` (``layer_costs`` walks a chain of layers), plus its other parameters dense."""
    if not is_language_model(model):
        return int(summarize(layer_costs(model, mask, input_shape))["bytes"])
    weights = {f"{n}.weight": m.weight for n, m in weighted_layers(model)}
    total = 4 * sum(p.numel() for k, p in model.named_parameters() if k not in weights)
    for k, w in weights.items():
        m = mask[k].detach().cpu() if k in mask else torch.ones(w.shape)
        total += min(4 * w.numel(), bitmask_bytes(m), csr_bytes(m))
    return int(total)


def prune_budget_search(model: nn.Module, dataset: Dataset, sparsity: float = 0.9, budget_pts: float = 0.5, *,
                        step: float = 0.1, max_rate: float = 0.99, margin_pts: float = 0.0, count: str = "net",
                        callback: Callable[[dict], None] | None = None, unit: str = "points") -> BudgetResult:
    """Per-layer magnitude-pruning rates: the smallest pruned ``model`` within ``budget_pts`` on the validation split.

    Args:
        model: the float network; never changed.
        dataset: measured on ``x_val``; the result is also scored on ``x_test``.
        sparsity: the starting rate of every layer.
        budget_pts: the most accuracy points the result may lose against the float model, or (``unit="bits"``) the
            most bits per character it may add.
        step: how much one step lowers (or raises) a layer's rate.
        max_rate: the highest rate a layer may be raised to.
        margin_pts, count, unit: a safety margin, how examples are charged and the budget's unit, as in
            ``quant_budget_search``.
        callback: called with each step's dict.

    While over budget: the debugger ranks the layers of the current pruned model (examples lost, or with
    ``unit="bits"`` bits per character added, when only that
    layer is pruned); the most harmful one with a rate above 0 loses ``step``. Once within budget: each layer in
    the reverse order of that ranking (least harmful first) gains ``step`` as long as the budget still holds.
    """
    target = search_budget(budget_pts, margin_pts, unit)
    if not 0.0 <= sparsity <= 1.0 or not 0.0 < step <= 1.0:
        raise ValueError("The starting rate must be in [0, 1] and the step in (0, 1].")
    score = _scorer(model, dataset, count, unit)
    names = [nm for nm, _ in weighted_layers(model)]
    rates = {nm: float(sparsity) for nm in names}
    steps: list[dict] = []

    def measure(action: str, layer: str, rates_: dict) -> tuple[dict, Mask, nn.Module]:
        mask = rates_mask(model, rates_)
        net = apply_mask(model, mask)
        row = dict(action=action, layer=layer, value=rates_.get(layer, sparsity), **score(net),
                   bytes=pruned_bytes(model, mask, dataset.input_shape), sparsity=mask.sparsity())
        row["met"] = score.met(row["charged"], target)
        steps.append(row)
        if callback:
            callback(row)
        return row, mask, net

    row, mask, net = measure("start", "", rates)
    while not row["met"]:
        order = [nm for nm in _ranking(model, net, dataset, unit) if rates[nm] > 0]
        if not order:
            order = [nm for nm in names if rates[nm] > 0]
        if not order:
            break
        layer = order[0]
        rates = {**rates, layer: round(max(0.0, rates[layer] - step), 6)}
        row, mask, net = measure("lower rate", layer, rates)
    ranking = _ranking(model, net, dataset, unit)
    for layer in reversed(ranking + [nm for nm in names if nm not in ranking]):
        while rates[layer] + step <= max_rate + 1e-9:
            trial = {**rates, layer: round(rates[layer] + step, 6)}
            t_row, _, t_net = measure("raise rate", layer, trial)
            if not t_row["met"] or t_row["bytes"] >= row["bytes"]:
                break
            rates, row, net = trial, t_row, t_net
    steps.append(dict(row, action="result"))  # the last row is the result's, as in ``quant_budget_search``
    settings = [(nm, rates[nm]) for nm in names]
    return _result("pruning", budget_pts, margin_pts, count, net, model, dataset, settings, row["bytes"], steps, unit)
