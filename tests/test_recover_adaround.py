"""AdaRound (Nagel et al. 2020): h(V) and the β schedule against hand transcriptions; on a trained digits·cnn the
weights land on the quantization grid, each one floor or ceil of w/S, and every layer's objective ‖(W − W̃)X‖²/N,
counted directly on the calibration rows, is at most round-to-nearest's; pruned weights stay zero; the model is an
ordinary quantized model (integer-only inference converts it)."""
import math

import pytest
import torch

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.integer import integer_accuracy, to_integer
from compress_core.layer_inputs import capture_inputs, weight_matrix
from compress_core.pruning import apply_mask, prune_to
from compress_core.quant import QuantConfig, fake_quantize, quant_layers, quantize_model
from compress_core.recover.adaround import AdaRoundConfig, adaround_model, beta_at, rectified_sigmoid, regulariser
from compress_core.train import evaluate

FAST = AdaRoundConfig(iterations=400)


def test_the_rectified_sigmoid_is_the_papers():
    vs = [-12.0, -3.0, -2.3978952728, -0.5, 0.0, 0.7, 2.3978952728, 3.0, 12.0]
    for v in vs:
        want = min(1.0, max(0.0, 1.0 / (1.0 + math.exp(-v)) * (1.1 - (-0.1)) + (-0.1)))
        assert rectified_sigmoid(torch.tensor(v, dtype=torch.float64)).item() == pytest.approx(want, abs=1e-12)
    assert rectified_sigmoid(torch.tensor(0.0)).item() == pytest.approx(0.5)


def test_beta_falls_linearly_from_20_to_2_after_the_warm_start():
    cfg = AdaRoundConfig(iterations=100, warm_start=0.2)
    assert [beta_at(i, cfg) for i in (0, 19)] == [None, None]
    assert beta_at(20, cfg) == 20.0 and beta_at(60, cfg) == pytest.approx(11.0) and beta_at(99, cfg) == pytest.approx(
        2.0 + 18.0 * (1 - 79 / 80))
    h = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    assert regulariser(h, 2.0).item() == pytest.approx(sum(1 - abs(2 * x - 1) ** 2 for x in h.tolist()))


@pytest.fixture(scope="module", params=[dict(weight_bits=3), dict(weight_bits=4, per_channel=False,
                                                                   weight_symmetric=False)],
                ids=["w3-per-channel", "w4-per-tensor-affine"])
def rounded(request):
    ds = load_dataset("digits")
    model = get_baseline("digits", "cnn").model.eval()
    calib = ds.x_train[:512]
    config = QuantConfig(target="weights", **request.param)
    return ds, model, calib, config, adaround_model(model, config, calib, FAST)


def test_the_weights_are_on_the_grid_and_each_is_floor_or_ceil(rounded):
    _, model, calib, config, res = rounded
    near = dict(quant_layers(quantize_model(model, config, calib)))
    for name, ql in quant_layers(res.model):
        qp = ql.weight_qparams
        assert torch.equal(ql.quantized_weight(), ql.weight), name  # fake quantization leaves it where it is
        s, z = qp.broadcast(ql.weight)
        q = torch.round(ql.weight / s) + z
        assert torch.allclose(ql.weight, s * (q - z), rtol=0, atol=1e-6)
        w = model.get_submodule(name).weight.detach()
        lo = torch.clamp(torch.floor(w / s) + z, qp.qmin, qp.qmax)
        hi = torch.clamp(torch.ceil(w / s) + z, qp.qmin, qp.qmax)
        assert torch.all((q == lo) | (q == hi)), name
        assert torch.equal(near[name].weight_qparams.scale, qp.scale)  # the same grid as round-to-nearest


def test_every_layers_objective_is_at_most_round_to_nearests(rounded):
    _, model, calib, config, res = rounded
    rows = capture_inputs(model, calib)
    near = dict(quant_layers(quantize_model(model, config, calib)))
    for row, (name, ql) in zip(res.layers, quant_layers(res.model)):
        x = rows[name].double()
        w = weight_matrix(model.get_submodule(name)).detach().double()
        direct = lambda w_hat: float(((x @ (w - w_hat).T) ** 2).sum(1).mean())  # noqa: E731  ‖(W − W̃)x‖² per row
        ada = direct(weight_matrix(ql).detach().double())
        rtn = direct(fake_quantize(near[name].weight, near[name].weight_qparams).reshape(w.shape).detach().double())
        assert row["layer"] == name
        assert ada == pytest.approx(row["objective"], rel=1e-4) and rtn == pytest.approx(row["objective_nearest"],
                                                                                          rel=1e-4)
        assert ada <= rtn, name
        assert 0 < row["flipped"] < 0.5
    assert sum(r["objective"] for r in res.layers) < 0.8 * sum(r["objective_nearest"] for r in res.layers)


def test_the_model_is_an_ordinary_quantized_model(rounded):
    ds, model, calib, config, res = rounded
    acc = evaluate(res.model, ds.x_test, ds.y_test).accuracy
    assert acc >= 0.9
    both = adaround_model(model, QuantConfig(target="both", weight_bits=4), calib, AdaRoundConfig(iterations=50))
    program = to_integer(both.model, ds.input_shape)
    assert abs(integer_accuracy(program, ds.x_test, ds.y_test) - evaluate(both.model, ds.x_test, ds.y_test).accuracy) \
        <= 0.02
    for n, p in get_baseline("digits", "cnn").model.named_parameters():  # the float model is untouched
        assert torch.equal(p, dict(model.named_parameters())[n])


def test_pruned_weights_stay_zero():
    ds = load_dataset("digits")
    base = get_baseline("digits", "cnn").model.eval()
    mask = prune_to(base, 0.7)
    pruned = apply_mask(base, mask)
    res = adaround_model(pruned, QuantConfig(target="weights", weight_bits=3), ds.x_train[:256],
                         AdaRoundConfig(iterations=100))
    for name, ql in quant_layers(res.model):
        assert torch.all(ql.weight[mask[f"{name}.weight"] == 0] == 0), name


@pytest.mark.parametrize("kwargs, words", [(dict(config=QuantConfig(target="activations")), "quantize the weights"),
                                           (dict(data=0), "calibration data")])
def test_adaround_refuses_what_it_cannot_do(kwargs, words):
    ds = load_dataset("digits")
    model = get_baseline("digits", "cnn").model
    data = ds.x_train[:0] if "data" in kwargs else ds.x_train[:32]
    with pytest.raises(ValueError, match=words):
        adaround_model(model, kwargs.get("config", QuantConfig(target="weights")), data, AdaRoundConfig(iterations=1))


@pytest.mark.parametrize("field, value", [("iterations", 0), ("lr", 0.0), ("reg", -1.0), ("beta_end", 30.0),
                                          ("warm_start", 1.0), ("inputs", "raw")])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        AdaRoundConfig(**{field: value})


def test_quantized_inputs_objective_is_the_papers_asymmetric_loss_and_beats_nearest_overall():
    """inputs="quantized": ‖W X_f − W̃ X_q‖²/N with X_q from the network whose earlier layers are already rounded (and
    whose activations are fake-quantized here), counted directly on the rows and compared with what is reported."""
    ds = load_dataset("digits")
    model = get_baseline("digits", "cnn").model.eval()
    calib = ds.x_train[:256]
    config = QuantConfig(target="both", weight_bits=3, act_bits=6)
    res = adaround_model(model, config, calib, AdaRoundConfig(iterations=400, inputs="quantized", max_rows=100_000))
    rounded = dict(quant_layers(res.model))
    near = dict(quant_layers(quantize_model(model, config, calib)))
    h_f, h_q = calib, calib
    with torch.no_grad():
        for (name, f), (_, q) in zip(model.named_children(), res.model.named_children()):
            if name in rounded:
                ql = rounded[name]
                x_q = fake_quantize(h_q, ql.input_qparams) if ql.quantize_input else h_q
                y_f = f(h_f)  # W x_f + b
                direct = lambda w_hat: float(((y_f - ql.linear_op(x_q, w_hat, f.bias)) ** 2)  # noqa: E731
                                             .transpose(0, 1).reshape(y_f.shape[1], -1).sum(0).mean())
                row = next(r for r in res.layers if r["layer"] == name)
                assert direct(ql.weight) == pytest.approx(row["objective"], rel=1e-3), name
                assert direct(fake_quantize(f.weight, near[name].weight_qparams)) == pytest.approx(
                    row["objective_nearest"], rel=1e-3), name
                assert torch.equal(ql.quantized_weight(), ql.weight), name
            h_f, h_q = f(h_f), q(h_q)
    assert sum(r["objective"] for r in res.layers) < sum(r["objective_nearest"] for r in res.layers)
    assert evaluate(res.model, ds.x_test, ds.y_test).accuracy >= 0.9


def test_mixed_precision_bits_are_each_layers_own():
    ds = load_dataset("digits")
    model = get_baseline("digits", "cnn").model.eval()
    config = QuantConfig(target="weights", weight_bits=4, layer_bits=(("fc1", 2),))
    res = adaround_model(model, config, ds.x_train[:128], AdaRoundConfig(iterations=50))
    layers = dict(quant_layers(res.model))
    assert layers["fc1"].weight_qparams.bits == 2 and layers["fc2"].weight_qparams.bits == 4
    for name, levels in (("fc1", 4), ("fc2", 16)):
        w = layers[name].weight.detach()
        assert max(torch.unique(row).numel() for row in w) <= levels, name
        assert torch.equal(layers[name].quantized_weight(), w), name


def test_progress_callback_names_each_layer_then_ends(rounded):
    ds, model, calib, config, _ = rounded
    seen = []
    adaround_model(model, config, calib, AdaRoundConfig(iterations=5), callback=seen.append)
    names = [n for n, _ in quant_layers(quantize_model(model, config, calib))]
    assert [r["layer"] for r in seen] == names + [""]
    assert [r["index"] for r in seen] == list(range(len(names) + 1))
    assert all(r["layers"] == len(names) for r in seen)
