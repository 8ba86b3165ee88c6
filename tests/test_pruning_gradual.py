"""Gradual pruning inside training (Zhu & Gupta 2017): the mask follows the paper's cubic at every Δt, the
final sparsity is exact, the mask only grows and stays enforced, from scratch or from a trained model."""
import pytest
import torch

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.models import weighted_layers
from compress_core.pruning.gradual import GradualSchedule, gradual_prune, training_iterations
from compress_core.pruning.sweeps import CURVE_MODES, accuracy_curves
from compress_core.train import TrainConfig

CFG = TrainConfig(epochs=3, lr=3e-3, batch_size=64)  # moons: 600 training points -> 10 steps/epoch, T = 30


def paper(t, s_i, s_f, t0, n, dt):
    """Zhu & Gupta 2017, eq. (1), written out independently of the library."""
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


@pytest.fixture(scope="module")
def setup():
    b = get_baseline("moons", "tiny", seed=0, train_config=TrainConfig(epochs=5, lr=3e-3, batch_size=32))
    return b, load_dataset("moons")


def test_schedule_is_the_papers_cubic():
    s = GradualSchedule(final=0.8, steps=5, interval=4, start=6, initial=0.1)
    assert s.end == 26
    assert [t for t, _ in s.targets()] == [6, 10, 14, 18, 22, 26]
    for t, v in s.targets():
        assert v == pytest.approx(paper(t, 0.1, 0.8, 6, 5, 4), abs=1e-12)
    assert s.targets()[0][1] == pytest.approx(0.1) and s.targets()[-1][1] == 0.8
    assert s.sparsity_at(5) == 0.0 and s.sparsity_at(13) == s.targets()[1][1] and s.sparsity_at(1000) == 0.8
    sp = GradualSchedule.spanning(0.9, 1000, steps=10, begin=0.2, end=0.7)
    assert (sp.start, sp.interval, sp.steps, sp.end) == (200, 50, 10, 700)


@pytest.mark.parametrize("kw, words", [(dict(final=1.5), "final sparsity"), (dict(final=0.5, steps=0), "pruning step"),
                                       (dict(final=0.5, interval=0), "interval"),
                                       (dict(final=0.2, initial=0.5), "only removes")])
def test_bad_schedules_are_refused_in_plain_words(kw, words):
    with pytest.raises(ValueError, match=words):
        GradualSchedule(**kw)


@pytest.mark.parametrize("from_scratch", [True, False])
def test_mask_follows_the_cubic_at_each_update_and_ends_exact(setup, from_scratch):
    b, ds = setup
    start = b.build(b.init_state) if from_scratch else b.model
    assert training_iterations(CFG, ds) == 30
    sched = GradualSchedule(final=0.75, steps=4, interval=5, start=3 if from_scratch else 0)
    seen = []
    res = gradual_prune(start, ds, sched, CFG, seed=0, progress=lambda f, lab: seen.append(f))
    sizes = {f"{n}.weight": m.weight.numel() for n, m in weighted_layers(start)}
    total = sum(sizes.values())
    assert [r["iteration"] for r in res.rows] == [t for t, _ in sched.targets()]
    for r in res.rows:  # per layer, prune_to removes round(s_t × n) weights: the sparsity of s_t, to the weight
        s_t = paper(r["iteration"], 0.0, 0.75, sched.start, 4, 5)
        assert r["target"] == pytest.approx(s_t)
        assert r["sparsity"] == pytest.approx(sum(round(s_t * n) for n in sizes.values()) / total)
    for name, n in sizes.items():  # the final sparsity is exact in every layer
        assert int((res.mask[name] == 0).sum()) == round(0.75 * n)
        w = res.state[name]
        assert torch.count_nonzero(w[res.mask[name] == 0]) == 0
    assert res.history.iterations == 30 and seen and seen[-1] == 1.0
    assert res.test_acc == pytest.approx(res.history.records[-1]["test_acc"])


def test_masks_only_grow_and_runs_are_deterministic(setup):
    b, ds = setup
    sched = GradualSchedule(final=0.6, steps=3, interval=6)
    a = gradual_prune(b.model, ds, sched, CFG, seed=1)
    c = gradual_prune(b.model, ds, sched, CFG, seed=1)
    assert all(torch.equal(a.state[k], c.state[k]) for k in a.state)
    assert [r["sparsity"] for r in a.rows] == sorted(r["sparsity"] for r in a.rows)
    with pytest.raises(ValueError, match="after the end of training"):
        gradual_prune(b.model, ds, GradualSchedule(final=0.6, steps=4, interval=10), CFG)


def test_gradual_curves(setup):
    b, ds = setup
    assert {"gradual", "gradual_scratch"} <= set(CURVE_MODES)
    rows = accuracy_curves(b.model, ds, [0.5, 0.8], finetune=CFG, modes=("gradual", "gradual_scratch"),
                           init_model=b.build(b.init_state), scratch_train=CFG)
    got = {(r["mode"], round(r["sparsity"], 2)) for r in rows}
    assert {("gradual", 0.0), ("gradual", 0.5), ("gradual", 0.8), ("gradual_scratch", 0.5),
            ("gradual_scratch", 0.8)} <= got
    with pytest.raises(ValueError, match="init_model"):
        accuracy_curves(b.model, ds, [0.5], finetune=CFG, modes=("gradual_scratch",))
