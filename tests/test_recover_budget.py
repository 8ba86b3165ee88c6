"""The accuracy-budget search: its result meets the budget on the validation split, is no bigger than the float
model, and its figures (bytes, accuracies, lost examples, verdict) recompute independently."""
from dataclasses import replace

import pytest
import torch

from compress_core.pruning import apply_mask
from compress_core.quant import QuantConfig, model_size, quantize_model
from compress_core.recover import prune_budget_search, quant_budget_search
from compress_core.recover.budget import FLOAT, pruned_bytes, rates_mask, uniform_quant_bytes, within_budget
from compress_core.stats import compare_accuracies
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


def test_prune_search_on_a_language_model_and_the_quant_search_refuses_it():
    from compress_core.data import Dataset
    from compress_core.gpt import build_gpt

    torch.manual_seed(0)
    gpt = build_gpt(vocab=11, context=8, layers=1, width=16, heads=2).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 11, (60, 8), generator=g)
    with torch.no_grad():
        y = gpt(x).argmax(1)  # the float model is right everywhere: any character it breaks is lost
    ds = Dataset(name="toy", kind="text", x_train=x[:20], y_train=y[:20], x_val=x[20:40], y_val=y[20:40],
                 x_test=x[40:], y_test=y[40:], input_shape=(8,), class_names=tuple("abcdefghijk"))
    res = prune_budget_search(gpt, ds, sparsity=0.5, budget_pts=2.0, step=0.25)
    assert res.met_val and res.n_val == 20 * 8 and res.float_bytes == 4 * sum(p.numel() for p in gpt.parameters())
    assert res.bytes <= res.float_bytes
    assert {n for n, _ in res.settings} == {"block1.attn.q", "block1.attn.k", "block1.attn.v", "block1.attn.proj",
                                            "block1.mlp.fc", "block1.mlp.fc2"}
    with pytest.raises(ValueError, match="MLPs and CNNs"):
        quant_budget_search(gpt, ds, QuantConfig(target="weights"), 1.0)
