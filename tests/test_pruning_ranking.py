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
