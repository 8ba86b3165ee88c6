"""Training: determinism, mask enforcement, callbacks and evaluation against a hand computation."""
import torch
import torch.nn.functional as F

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
