"""compress_core.optim against its oracle, the torch.optim classes: the same weights, bit for bit, after many steps
(weight decay, momentum, a changing learning rate, a parameter without a gradient); and training without
importing torch._dynamo, the reason it exists."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from compress_core import optim


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.Linear(4, 3))
    net[3].requires_grad_(False)  # a frozen layer: no gradient, never stepped
    return net


def _run(opt, net: nn.Module, set_lr, steps: int = 25) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    for t in range(steps):
        set_lr(0.05 * (1 + t) / steps)  # a schedule, as cosine training changes it
        x = torch.randn(32, 8, generator=gen)
        y = torch.randint(0, 3, (32,), generator=gen)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def _set_groups(opt):
    def set_lr(lr):
        for g in opt.param_groups:
            g["lr"] = lr
    return set_lr


def _set_attr(opt):
    def set_lr(lr):
        opt.lr = lr
    return set_lr


@pytest.mark.parametrize("wd", [0.0, 1e-3])
def test_adam_matches_torch_adam_bit_for_bit(wd):
    a, b = _net(0), _net(0)
    ref = torch.optim.Adam(a.parameters(), lr=0.01, weight_decay=wd)
    ours = optim.Adam(b.parameters(), lr=0.01, weight_decay=wd)
    for p, q in zip(_run(ref, a, _set_groups(ref)), _run(ours, b, _set_attr(ours))):
        assert torch.equal(p, q)
    assert not torch.equal(_net(0)[0].weight, b[0].weight)  # it did train
    assert torch.equal(_net(0)[3].weight, b[3].weight)  # and left the frozen layer alone


@pytest.mark.parametrize("momentum,wd", [(0.9, 5e-4), (0.0, 0.0)])
def test_sgd_matches_torch_sgd_bit_for_bit(momentum, wd):
    a, b = _net(1), _net(1)
    ref = torch.optim.SGD(a.parameters(), lr=0.1, momentum=momentum, weight_decay=wd)
    ours = optim.SGD(b.parameters(), lr=0.1, momentum=momentum, weight_decay=wd)
    for p, q in zip(_run(ref, a, _set_groups(ref)), _run(ours, b, _set_attr(ours))):
        assert torch.equal(p, q)


def test_zero_grad_keeps_the_gradient_tensors():
    net = _net(2)
    opt = optim.SGD(net.parameters(), lr=0.1)
    net(torch.randn(4, 8)).sum().backward()
    grad = net[0].weight.grad
    opt.zero_grad()
    assert net[0].weight.grad is grad and not grad.any()  # a training mask can multiply it in place


def test_no_trainable_parameters_is_a_clear_error():
    with pytest.raises(ValueError, match="no trainable parameters"):
        optim.Adam(nn.Linear(2, 2).requires_grad_(False).parameters())


def test_training_does_not_import_torch_dynamo(tmp_path):
    """The first torch.optim class built in a process imports torch._dynamo (about 0.8 s of a cold start);
    the library's training never does."""
    code = textwrap.dedent("""
        import sys
        import torch
        from compress_core.data import load_dataset
        from compress_core.models import build_model
        from compress_core.train import TrainConfig, train
        ds = load_dataset("digits", seed=0)
        for opt in ("adam", "sgd"):
            train(build_model("mlp", ds), ds, TrainConfig(epochs=1, optimizer=opt))
        print("torch._dynamo" in sys.modules)
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env=env)
    assert out.stdout.strip() == "False"
