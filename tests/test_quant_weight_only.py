"""Model-level weight-only quantization on the digits baselines: GPTQ below RTN on every layer, copies on the
quantizers' grids, sequential calibration, and storage counted bit by bit."""
import pytest
import torch
from torch import nn

from compress_core.baselines import get_baseline
from compress_core.layer_inputs import capture_inputs, input_stats, layers_of, weight_matrix
from compress_core.quant.gptq import gptq
from compress_core.quant.groupwise import storage_bits
from compress_core.quant.weight_only import layer_errors, quantize_weights, weight_storage


@pytest.fixture(scope="module")
def digits():
    from compress_core.data import load_dataset

    ds = load_dataset("digits")
    models = {arch: get_baseline("digits", arch).model for arch in ("mlp", "cnn")}
    return models, ds.x_train[:512]


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_gptq_and_awq_below_rtn_on_every_layer(digits, arch):
    """The layer-wise objective ‖XWᵀ − XŴᵀ‖²/N on the float calibration rows, convolutions included."""
    models, x = digits
    inputs = capture_inputs(models[arch], x)
    for bits, g in [(2, "channel"), (3, 32), (4, "channel"), (4, 32)]:
        for row in layer_errors(models[arch], inputs, bits, g):
            assert row["gptq"] < row["rtn"], row
            assert row["awq"] < row["rtn"], row


def _levels_per_group(w2d: torch.Tensor, g: int) -> int:
    return max(len(w2d[r, i:i + g].unique()) for r in range(len(w2d)) for i in range(0, w2d.shape[1], g))


def test_quantized_copies_lie_on_their_grids(digits):
    models, x = digits
    model = models["cnn"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = capture_inputs(model, x)
    for method in ("rtn", "gptq", "awq"):
        q = quantize_weights(model, 3, 16, method=method, calibration=inputs)
        for name, m in layers_of(q):
            # AWQ stores Q(W·diag(s)): on the grid in its own (scaled) space
            assert _levels_per_group(weight_matrix(m).detach(), 16) <= 8, (method, name)
            assert not torch.equal(m.weight, model.get_submodule(name).weight)
        assert not q.training
    only = quantize_weights(model, 3, 16, layers=["fc1"])
    assert torch.equal(only.fc2.weight, model.fc2.weight) and not torch.equal(only.fc1.weight, model.fc1.weight)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    awq_q = quantize_weights(model, 3, 16, method="awq", calibration=x)  # model inputs are captured too
    assert type(awq_q.conv1).__name__ == "ScaledConv2d" and awq_q.conv1.input_scale.shape == (1,)
    with pytest.raises(ValueError):
        quantize_weights(model, 3, 16, method="gptq")  # no calibration data
    with pytest.raises(ValueError):
        quantize_weights(model, 3, 16, method="awq", calibration=inputs, sequential=True)
    with pytest.raises(TypeError):
        quantize_weights(model, 3, 16, act_order=True)  # an option RTN does not have


def test_sequential_gptq_calibrates_on_the_quantized_prefix(digits):
    models, x = digits
    model = models["mlp"]
    once = quantize_weights(model, 3, 32, method="gptq", calibration=x)
    seq = quantize_weights(model, 3, 32, method="gptq", calibration=x, sequential=True)
    torch.testing.assert_close(seq.fc1.weight, once.fc1.weight, rtol=0, atol=0)  # the same inputs for layer 1
    # layer 2 is GPTQ on the rows that the quantized layer 1 produces
    prefix = quantize_weights(model, 3, 32, method="gptq", calibration=x, layers=["fc1"])
    rows = capture_inputs(prefix, x, ["fc2"])["fc2"]
    torch.testing.assert_close(seq.fc2.weight, gptq(model.fc2.weight, input_stats(rows).gram, 3, 32), rtol=0, atol=0)
    assert not torch.equal(seq.fc2.weight, once.fc2.weight)


def test_weight_storage_counts_every_bit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.LayerNorm(10))
    params = sum(p.numel() for p in model.parameters())
    s = weight_storage(model, 4, 32, layers=["0", "2"])
    expected = (32 * 64 * 4 + 32 * 2 * 20) + (10 * 32 * 4 + 10 * 1 * 20) + (32 + 10 + 20) * 32
    assert s["bits"] == expected and s["float_bits"] == params * 32
    assert s["bits_per_weight"] == pytest.approx((storage_bits(32, 64, 4, 32) + storage_bits(10, 32, 4, 32)) / 2368)
    per_channel = weight_storage(model, 8, "channel", layers=["0"], symmetric=True)
    assert per_channel["layers"][0]["bits"] == 32 * 64 * 8 + 32 * 16
    x = torch.randn(200, 64)
    awq_q = quantize_weights(model, 4, 32, method="awq", calibration=x)  # each layer keeps its 1/s: 16 bits each
    assert weight_storage(awq_q, 4, 32)["bits"] == expected + (64 + 32) * 16
