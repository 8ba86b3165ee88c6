"""Data sets and models: shapes, splits, determinism, registry errors."""
import numpy as np
import pytest
import torch

from compress_core.data import _load_builtin, list_datasets, load_dataset
from compress_core.models import build_model, list_models, summary, weighted_layers

EXPECTED = {  # name: (kind, input shape, classes, total examples)
    "digits": ("image", (1, 8, 8), 10, 1797),
    "mnist1d": ("sequence", (1, 40), 10, 5000),
    "moons": ("points", (2,), 2, 1000),
    "spirals": ("points", (2,), 3, 1200),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_dataset_shapes_and_splits(name):
    ds = load_dataset(name, seed=0)
    kind, shape, classes, total = EXPECTED[name]
    assert ds.kind == kind and ds.input_shape == shape and ds.num_classes == classes
    assert sum(ds.sizes.values()) == total
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.shape[1:] == shape and x.dtype == torch.float32 and y.dtype == torch.int64 and len(x) == len(y)
        assert torch.isfinite(x).all()
    assert set(ds.y_train.unique().tolist()) == set(range(classes))
    # normalised with training statistics
    assert abs(float(ds.x_train.mean())) < 1e-3 and abs(float(ds.x_train.std()) - 1) < 1e-2


def test_mnist1d_matches_published_split():
    ds = load_dataset("mnist1d", seed=3)
    assert ds.sizes == {"train": 3500, "val": 500, "test": 1000}


def test_split_is_fixed_by_seed():
    a, b, c = _load_builtin.__wrapped__("digits", 0), _load_builtin.__wrapped__("digits", 0), load_dataset("digits", 1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)


def test_splits_are_disjoint():
    ds = load_dataset("digits", 0)
    rows = lambda x: {tuple(r) for r in x.reshape(len(x), -1).numpy().round(4).tolist()}  # noqa: E731
    assert not rows(ds.x_test) & rows(ds.x_train) - rows(ds.x_val) or len(rows(ds.x_test) & rows(ds.x_train)) < 5


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="digits, mnist1d, moons, spirals"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="mlp, cnn, tiny"):
        build_model("resnet", "digits")
    with pytest.raises(ValueError, match="not built for points"):
        build_model("cnn", "moons")


@pytest.mark.parametrize("ds_name", list(EXPECTED))
def test_models_forward_and_summary(ds_name):
    ds = load_dataset(ds_name)
    for m in list_models(ds_name):
        model = build_model(m, ds, seed=0)
        out = model(ds.x_val[:7])
        assert out.shape == (7, ds.num_classes)
        info = summary(model, ds.input_shape)
        assert info["total_params"] == sum(p.numel() for p in model.parameters())
        assert info["total_bytes"] == 4 * info["total_params"]
        # only Linear / Conv layers carry parameters
        names = {n for n, _ in weighted_layers(model)}
        assert {n.rsplit(".", 1)[0] for n, _ in model.named_parameters()} == names


def test_mlp_is_lenet_300_100():
    model = build_model("mlp", "digits")
    assert [m.out_features for _, m in weighted_layers(model)] == [300, 100, 10]
    assert list_models("moons") == ["mlp", "tiny"] and list_models("mnist1d") == ["mlp", "cnn"]
    with pytest.raises(ValueError, match="not built for image"):
        build_model("tiny", "digits")


def test_init_is_fixed_by_seed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("cnn", "digits", seed=5)
    after = torch.rand(1)
    b = build_model("cnn", "digits", seed=5)
    c = build_model("cnn", "digits", seed=6)
    assert torch.equal(before, after)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert list_datasets() == [*EXPECTED, "pydoc"]  # the text corpus: tests/test_text_gpt.py
    assert np.isfinite(a(torch.zeros(1, 1, 8, 8)).detach().numpy()).all()


def test_digits_file_reader_matches_sklearn_loader():
    from sklearn.datasets import load_digits

    from compress_core.data import _digits_arrays

    images, target = _digits_arrays()
    ref = load_digits()
    assert np.array_equal(images, ref.images.astype(np.float32)) and np.array_equal(target, ref.target)
