"""Ranking.mask(s) is exactly prune(model, s) on every setting: rank once, then one comparison per weight."""
import itertools

import pytest
import torch

from compress_core.models import build_model
from compress_core.pruning import prune
from compress_core.pruning.ranking import Ranking

SETTINGS = list(itertools.product(("magnitude", "random"), ("layer", "global"), ("weight", "neuron"),
                                  (1.0, 0.5, 0.0)))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    mlp = build_model("mlp", "digits")
    cnn = build_model("cnn", "digits")
    with torch.no_grad():  # ties: many equal magnitudes, so the tie-break by position is exercised
        mlp.fc1.weight[:, :64] = torch.round(mlp.fc1.weight[:, :64] * 20) / 20
    return {"mlp": mlp, "cnn": cnn}


@pytest.mark.parametrize("criterion,scope,granularity,output_scale", SETTINGS)
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_ranking_mask_equals_prune(models, name, criterion, scope, granularity, output_scale):
    model = models[name]
    ranking = Ranking(model, criterion=criterion, scope=scope, granularity=granularity, output_scale=output_scale,
                      seed=3)
    for s in (0.0, 0.001, 0.37, 0.5, 0.9, 0.999, 1.0):
        want = prune(model, s, criterion=criterion, scope=scope, granularity=granularity,
                     output_scale=output_scale, seed=3)
        got = ranking.mask(s)
        assert set(got) == set(want)
        for k in want:
            assert torch.equal(got[k], want[k]), (k, s)


def test_ranking_refuses_bad_input(models):
    with pytest.raises(ValueError, match="Sparsity"):
        Ranking(models["mlp"]).mask(1.5)
    with pytest.raises(ValueError, match="Cannot exclude"):
        Ranking(models["mlp"], exclude=["nope"])
    with pytest.raises(ValueError, match="criterion"):
        Ranking(models["mlp"], criterion="taylor")


def test_prune_with_a_reused_ranking_gives_the_same_outcome():
    """The page builds one Ranking per setting and reuses it for every sparsity: same mask, same accuracy."""
    from compress_core.baselines import get_baseline
    from compress_core.data import load_dataset
    from compress_core.pruning import PruneSettings, prune_with, ranking_for

    ds = load_dataset("moons")
    model = get_baseline("moons", "tiny", seed=0).model
    for kw in (dict(), dict(scope="global", output_scale=0.5), dict(granularity="neuron"), dict(criterion="random")):
        base = PruneSettings(**kw)
        ranking = ranking_for(model, base)
        for sparsity in (0.3, 0.9, 0.99):
            s = PruneSettings(**kw, sparsity=sparsity)
            fresh, reused = prune_with(model, ds, s), prune_with(model, ds, s, ranking=ranking)
            assert all(torch.equal(fresh.mask[k], reused.mask[k]) for k in fresh.mask)
            assert fresh.metrics == reused.metrics
    assert ranking_for(model, PruneSettings(granularity="nm")) is None
