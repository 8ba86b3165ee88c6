"""The captured rows reproduce each layer's output: W·rows (+ bias) equals what the layer computed."""
import torch
from torch import nn

from compress_core.layer_inputs import capture_inputs, input_stats, layers_of, weight_matrix


def _check_rows_reproduce_outputs(model, x):
    outs = {}
    hooks = [m.register_forward_hook(lambda _m, _a, o, n=n: outs.__setitem__(n, o.detach()))
             for n, m in layers_of(model)]
    model(x)
    for h in hooks:
        h.remove()
    inputs = capture_inputs(model, x, max_rows=10 ** 9)
    for name, m in layers_of(model):
        y = inputs[name] @ weight_matrix(m).T + m.bias
        o = outs[name]
        ref = o.reshape(-1, o.shape[-1]) if isinstance(m, nn.Linear) else o.movedim(1, -1).reshape(-1, o.shape[1])
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)


def test_rows_reproduce_linear_and_conv_outputs():
    torch.manual_seed(0)
    cnn2 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    cnn1 = nn.Sequential(nn.Conv1d(2, 3, 5, padding=2, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 10, 4))
    seq = nn.Sequential(nn.Linear(6, 7), nn.GELU(), nn.Linear(7, 3))  # 3-D input: (batch, tokens, features)
    _check_rows_reproduce_outputs(cnn2, torch.randn(5, 1, 8, 8))
    _check_rows_reproduce_outputs(cnn1, torch.randn(5, 2, 20))
    _check_rows_reproduce_outputs(seq, torch.randn(4, 9, 6))


def test_row_cap_and_stats():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 3))
    rows = capture_inputs(model, torch.randn(100, 6), max_rows=30)
    assert rows["0"].shape == (30, 6) and rows["2"].shape == (30, 7)
    s = input_stats(rows["0"])
    torch.testing.assert_close(s.gram, rows["0"].double().T @ rows["0"].double() / 30)
    torch.testing.assert_close(s.norm, rows["0"].norm(dim=0))
    assert model.training  # mode restored
