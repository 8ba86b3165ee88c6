"""Knowledge distillation (Hinton et al. 2015): the loss against a hand transcription of the formula, the T² scaling
of its gradient, α = 0 as plain fine-tuning bit for bit (library and recipes), pruned weights held at zero, the
fake-quantized network trained after QAT, the recipe's JSON round trip and refusals, and the CLI."""
import json
import math
import os

import numpy as np
import pytest
import torch

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.experiments import (
    Distill,
    FineTune,
    Prune,
    Quantize,
    Recipe,
    Share,
    dumps,
    loads,
    run,
    sweep,
    with_value,
)
from compress_core.experiments.__main__ import main as cli_main
from compress_core.models import weighted_layers
from compress_core.pruning import apply_mask, prune_to
from compress_core.quant import quant_layers
from compress_core.recover.distill import distill, distillation_loss, soft_target_loss
from compress_core.train import TrainConfig, torch_threads, train


def transcribed_loss(z_s: np.ndarray, z_t: np.ndarray, y: np.ndarray, T: float, alpha: float) -> float:
    """α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y), one example at a time, in float64."""
    total = 0.0
    for s, t, label in zip(z_s, z_t, y):
        p_t = [math.exp(v / T) for v in t]
        p_t = [v / sum(p_t) for v in p_t]
        p_s = [math.exp(v / T) for v in s]
        p_s = [v / sum(p_s) for v in p_s]
        kl = sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
        ce = -math.log(math.exp(s[label]) / sum(math.exp(v) for v in s))
        total += alpha * T * T * kl + (1 - alpha) * ce
    return total / len(y)


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 0.3), (2.0, 0.0), (3.0, 1.0)])
def test_the_loss_equals_a_transcription_of_the_formula(T, alpha):
    g = torch.Generator().manual_seed(int(T * 10 + alpha * 100))
    z_s, z_t = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3, torch.randn(7, 5, generator=g,
                                                                                     dtype=torch.float64) * 3
    y = torch.randint(0, 5, (7,), generator=g)
    got = distillation_loss(z_s, z_t, y, T, alpha).item()
    assert got == pytest.approx(transcribed_loss(z_s.numpy(), z_t.numpy(), y.numpy(), T, alpha), rel=1e-12)


def test_a_language_models_positions_are_averaged_like_examples():
    g = torch.Generator().manual_seed(3)
    z_s, z_t = torch.randn(2, 6, 4, generator=g, dtype=torch.float64), torch.randn(2, 6, 4, generator=g,
                                                                                   dtype=torch.float64)
    y = torch.randint(0, 6, (2, 4), generator=g)
    flat = lambda z: z.permute(0, 2, 1).reshape(-1, 6).numpy()  # noqa: E731  (N, V, T) -> (N·T, V)
    want = transcribed_loss(flat(z_s), flat(z_t), y.reshape(-1).numpy(), 2.0, 0.6)
    assert distillation_loss(z_s, z_t, y, 2.0, 0.6).item() == pytest.approx(want, rel=1e-12)


def test_the_soft_gradient_is_T_times_the_softmax_difference_and_T_squared_keeps_it_from_vanishing():
    g = torch.Generator().manual_seed(0)
    z_t = torch.randn(4, 10, generator=g, dtype=torch.float64)
    z_s = torch.randn(4, 10, generator=g, dtype=torch.float64)
    z_t, z_s = z_t - z_t.mean(1, keepdim=True), z_s - z_s.mean(1, keepdim=True)  # zero-mean logits (the paper's §2.1)
    grads = {}
    for T in (1.0, 5.0, 50.0, 500.0):
        z = z_s.clone().requires_grad_(True)
        distillation_loss(z, z_t, torch.zeros(4, dtype=torch.long), T, alpha=1.0).backward()
        # ∂(T²·KL)/∂z_s = T·(softmax(z_s/T) − softmax(z_t/T)) per example, averaged over the batch
        want = T * (torch.softmax(z_s / T, 1) - torch.softmax(z_t / T, 1)) / 4
        assert torch.allclose(z.grad, want, rtol=1e-10, atol=1e-14)
        grads[T] = z.grad
    # at high temperature it tends to (z_s − z_t)/(C·N): the same size whatever T, thanks to the T² factor
    limit = (z_s - z_t) / (10 * 4)
    assert (grads[500.0] - limit).abs().max() < 1e-2 * limit.abs().max()  # the O(1/T) remainder
    assert (grads[50.0] - limit).abs().max() < 1e-1 * limit.abs().max()


def test_the_soft_term_is_zero_when_student_and_teacher_agree_and_positive_otherwise():
    z = torch.randn(5, 3, dtype=torch.float64)
    assert soft_target_loss(z, z, 3.0).item() == pytest.approx(0.0, abs=1e-15)
    assert soft_target_loss(z, z + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), 3.0).item() > 0


@pytest.mark.parametrize("T, alpha", [(0.0, 0.5), (-1.0, 0.5), (2.0, 1.5), (2.0, -0.1)])
def test_distill_refuses_bad_settings(T, alpha):
    ds = load_dataset("digits")
    b = get_baseline("digits", "mlp")
    with pytest.raises(ValueError, match="temperature|α"):
        distill(b.model, b.model, ds, TrainConfig(epochs=1), temperature=T, alpha=alpha)


@pytest.fixture(scope="module")
def pruned():
    ds = load_dataset("digits")
    b = get_baseline("digits", "mlp")
    mask = prune_to(b.model, 0.8)
    return ds, b, mask


def test_alpha_zero_is_plain_fine_tuning_bit_for_bit(pruned):
    ds, b, mask = pruned
    cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=64)
    plain, taught = apply_mask(b.model, mask), apply_mask(b.model, mask)
    train(plain, ds, cfg, seed=5, mask=mask, device=torch.device("cpu"))
    distill(taught, b.model, ds, cfg, temperature=4.0, alpha=0.0, seed=5, mask=mask)
    for (name, p), (_, q) in zip(plain.named_parameters(), taught.named_parameters()):
        assert torch.equal(p, q), name
    # and a teacher changes the training
    other = apply_mask(b.model, mask)
    distill(other, b.model, ds, cfg, temperature=4.0, alpha=0.5, seed=5, mask=mask)
    assert not torch.equal(other.fc1.weight, plain.fc1.weight)
    for name, m in weighted_layers(other):  # pruned weights stay zero under distillation
        assert torch.all(m.weight[mask[f"{name}.weight"] == 0] == 0), name


# ---- the recipe step -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def go(tmp_path_factory):
    runs = tmp_path_factory.mktemp("distill-runs")
    return lambda recipe: run(recipe, cache_dir=runs)


PRUNE = Prune(sparsity=0.8, finetune_epochs=0)


def test_recipe_alpha_zero_equals_the_fine_tune_step_and_is_the_control(go, spy):
    d = Distill(T=4.0, alpha=0.0, epochs=1)
    a = go(Recipe(steps=(PRUNE, d)))
    f = go(Recipe(steps=(PRUNE, FineTune(epochs=1, lr=1e-3, optimizer="adam"))))
    assert (a.test_acc, a.test_loss, a.kept, a.bytes) == (f.test_acc, f.test_loss, f.kept, f.bytes)
    net_a, net_f = spy[-2].net, spy[-1].net
    for (name, p), (_, q) in zip(net_a.named_parameters(), net_f.named_parameters()):
        assert torch.equal(p, q), name
    r = Recipe(steps=(PRUNE, Distill(T=3.0, alpha=0.8, epochs=1)), name="kd")
    control = r.distill_control()
    assert control.steps == (PRUNE, Distill(T=3.0, alpha=0.0, epochs=1)) and control.name == "kd (control)"
    assert control.steps[1].describe() == "fine-tune 1 ep (distillation control)"


def test_distillation_after_pruning_keeps_pruned_weights_at_zero(go, spy):
    res = go(Recipe(steps=(PRUNE, Distill(T=4.0, alpha=0.9, epochs=1))))
    pruned = go(Recipe(steps=(PRUNE,)))
    assert res.kept == pruned.kept and res.test_acc >= 0.5
    state = spy[-2]  # the distilled run (the pruned one came second)
    for name, m in weighted_layers(state.net):
        off = state.mask[f"{name}.weight"] == 0
        assert int(off.sum()) > 0 and torch.all(m.weight[off] == 0), name
    assert res.describe == "prune unstructured 80% → distill T=4 α=0.9 1 ep"


def test_distillation_after_qat_trains_the_fake_quantized_network(go, spy):
    qat = Quantize(mode="qat", weight_bits=4, qat_epochs=1)
    only = go(Recipe(steps=(PRUNE, qat)))
    both = go(Recipe(steps=(PRUNE, qat, Distill(T=4.0, alpha=0.9, epochs=1))))
    s_only, s_both = spy[-2], spy[-1]
    q_only, q_both = dict(quant_layers(s_only.final)), dict(quant_layers(s_both.final))
    assert not torch.equal(q_only["fc1"].weight, q_both["fc1"].weight)  # the fake-quantized network trained on
    for name, ql in q_both.items():
        off = s_both.mask[f"{name}.weight"] == 0
        assert torch.all(ql.quantized_weight()[off] == 0), name
        assert torch.equal(s_both.net.get_submodule(name).weight, ql.weight), name  # what the bytes count
    assert both.kept == only.kept and both.format == only.format == "4-bit codes, bitmask"
    assert both.integer_acc is not None and abs(both.integer_acc - both.test_acc) <= 0.02
    assert both.file_bytes is not None and both.file_acc is not None  # its .clab file, as after QAT alone


@pytest.mark.parametrize("steps, words", [
    ((Quantize(), Distill()), "only Distill steps may follow a QAT step"),
    ((Prune(finetune_epochs=0), Share(), Distill()), "must be the last step"),
    ((Quantize(mode="qat"), Distill(), FineTune()), "must be the last step"),
])
def test_distill_may_follow_only_a_qat_step(steps, words):
    with pytest.raises(ValueError, match=words):
        Recipe(steps=steps)


@pytest.mark.parametrize("field, value, words", [
    ("teacher", "gpt", "teacher must be one of baseline"), ("T", 0, "T must be above 0"),
    ("alpha", 1.5, "alpha must be from 0 to 1"), ("epochs", 0, "epochs must be"), ("lr", 2.0, "lr must be"),
    ("optimizer", "lbfgs", "optimizer must be one of"), ("alpha", True, "alpha: expected a number"),
])
def test_bad_distill_fields_are_refused_in_plain_words(field, value, words):
    text = json.dumps({"steps": [{"step": "distill", field: value}]})
    with pytest.raises(ValueError, match=words):
        loads(text)


def test_distill_round_trips_through_json_and_with_value_inserts_it_before_ptq():
    r = Recipe("mnist1d", "cnn", steps=(PRUNE, Distill(T=2.0, alpha=0.5, epochs=3, lr=0.01, optimizer="sgd"),
                                        Quantize(weight_bits=4)))
    back = loads(dumps([r, r.distill_control()]))
    assert back == [r, r.distill_control()] and back[0].hash() == r.hash() and isinstance(back[0].steps[1], Distill)
    assert back[1].name == r.distill_control().name and back[1].steps[1].alpha == 0.0
    r2 = with_value(Recipe(steps=(PRUNE, Quantize())), "distill.alpha", 0.3)
    assert [s.kind for s in r2.steps] == ["prune", "distill", "quantize"] and r2.steps[1].alpha == 0.3
    assert Distill(T=4, alpha=1).hash() == Distill(T=4.0, alpha=1.0).hash()


def test_cli_sweeps_a_distill_recipe_over_alpha(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COMPRESS_LAB_CACHE", str(tmp_path / "cache"))  # its runs; baselines come from the shared one
    base = Recipe(steps=(PRUNE, Distill(epochs=1)), name="kd")
    f = tmp_path / "r.json"
    f.write_text(base.to_json())
    with torch_threads(1):
        rc = cli_main([str(f), "--grid", "distill.alpha=0,0.9", "--no-cache"])
    out, err = capsys.readouterr()
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "distillation control" in lines[1] and "distill T=4 α=0.9" in lines[2]
    assert json.loads(err.strip().splitlines()[-1])["runs"] == 2


def test_ray_runs_a_distilled_recipe_and_its_control_as_in_process(root):
    ray = pytest.importorskip("ray")
    kd = Recipe(steps=(PRUNE, Distill(epochs=1)), name="kd")
    recipes = [kd, kd.distill_control()]
    local = sweep(recipes, use_cache=False)
    started = ray.is_initialized()
    if not started:
        env = {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               "COMPRESS_LAB_CACHE": os.environ["COMPRESS_LAB_CACHE"]}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        remote = sweep(recipes, executor="ray", use_cache=False)
    finally:
        if not started:
            ray.shutdown()
    for a, b in zip(local, remote):
        assert a.comparable() == b.comparable()
    assert [r.title for r in remote] == ["kd", "kd (control)"]
    assert remote[0].test_loss != remote[1].test_loss  # the teacher changed the training
