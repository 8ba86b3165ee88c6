"""Surgery: the shrunk model is smaller and computes exactly what the masked model computes."""
import pytest
import torch

from compress_core.data import load_dataset
from compress_core.models import build_model
from compress_core.pruning import Mask, apply_mask, kept_units, prune, shrink, structure_summary


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("dataset,model_name", [("digits", "mlp"), ("digits", "cnn"), ("mnist1d", "cnn"),
                                                ("mnist1d", "mlp"), ("moons", "tiny")])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.8])
def test_shrink_equals_masked_model(dataset, model_name, sparsity):
    ds = load_dataset(dataset)
    model = build_model(model_name, ds, seed=0)
    mask = prune(model, sparsity, granularity="neuron", scope="layer")
    small = shrink(model, mask)
    x = ds.x_test[:64]
    with torch.no_grad():
        assert torch.allclose(small(x), apply_mask(model, mask)(x), atol=1e-5)
    assert n_params(small) < n_params(model)
    for row in structure_summary(model, mask)[:-1]:  # every hidden layer lost round(s * units) units
        assert row["kept_units"] == row["units"] - round(sparsity * row["units"])


def test_cnn_surgery_shapes():
    ds = load_dataset("digits")
    model = build_model("cnn", ds, seed=0)
    mask = prune(model, 0.5, granularity="neuron")
    small = shrink(model, mask)
    assert small.conv1.out_channels == 3 and small.conv2.in_channels == 3
    assert small.conv2.out_channels == 8
    assert small.fc1.in_features == 8 * 2 * 2  # 8 channels × 2 × 2 after two pools of an 8×8 input
    assert small.fc1.out_features == 60 and small.fc2.in_features == 60
    assert small.fc3.out_features == 10
    # the model itself is untouched
    assert model.conv1.out_channels == 6 and model.fc1.in_features == 64


def test_shrink_drops_unread_neurons_and_keeps_unstructured_zeros():
    ds = load_dataset("digits")
    model = build_model("mlp", ds, seed=0)
    mask = Mask.ones(model)
    mask["fc2.weight"][:, :10] = 0  # nobody reads fc1's first 10 neurons any more
    mask["fc1.weight"][20:25, :3] = 0  # unstructured zeros that surgery cannot remove
    small = shrink(model, mask)
    assert small.fc1.out_features == 290 and small.fc2.in_features == 290
    assert int((small.fc1.weight == 0).sum()) == 15
    x = ds.x_test[:32]
    with torch.no_grad():
        assert torch.allclose(small(x), apply_mask(model, mask)(x), atol=1e-5)
    # an unstructured mask zeroing a row but not its bias keeps the neuron (it still outputs ReLU(b))
    m2 = Mask.ones(model)
    m2["fc1.weight"][0] = 0
    assert bool(kept_units(model, m2)["fc1"][0])


def test_shrink_refuses_a_cut_network():
    model = build_model("mlp", load_dataset("digits"), seed=0)
    with pytest.raises(ValueError, match="keep no neuron"):
        shrink(model, prune(model, 1.0, granularity="neuron"))


def test_shrink_names_the_layer_that_lost_every_neuron():
    """Global neuron pruning can empty a later layer (here fc2, its weights made tiny): the error names fc2,
    not fc1 (which then keeps nothing only because no one reads it)."""
    model = build_model("mlp", load_dataset("digits"), seed=0)
    with torch.no_grad():
        model.fc2.weight.mul_(1e-3)
    mask = prune(model, 0.7, granularity="neuron", scope="global")
    assert not bool(mask["fc2.weight"].any()) and bool(mask["fc1.weight"].any())
    with pytest.raises(ValueError, match="Layer 'fc2' would keep no neuron"):
        shrink(model, mask)
    # fc2 keeps its bias but reads nothing of fc1: the message names fc2 as the reader
    cut = Mask.ones(model)
    cut["fc2.weight"][:] = 0
    with pytest.raises(ValueError, match="Layer 'fc2' reads none of the neurons that 'fc1' keeps"):
        shrink(model, cut)
