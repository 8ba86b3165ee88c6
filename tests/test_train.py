"""Training: determinism, mask enforcement, callbacks and evaluation against a hand computation."""
import torch
import torch.nn.functional as F

from compress_core import optim
from compress_core.data import load_dataset
from compress_core.models import build_model
from compress_core.train import TrainConfig, evaluate, train

FAST = TrainConfig(epochs=2, batch_size=64, lr=1e-3, rewind_iteration=5)


def _run(seed=0, mask=None, cfg=FAST, callback=None):
    ds = load_dataset("digits")
    model = build_model("mlp", ds, seed=0)
    hist = train(model, ds, cfg, seed=seed, mask=mask, callback=callback)
    return model, hist


def test_same_seed_gives_bit_identical_weights():
    a, ha = _run(seed=1)
    b, hb = _run(seed=1)
    c, _ = _run(seed=2)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert ha.records == [dict(r) for r in hb.records]
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_mask_stays_enforced_weights_and_gradients():
    g = torch.Generator().manual_seed(0)
    model0 = build_model("mlp", "digits", seed=0)
    mask = {n: (torch.rand(p.shape, generator=g) > 0.7).float() for n, p in model0.named_parameters()
            if n.endswith("weight")}
    model, hist = _run(mask=mask)
    for name, m in mask.items():
        w = dict(model.named_parameters())[name]
        assert torch.count_nonzero(w[m == 0]) == 0
        assert torch.count_nonzero(w[m == 1]) == int(m.sum())
        assert w.grad is None or torch.count_nonzero(w.grad[m == 0]) == 0
    assert hist.iterations == 2 * 20


def test_callback_receives_progress_and_can_stop():
    seen = []
    cfg = TrainConfig(epochs=5, eval_every=10)
    _, hist = _run(cfg=cfg, callback=lambda rec: seen.append(rec) or len(seen) < 3)
    assert hist.stopped and len(seen) == 3 and hist.iterations == 30
    assert [r["iteration"] for r in seen] == [10, 20, 30]
    assert {"val_acc", "val_loss", "test_acc", "epoch", "total_iterations"} <= set(seen[0])


def test_rewind_state_is_taken_at_iteration_k():
    model, hist = _run()
    assert hist.rewind_state is not None
    assert not torch.equal(hist.rewind_state["fc1.weight"], model.fc1.weight.detach())
    assert hist.early_stop_iteration() in [r["iteration"] for r in hist.records]


def test_evaluate_matches_hand_computation():
    ds = load_dataset("digits")
    model = build_model("mlp", ds, seed=0)
    out = model(ds.x_test)
    m = evaluate(model, ds.x_test, ds.y_test, batch_size=50)
    assert m.accuracy * len(ds.y_test) == (out.argmax(1) == ds.y_test).sum().item()
    assert abs(m.loss - F.cross_entropy(out, ds.y_test).item()) < 1e-5


def test_invalid_settings_are_rejected_in_plain_words():
    import pytest
    with pytest.raises(ValueError, match="learning rate"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="batch size"):
        TrainConfig(batch_size=0)


class _Recorder(torch.nn.Module):
    """A linear model that remembers the training batches it saw (by the sum of each input row)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.flatten(1).sum(1).tolist())
        return self.fc(x.flatten(1))


def test_resuming_at_k_trains_the_remaining_batches_and_counts_from_the_start():
    ds = load_dataset("digits")
    cfg = TrainConfig(epochs=2, batch_size=64, eval_every=10, rewind_iteration=7)  # T = 2 × 20 = 40
    full, part = _Recorder(), _Recorder()
    hf = train(full, ds, cfg, seed=3)
    hp = train(part, ds, cfg, seed=3, start_iteration=7)
    assert hf.iterations == 40 and hf.steps == 40
    assert hp.iterations == 40 and hp.steps == 33 and hp.start_iteration == 7
    assert part.seen == full.seen[7:]  # the full run's batches of steps 8..40, in order
    assert [r["iteration"] for r in hp.records] == [10, 20, 30, 40]
    assert hp.early_stop_iteration() >= 7
    nothing = train(_Recorder(), ds, cfg, seed=3, start_iteration=40)
    assert nothing.steps == 0 and [r["iteration"] for r in nothing.records] == [40]
    import pytest
    with pytest.raises(ValueError, match="resume at iteration 41"):
        train(_Recorder(), ds, cfg, start_iteration=41)


def test_step_hook_sees_every_iteration_and_its_mask_is_enforced():
    ds = load_dataset("digits")
    model = build_model("mlp", ds, seed=0)
    calls = []
    half = {"fc1.weight": (torch.arange(model.fc1.weight.numel()) % 2).float().view_as(model.fc1.weight)}

    def hook(t, m):
        calls.append(t)
        return half if t == 5 else None

    hist = train(model, ds, TrainConfig(epochs=1, batch_size=64), step_hook=hook)
    assert calls == list(range(0, hist.iterations + 1))
    assert torch.count_nonzero(model.fc1.weight[half["fc1.weight"] == 0]) == 0
    assert torch.count_nonzero(model.fc1.weight.grad[half["fc1.weight"] == 0]) == 0


def test_keep_best_restores_the_best_validation_point_and_cosine_decays_to_zero():
    import math

    import pytest
    ds = load_dataset("digits")
    cfg = TrainConfig(epochs=3, batch_size=64, lr=5e-2, eval_every=5, keep_best=True, lr_schedule="cosine")
    model = build_model("mlp", ds, seed=0)
    hist = train(model, ds, cfg)
    best = max(hist.records, key=lambda r: r["val_acc"])
    assert hist.best_iteration == min(r["iteration"] for r in hist.records if r["val_acc"] == best["val_acc"])
    assert evaluate(model, ds.x_val, ds.y_val).accuracy == best["val_acc"]
    lrs = []
    opt_step = optim.Adam.step

    def spy(self, *a, **k):
        lrs.append(self.lr)
        return opt_step(self, *a, **k)
    optim.Adam.step = spy
    try:
        train(build_model("mlp", ds, seed=0), ds, TrainConfig(epochs=1, lr=0.1, lr_schedule="cosine"))
    finally:
        optim.Adam.step = opt_step
    assert lrs == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi * t / 20)) for t in range(20)])
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
