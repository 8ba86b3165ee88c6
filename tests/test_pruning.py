"""Masks, prune and apply_mask, checked against torch.nn.utils.prune on distinct magnitudes."""
import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

from compress_core.data import load_dataset
from compress_core.models import build_model, weighted_layers
from compress_core.pruning import Mask, apply_mask, is_nm_sparse, nm_prune, prune, prune_to, threshold


def with_distinct_magnitudes(model, seed=0):
    """Give every weight a distinct |w| (float32 initialisations contain ties) so rankings are unique."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in weighted_layers(model):
            n = m.weight.numel()
            mag = (torch.randperm(n, generator=g).float() + 1) / n
            sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
            m.weight.copy_((mag * sign).reshape(m.weight.shape) * 0.1)
    return model


@pytest.fixture(scope="module")
def mlp():
    return with_distinct_magnitudes(build_model("mlp", load_dataset("digits"), seed=0))


@pytest.fixture(scope="module")
def cnn():
    return with_distinct_magnitudes(build_model("cnn", load_dataset("digits"), seed=0), seed=1)


def torch_masks(model):
    return {f"{n}.weight": m.weight_mask.clone() for n, m in weighted_layers(model) if hasattr(m, "weight_mask")}


def assert_same(mask, ref):
    for k, v in ref.items():
        assert torch.equal(mask[k], v), k


def distinct(model):
    """The test models have distinct magnitudes (no ties), so the survivors are unique."""
    for _, m in weighted_layers(model):
        a = m.weight.detach().abs().flatten()
        assert a.unique().numel() == a.numel()


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 0.9, 0.999, 1.0])
def test_layerwise_matches_l1_unstructured(mlp, amount):
    distinct(mlp)
    ref = copy.deepcopy(mlp)
    for _, m in weighted_layers(ref):
        tprune.l1_unstructured(m, "weight", amount=amount)
    mask = prune(mlp, amount)
    assert_same(mask, torch_masks(ref))
    for name, m in weighted_layers(mlp):
        assert mask.pruned(name) == round(amount * m.weight.numel())


def test_repeated_pruning_prunes_fraction_of_survivors(cnn):
    ref = copy.deepcopy(cnn)
    mask = None
    for amount in (0.2, 0.2, 0.5, 0.3):
        for _, m in weighted_layers(ref):
            tprune.l1_unstructured(m, "weight", amount=amount)
        mask = prune(cnn, amount, mask=mask)
        assert_same(mask, torch_masks(ref))
    w = cnn.conv1.weight.numel()
    expected = w
    for amount in (0.2, 0.2, 0.5, 0.3):
        expected -= round(amount * expected)
    assert mask.kept("conv1") == expected


def test_global_matches_global_unstructured(mlp):
    ref = copy.deepcopy(mlp)
    mask = None
    for amount in (0.6, 0.25):
        tprune.global_unstructured([(m, "weight") for _, m in weighted_layers(ref)],
                                   pruning_method=tprune.L1Unstructured, amount=amount)
        mask = prune(mlp, amount, scope="global", mask=mask)
        assert_same(mask, torch_masks(ref))
    total = mask.total()
    assert mask.pruned() == round(0.6 * total) + round(0.25 * (total - round(0.6 * total)))


@pytest.mark.parametrize("norm", [1, 2])
def test_neurons_match_ln_structured(cnn, norm):
    ref = copy.deepcopy(cnn)
    out = weighted_layers(ref)[-1][0]
    mask = None
    for amount in (0.5, 0.34):
        for n, m in weighted_layers(ref):
            if n != out:
                tprune.ln_structured(m, "weight", amount=amount, n=norm, dim=0)
        mask = prune(cnn, amount, granularity="neuron", norm=norm, mask=mask)
        assert_same(mask, torch_masks(ref))
    assert mask.sparsity(out) == 0.0  # classes are never removed
    # a removed neuron loses its bias too
    assert torch.equal(mask["fc1.bias"], mask["fc1.weight"].any(dim=1).float())
    left = 16 - round(0.5 * 16)  # conv2 has 16 channels
    assert mask.kept_neurons("conv2").sum() == left - round(0.34 * left)


def test_random_criterion_exact_counts_and_seeded(mlp):
    a = prune(mlp, 0.7, criterion="random", seed=1)
    b = prune(mlp, 0.7, criterion="random", seed=1)
    c = prune(mlp, 0.7, criterion="random", seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    for name, m in weighted_layers(mlp):
        assert a.pruned(name) == round(0.7 * m.weight.numel())
    # random masks are not magnitude masks
    assert not torch.equal(a["fc1.weight"], prune(mlp, 0.7)["fc1.weight"])


def test_output_scale_and_exclude(mlp):
    m = prune(mlp, 0.8, output_scale=0.5, exclude=("fc2",))
    assert m.sparsity("fc1") == pytest.approx(0.8, abs=1e-4)
    assert m.sparsity("fc2") == 0.0
    assert m.pruned("fc3") == round(0.4 * mlp.fc3.weight.numel())
    assert prune(mlp, 0.8, output_scale=0.0).sparsity("fc3") == 0.0
    g = prune(mlp, 0.8, scope="global", output_scale=0.5)
    pool = mlp.fc1.weight.numel() + mlp.fc2.weight.numel()
    assert g.pruned("fc1") + g.pruned("fc2") == round(0.8 * pool)
    assert g.pruned("fc3") == round(0.4 * mlp.fc3.weight.numel())


def test_prune_is_pure_and_apply_mask_copies(mlp):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    mask = prune(mlp, 0.9, scope="global")
    pruned = apply_mask(mlp, mask)
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    for k, v in mask.items():
        p = dict(pruned.named_parameters())[k]
        assert torch.all(p[v == 0] == 0)
        assert torch.equal(p[v == 1], dict(mlp.named_parameters())[k][v == 1])
    t = threshold(mlp, mask, "fc1")
    kept = mlp.fc1.weight.detach().abs()[mask["fc1.weight"] == 1]
    assert t is not None and kept.min() > t or mask.kept("fc1") == 0


def test_prune_to_targets_overall_sparsity(mlp):
    m = None
    for target in (0.5, 0.75, 0.9):
        prev = m
        m = prune_to(mlp, target, mask=m)
        for name, layer in weighted_layers(mlp):
            assert m.pruned(name) == round(target * layer.weight.numel())
        if prev is not None:  # nothing restored
            assert all(torch.all(m[k] <= prev[k]) for k in prev)


def test_mask_counts_and_state_round_trip(mlp):
    m = prune(mlp, 0.5, granularity="neuron")
    assert m.total() == sum(layer.weight.numel() for _, layer in weighted_layers(mlp))
    assert m.kept() + m.pruned() == m.total()
    assert m.density() == pytest.approx(1 - m.sparsity())
    assert set(m.layer_sparsity()) == {"fc1", "fc2", "fc3"}
    assert m.total(include_bias=True) > m.total()
    back = Mask.from_state(m.to_state())
    assert isinstance(back, Mask) and all(torch.equal(back[k], m[k]) for k in m)
    assert all(v.dtype == torch.bool for v in m.to_state().values())
    with pytest.raises(ValueError):
        Mask.from_state({"fc1.weight": torch.full((2, 2), 0.5)})
    assert prune(mlp, 1.0).dead_layers() == ["fc1", "fc2", "fc3"]


def test_bad_input_messages(mlp):
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            prune(mlp, bad)
    with pytest.raises(ValueError, match="criterion"):
        prune(mlp, 0.5, criterion="gradient")
    with pytest.raises(ValueError, match="output layer"):
        prune(mlp, 0.8, output_scale=2.0)
    with pytest.raises(ValueError, match="no prunable layer"):
        prune(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="excluded"):
        prune(mlp, 0.5, exclude=("fc1", "fc2", "fc3"))
    with pytest.raises(ValueError, match="exclude"):
        prune(mlp, 0.5, exclude=("fc9",))
    with pytest.raises(ValueError, match="does not have"):
        apply_mask(mlp, {"fc9.weight": torch.ones(1)})
    assert prune(mlp, 1e-6).pruned() == 0  # a sparsity that rounds to nothing prunes nothing


def test_nm_masks(mlp, cnn):
    m = nm_prune(mlp, 2, 4)
    assert is_nm_sparse(m, 2, 4) and m.sparsity() == pytest.approx(0.5)
    w = mlp.fc2.weight.detach().abs().reshape(100, -1, 4)
    keep = m["fc2.weight"].reshape(100, -1, 4)
    # within every group the two kept weights are the two largest
    kept_min = torch.where(keep == 1, w, torch.full_like(w, float("inf"))).min(2).values
    cut_max = torch.where(keep == 0, w, torch.full_like(w, -1.0)).max(2).values
    assert torch.all(kept_min > cut_max)
    c = nm_prune(cnn, 2, 4)  # conv1 rows have 9 inputs: groups 4, 4, 1
    assert is_nm_sparse(c, 2, 4)
    assert c.kept("conv1") == 6 * (2 + 2 + 1)
    assert not is_nm_sparse(Mask.ones(mlp), 2, 4)
    with pytest.raises(ValueError):
        nm_prune(mlp, 5, 4)


def test_ties_broken_by_position_with_exact_count():
    from compress_core.pruning.masks import _remove_lowest
    score = torch.tensor([3.0, 1.0, 1.0, 2.0, 1.0, 0.5])
    alive = torch.tensor([True, True, True, True, True, False])
    # 0.5 is already pruned; among the three 1.0s the first two by position go
    assert _remove_lowest(score, alive, 2).tolist() == [False, True, True, False, False, False]
    assert _remove_lowest(score, alive, 4).tolist() == [False, True, True, True, True, False]
    assert _remove_lowest(score, alive, 9).sum() == 5 and not _remove_lowest(score, alive, 0).any()
    ref = torch.zeros(6, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 5, (1000,), generator=g).float()
    a = torch.rand(1000, generator=g) < 0.8
    idx = torch.nonzero(a).squeeze(1)
    ref = torch.zeros(1000, dtype=torch.bool)
    ref[idx[torch.argsort(s[idx], stable=True)[:300]]] = True
    assert torch.equal(_remove_lowest(s, a, 300), ref)  # the same set as a stable sort
