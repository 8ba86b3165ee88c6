"""Issue 10: the same selection and setting give the same numbers wherever they appear."""
from .conftest import metrics, open_app, open_tab, table_with


def test_quantization_and_integer_pages_agree_on_accuracy_scales_and_zero_points():
    """Default 8-bit setting on digits·mlp: per-channel symmetric weights, affine 8-bit activations, min-max on the
    first 256 training examples, on both pages."""
    q = open_app("app_pages/quantization.py", {"q_qatcurve": "0"})
    i = open_app("app_pages/integer.py")
    assert not q.exception and not i.exception
    assert metrics(q)["Quantized accuracy"] == metrics(i)["Fake-quant acc."]
    assert metrics(q)["Float accuracy"] == metrics(i)["Float acc."]
    rep = table_with(open_tab(q, "q_view", "Error per layer"), "tensor")
    layers = table_with(open_tab(i, "int_view", "Every layer of the integer program"), "S_in")
    assert not q.exception and not i.exception
    for layer in layers["layer"]:
        row = layers[layers["layer"] == layer].iloc[0]
        q_in = rep[(rep["layer"] == layer) & (rep["tensor"] == "input")]
        q_out = rep[(rep["layer"] == layer) & (rep["tensor"] == "output")]
        if len(q_in):  # the report lists a layer's input where it is quantized on its own (the first layer)
            assert abs(q_in["scale"].iloc[0] - row["S_in"]) <= 1e-9 and q_in["zero_point"].iloc[0] == row["Z_in"]
        assert abs(q_out["scale"].iloc[0] - row["S_out"]) <= 1e-9 and q_out["zero_point"].iloc[0] == row["Z_out"]


def test_pruning_and_home_pages_agree_on_the_baseline():
    home, pruning = open_app(), open_app("app_pages/pruning.py", {"pr_sparsity": "0.0"})
    acc = metrics(home)["Test accuracy"]
    assert metrics(pruning)["Test accuracy"] == acc  # nothing pruned: the baseline itself
