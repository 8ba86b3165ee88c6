"""Schedules (values from their formulas), schedule runs, curves, sensitivity, masks through fine-tuning."""
import pytest
import torch

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.pruning import (
    accuracy_curves,
    cubic,
    iterative,
    one_shot,
    prune,
    rounds_rate,
    run_schedule,
    sparsity_sensitivity,
)
from compress_core.train import TrainConfig, train

FT = TrainConfig(epochs=1, lr=1e-3)


@pytest.fixture(scope="module")
def setup():
    b = get_baseline("moons", "tiny", seed=0, train_config=TrainConfig(epochs=5, lr=3e-3, batch_size=32))
    return b, load_dataset("moons")


def test_schedule_values():
    assert one_shot(0.9) == [0.9]
    assert iterative(0.5, rate=0.2) == pytest.approx([0.2, 0.36, 0.488, 0.5])
    # Frankle & Carbin: 20 % per round leaves 100, 80, 64, 51.2 ... % (their table rounds 64.0 to 64.1)
    it = iterative(0.99, rate=0.2)
    assert [round(100 * (1 - s), 1) for s in it[:4]] == [80.0, 64.0, 51.2, 41.0]
    assert it[-1] == 0.99 and all(a < b for a, b in zip(it, it[1:]))
    p = rounds_rate(0.9, 3)
    assert 1 - (1 - p) ** 3 == pytest.approx(0.9)
    # Zhu & Gupta: s_t = s_f + (s_i - s_f)(1 - t/n)^3
    c = cubic(0.8, 4, initial=0.1)
    assert c[0] == pytest.approx(0.1) and c[-1] == pytest.approx(0.8)
    assert c[2] == pytest.approx(0.8 + (0.1 - 0.8) * 0.5 ** 3)
    steps = [b - a for a, b in zip(c, c[1:])]
    assert all(x > y for x, y in zip(steps, steps[1:]))  # prunes fast first, slowly at the end
    for bad in (lambda: iterative(1.5), lambda: iterative(0.5, rate=0.0), lambda: cubic(0.5, 0)):
        with pytest.raises(ValueError):
            bad()


def test_mask_stays_enforced_through_fine_tuning(setup):
    b, ds = setup
    model = b.model
    mask = prune(model, 0.7, scope="global")
    train(model, ds, TrainConfig(epochs=2, lr=1e-2), seed=0, mask=mask)
    for k, v in mask.items():
        assert torch.all(dict(model.named_parameters())[k].detach()[v == 0] == 0)


def test_run_schedule_reaches_targets_and_fine_tunes(setup):
    b, ds = setup
    res = run_schedule(b.model, ds, iterative(0.8, rate=0.5), finetune=FT, seed=0)
    assert [r["target"] for r in res.rows] == pytest.approx([0.5, 0.75, 0.8])
    # per-layer exact targets: each layer's pruned count = round(target * size)
    for name, s in res.mask.layer_sparsity().items():
        n = res.mask.total(name)
        assert round(s * n) == round(0.8 * n)
    model = b.build(res.state)
    for k, v in res.mask.items():
        assert torch.all(dict(model.named_parameters())[k].detach()[v == 0] == 0)
    assert any(r["test_acc"] != r["acc_pruned"] for r in res.rows)  # fine-tuning changed something


def test_curves_and_sensitivity(setup):
    b, ds = setup
    seen = []
    rows = accuracy_curves(b.model, ds, [0.5, 0.9], finetune=FT, progress=lambda f, lab: seen.append(f))
    assert {r["mode"] for r in rows} == {"oneshot", "oneshot_ft", "iterative"}
    assert len(rows) == 3 * 3 and seen[-1] == pytest.approx(1.0)
    dense = [r for r in rows if r["sparsity"] == 0.0]
    assert all(r["test_acc"] == pytest.approx(b.test_metrics.accuracy) for r in dense)
    sens = sparsity_sensitivity(b.model, ds, [0.0, 0.5, 1.0])
    assert {r["layer"] for r in sens} == {"fc1", "fc2", "fc3"}
    zero = [r for r in sens if r["sparsity"] == 0.0]
    assert all(r["test_acc"] == pytest.approx(b.test_metrics.accuracy) for r in zero)
    assert all(r["test_acc"] <= 0.6 for r in sens if r["sparsity"] == 1.0)  # a cut layer: chance level
    neurons = sparsity_sensitivity(b.model, ds, [0.5], granularity="neuron")
    assert {r["layer"] for r in neurons} == {"fc1", "fc2"}
