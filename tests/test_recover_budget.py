"""The accuracy-budget search: its result meets the budget on the validation split, is no bigger than the float
model, and its figures (bytes, accuracies, lost examples, verdict) recompute independently."""
import math
from dataclasses import replace

import pytest
import torch

from compress_core.pruning import apply_mask
from compress_core.quant import QuantConfig, model_size, quantize_model
from compress_core.recover import prune_budget_search, quant_budget_search
from compress_core.recover.budget import FLOAT, pruned_bytes, rates_mask, uniform_quant_bytes, within_budget
from compress_core.stats import compare_accuracies, compare_bits
from compress_core.train import evaluate


def right(model, x, y) -> int:
    return round(evaluate(model, x, y).accuracy * y.numel())


def test_within_budget_counts_examples_exactly():
    assert within_budget(1, 200, 0.5) and not within_budget(1, 199, 0.5)
    assert within_budget(0, 180, 0) and not within_budget(1, 180, 0)
    assert within_budget(-2, 180, 0)  # gaining examples is within any budget


@pytest.mark.parametrize("budget", [0.5, 1.0])
def test_quant_search_meets_the_budget_and_recomputes(digits_mlp, budget):
    b, ds = digits_mlp
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    cfg = QuantConfig(target="weights", weight_bits=2)
    res = quant_budget_search(b.model, ds, cfg, budget)
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in before.items())  # the baseline is untouched
    f_val = right(b.model, ds.x_val, ds.y_val)
    assert res.val_lost == f_val - right(res.model, ds.x_val, ds.y_val)
    assert res.met_val and res.val_lost * 100 <= budget * len(ds.y_val)
    assert res.bytes <= res.float_bytes == model_size(b.model)["bits"] // 8
    assert res.bytes == model_size(res.model)["bits"] // 8
    # the settings rebuild the same model: mixed bits through layer_bits, float layers put back
    settings = dict(res.settings)
    q = quantize_model(b.model, replace(cfg, layer_bits=tuple((k, v) for k, v in settings.items()
                                                              if v not in (FLOAT, cfg.weight_bits))))
    for name, bits in settings.items():
        if bits == FLOAT:
            setattr(q, name, getattr(b.model, name))
    assert torch.equal(q(ds.x_test), res.model(ds.x_test))
    # the test split is measured apart, and the verdict is the project's rule with the budget as tolerance
    f_test = right(b.model, ds.x_test, ds.y_test)
    assert res.test_lost == f_test - right(res.model, ds.x_test, ds.y_test)
    n = len(ds.y_test)
    cmp = compare_accuracies([res.test_acc], [f_test / n], n, tolerance=budget)
    assert res.test_comparison == cmp and res.verdict() == cmp.words()
    # never bigger than the narrowest uniform width that meets the budget on the validation split
    u_bits, u_bytes = uniform_quant_bytes(b.model, ds, cfg, budget, bits=(3, 4, 5, 6, 8))
    assert res.bytes <= u_bytes


def test_quant_search_with_nothing_to_recover_stays_at_the_start(digits_mlp):
    b, ds = digits_mlp
    res = quant_budget_search(b.model, ds, QuantConfig(target="weights", weight_bits=8), 100.0)
    assert all(bits == 8 for _, bits in res.settings) and res.steps[0]["action"] == "start"
    assert res.bytes == model_size(quantize_model(b.model, QuantConfig(target="weights")))["bits"] // 8


def test_prune_search_meets_the_budget_with_its_rates(digits_mlp):
    b, ds = digits_mlp
    res = prune_budget_search(b.model, ds, sparsity=0.97, budget_pts=1.0, step=0.1)
    assert res.met_val and res.bytes <= res.float_bytes
    rates = dict(res.settings)
    mask = rates_mask(b.model, rates)
    for name, rate in rates.items():  # each layer removed round(rate · count) of its weights
        w = mask[f"{name}.weight"]
        assert int((w == 0).sum()) == round(rate * w.numel())
    net = apply_mask(b.model, mask)
    assert torch.equal(net(ds.x_val), res.model(ds.x_val))
    assert res.bytes == pruned_bytes(b.model, mask, ds.input_shape)
    assert res.val_lost == right(b.model, ds.x_val, ds.y_val) - right(net, ds.x_val, ds.y_val)


def test_bad_settings_are_refused_in_words(digits_mlp):
    b, ds = digits_mlp
    with pytest.raises(ValueError, match="budget is in points"):
        quant_budget_search(b.model, ds, QuantConfig(), -1)
    with pytest.raises(ValueError, match="starting rate"):
        prune_budget_search(b.model, ds, sparsity=1.5)


def test_a_safety_margin_holds_the_search_to_less_than_the_budget(digits_mlp):
    b, ds = digits_mlp
    cfg = QuantConfig(target="weights", weight_bits=2)
    res = quant_budget_search(b.model, ds, cfg, 1.0, margin_pts=1.0)
    assert res.val_lost <= 0 and res.margin_pts == 1.0  # 1 − 1 = 0 points: no example lost on validation
    assert res.met_val and res.to_dict()["margin_pts"] == 1.0
    with pytest.raises(ValueError, match="margin"):
        prune_budget_search(b.model, ds, budget_pts=0.5, margin_pts=1.0)


def test_counting_broken_examples_charges_every_one_the_float_model_had_right(digits_mlp):
    b, ds = digits_mlp
    res = quant_budget_search(b.model, ds, QuantConfig(target="weights", weight_bits=2), 1.0, count="broken")
    with torch.no_grad():
        f_ok = b.model(ds.x_val).argmax(1) == ds.y_val
        r_ok = res.model(ds.x_val).argmax(1) == ds.y_val
    broken = int((f_ok & ~r_ok).sum())
    assert broken * 100 <= 1.0 * len(ds.y_val) and res.count == "broken"
    assert res.steps[-1]["charged"] == broken and res.val_lost <= broken
    with pytest.raises(ValueError, match="counted"):
        prune_budget_search(b.model, ds, count="gross")


@pytest.fixture(scope="module")
def toy_gpt():
    """A one-block GPT, 16 wide, trained (150 Adam steps, about a second) on windows where each next character is
    the next letter of an 11-letter alphabet: confident and right on nearly every character, so compressing it
    costs characters and bits."""
    from compress_core.data import Dataset
    from compress_core.gpt import build_gpt

    torch.manual_seed(0)
    gpt = build_gpt(vocab=11, context=8, layers=1, width=16, heads=2)
    g = torch.Generator().manual_seed(1)
    x = (torch.randint(0, 11, (60, 1), generator=g) + torch.arange(8)) % 11
    y = (x + 1) % 11
    opt = torch.optim.Adam(gpt.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(gpt(x[:20]), y[:20]).backward()
        opt.step()
    ds = Dataset(name="toy", kind="text", x_train=x[:20], y_train=y[:20], x_val=x[20:40], y_val=y[20:40],
                 x_test=x[40:], y_test=y[40:], input_shape=(8,), class_names=tuple("abcdefghijk"))
    return gpt.eval(), ds


GPT_LAYERS = {"block1.attn.q", "block1.attn.k", "block1.attn.v", "block1.attn.proj", "block1.mlp.fc", "block1.mlp.fc2"}


def _window_bpc(model, x, y) -> torch.Tensor:
    """Each window's mean cross-entropy in bits, by hand: the reference for the search's bits per character."""
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(x), y, reduction="none").double().mean(1) / math.log(2)


def test_prune_search_on_a_language_model(toy_gpt):
    gpt, ds = toy_gpt
    res = prune_budget_search(gpt, ds, sparsity=0.5, budget_pts=2.0, step=0.25)
    assert res.met_val and res.n_val == 20 * 8 and res.float_bytes == 4 * sum(p.numel() for p in gpt.parameters())
    assert res.bytes <= res.float_bytes and res.unit == "points" and res.val_bpc is None
    assert {n for n, _ in res.settings} == GPT_LAYERS


@pytest.mark.parametrize("search", ["quant", "prune"])
def test_a_budget_in_bits_per_character_on_the_gpt_is_met_and_recomputes(toy_gpt, search):
    """The GPT's budget in bits per character: the search holds the validation windows' mean paired difference
    within it; every figure of the result recomputes by hand, and the verdict is compare_bits on the test windows."""
    gpt, ds = toy_gpt
    fv, ft = _window_bpc(gpt, ds.x_val, ds.y_val), _window_bpc(gpt, ds.x_test, ds.y_test)
    if search == "quant":
        cfg = QuantConfig(target="weights", weight_bits=2)
        start = quantize_model(gpt, cfg, ds.x_train)
    else:
        start = apply_mask(gpt, rates_mask(gpt, dict.fromkeys(GPT_LAYERS, 0.9)))
    added = float((_window_bpc(start, ds.x_val, ds.y_val) - fv).mean())
    budget = round(added / 2, 4)  # half of what the uniform start adds: the search has something to recover
    assert budget > 0
    if search == "quant":
        res = quant_budget_search(gpt, ds, cfg, budget, unit="bits", calibration_data=ds.x_train)
        assert any(b > 2 for _, b in res.settings)  # over the budget at the start: some layer had to be raised
    else:
        res = prune_budget_search(gpt, ds, sparsity=0.9, budget_pts=budget, step=0.25, unit="bits")
    assert res.steps[0]["charged"] == pytest.approx(added, abs=1e-9) and not res.steps[0]["met"]
    assert res.unit == "bits" and {n for n, _ in res.settings} == GPT_LAYERS
    rv, rt = _window_bpc(res.model, ds.x_val, ds.y_val), _window_bpc(res.model, ds.x_test, ds.y_test)
    assert res.val_bpc == pytest.approx(float(rv.mean()), abs=1e-9)
    assert res.float_test_bpc == pytest.approx(float(ft.mean()), abs=1e-9)
    assert res.met_val and float((rv - fv).mean()) <= budget + 1e-9
    assert res.steps[-1]["charged"] == pytest.approx(float((rv - fv).mean()), abs=1e-9)
    ref = compare_bits(rt.numpy(), ft.numpy(), tolerance=budget)
    assert res.test_comparison == ref and res.verdict() == ref.words()
    assert res.met_test == (float((rt - ft).mean()) <= budget + 1e-12)
    assert res.bytes <= res.float_bytes


def test_a_budget_in_bits_is_for_a_language_model(digits_mlp, toy_gpt):
    b, ds = digits_mlp
    with pytest.raises(ValueError, match="language model"):
        quant_budget_search(b.model, ds, QuantConfig(weight_bits=3), 0.1, unit="bits")
    gpt, text = toy_gpt
    with pytest.raises(ValueError, match="bits per character, between 0 and 8"):
        quant_budget_search(gpt, text, QuantConfig(weight_bits=3), 9.0, unit="bits")
    with pytest.raises(ValueError, match="points or bits"):
        prune_budget_search(gpt, text, unit="nats")
    with pytest.raises(ValueError, match="count='broken' is for budgets in accuracy points"):
        prune_budget_search(gpt, text, unit="bits", count="broken")
