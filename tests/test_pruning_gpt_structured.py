"""Structured GPT pruning: heads and MLP neurons scored as the papers define, cut out by surgery that changes nothing
the masked model computes, and impossible settings refused in plain words."""
import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from compress_core.data import load_dataset
from compress_core.gpt import CausalSelfAttention
from compress_core.models import build_model
from compress_core.pruning import (
    PruneSettings,
    apply_mask,
    latency_report,
    prune_report,
    prune_to,
    prune_with,
    shrink,
    size_report,
)
from compress_core.pruning.gpt_structured import (
    gpt_prune,
    gpt_summary,
    gpt_warnings,
    kept_heads_neurons,
    removes_units,
    shrink_gpt,
    shrunk_params,
    unit_mask,
    unit_scores,
)
from compress_core.train import Metrics


@pytest.fixture(scope="module")
def ds():
    return load_dataset("pydoc")


@pytest.fixture(scope="module")
def gpt(ds):
    """The default GPT (2 blocks, 96 wide, 4 heads of 24), its weights random but not trivial."""
    model = build_model("gpt", ds, seed=0)
    with torch.no_grad():  # biases are initialised to zero: give them values so that they count in the tests
        gen = torch.Generator().manual_seed(1)
        for n, p in model.named_parameters():
            if n.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return model.eval()


def tokens(n=3, t=64, seed=0):
    return torch.randint(0, 97, (n, t), generator=torch.Generator().manual_seed(seed))


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def old_attention(attn, x):
    """CausalSelfAttention.forward as it was before heads could be cut (the head dim read from the width)."""
    b, t, c = x.shape
    h = attn.heads

    def heads(z):
        return z.view(b, t, h, c // h).transpose(1, 2)

    q, k, v = heads(attn.q(x)), heads(attn.k(x)), heads(attn.v(x))
    if attn.kv_hook is not None:
        k, v = attn.kv_hook(k, v)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // h))
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    att = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    return attn.proj((att @ v).transpose(1, 2).reshape(b, t, c))


def test_attention_unchanged_for_the_full_model():
    torch.manual_seed(0)
    attn = CausalSelfAttention(96, 4).eval()
    x = torch.randn(2, 64, 96)
    with torch.no_grad():
        assert torch.equal(attn(x), old_attention(attn, x))  # bit-identical: the baseline loads and scores the same
        attn.kv_hook = lambda k, v: (k * 0.5, v.round())
        assert torch.equal(attn(x), old_attention(attn, x))


@pytest.mark.parametrize("unit", ["neuron", "head"])
@pytest.mark.parametrize("criterion", ["magnitude", "random", "activation"])
@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_shrunk_gpt_computes_what_the_masked_gpt_computes(gpt, ds, unit, criterion, scope, sparsity):
    mask = gpt_prune(gpt, sparsity, unit=unit, criterion=criterion, scope=scope, calibration=ds.x_train[:16])
    small = shrink_gpt(gpt, mask)
    x = tokens()
    with torch.no_grad():
        assert torch.allclose(small(x), apply_mask(gpt, mask)(x), atol=1e-5)
    assert n_params(small) == shrunk_params(gpt, mask) < n_params(gpt)
    kept = sum(r["kept_heads" if unit == "head" else "kept_neurons"] for r in gpt_summary(gpt, mask))
    total = 8 if unit == "head" else 768
    assert kept == total - round(sparsity * total)  # 2 blocks × 4 heads or × 384 neurons
    if scope == "layer":
        for r in gpt_summary(gpt, mask):
            n = r["heads" if unit == "head" else "neurons"]
            assert r["kept_heads" if unit == "head" else "kept_neurons"] == n - round(sparsity * n)
    assert n_params(gpt) == 239_328 and not removes_units(gpt, {})  # the baseline itself is untouched


def test_surgery_shapes_and_kv_hook(gpt):
    mask = gpt_prune(gpt, 0.5, unit="head")
    mask = gpt_prune(gpt, 0.25, unit="neuron", mask=mask)  # heads and neurons together
    small = shrink_gpt(gpt, mask)
    a = small.block1.attn
    assert a.heads == 2 and a.q.weight.shape == (48, 96) and a.k.bias.shape == (48,) and a.proj.weight.shape == (96, 48)
    assert small.block1.mlp.fc.weight.shape == (288, 96) and small.block1.mlp.fc2.weight.shape == (96, 288)
    assert small.block1.ln1.weight.shape == (96,) and small.head.tied_weight is small.embed.tok.weight
    seen = []

    def hook(k, v):
        seen.append(tuple(k.shape))
        return 0.5 * k, v.tanh()  # anything on the keys and values, as a KV-cache quantizer would

    masked = apply_mask(gpt, mask)
    for net in (small, masked):
        net.block1.attn.kv_hook = hook
    x = tokens(2, 32)
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    assert seen == [(2, 2, 32, 24), (2, 4, 32, 24)]  # kept heads × head dim 24, then all 4


def test_shrink_dispatches_and_prune_to_dispatches(gpt):
    mask = prune_to(gpt, 0.5, granularity="head", criterion="magnitude")
    assert {k: v.tolist() for k, v in mask.items()} == \
        {k: v.tolist() for k, v in gpt_prune(gpt, 0.5, unit="head").items()}
    assert shrink(gpt, mask).block2.attn.heads == 2
    # a schedule's second step: what the first cut stays cut, the target is overall
    more = prune_to(gpt, 0.75, granularity="head", mask=mask)
    for name, (h, _) in kept_heads_neurons(gpt, more).items():
        assert int(h.sum()) == 1 and not bool((h & ~kept_heads_neurons(gpt, mask)[name][0]).any())


def test_head_magnitude_score_by_hand(gpt):
    scores = unit_scores(gpt, "head", "magnitude", norm=2)
    a = gpt.block2.attn
    for h in range(4):
        s = slice(24 * h, 24 * (h + 1))
        parts = [a.q.weight[s], a.k.weight[s], a.v.weight[s], a.q.bias[s], a.k.bias[s], a.v.bias[s],
                 a.proj.weight[:, s]]
        expect = math.sqrt(sum(float((p.detach() ** 2).sum()) for p in parts))
        assert scores["block2"][h].item() == pytest.approx(expect, rel=1e-5)
    l1 = unit_scores(gpt, "neuron", "magnitude", norm=1)["block1"][7].item()
    m = gpt.block1.mlp
    w1, b1, w2 = m.fc.weight.detach(), m.fc.bias.detach(), m.fc2.weight.detach()
    assert l1 == pytest.approx(float(w1[7].abs().sum() + b1[7].abs() + w2[:, 7].abs().sum()), rel=1e-5)


def test_activation_scores_by_hand(gpt, ds):
    """‖what the unit adds to the residual stream‖_F, recomputed with PyTorch's own attention and GELU."""
    x = ds.x_train[:8]
    heads = unit_scores(gpt, "head", "activation", calibration=x)["block1"]
    neurons = unit_scores(gpt, "neuron", "activation", calibration=x)["block1"]
    b = gpt.block1
    with torch.no_grad():
        e = gpt.embed(x)
        z = b.ln1(e)
        q, k, v = (lin(z).view(8, 64, 4, 24).transpose(1, 2) for lin in (b.attn.q, b.attn.k, b.attn.v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, heads, T, 24)
        for h in range(4):
            contribution = y[:, h] @ b.attn.proj.weight[:, 24 * h:24 * (h + 1)].t()  # (B, T, width)
            assert heads[h].item() == pytest.approx(contribution.norm().item(), rel=1e-4)
        r = e + b.attn(z)  # the residual stream after attention
        act = F.gelu(b.mlp.fc(b.ln2(r)))  # (B, T, 384)
        for j in (0, 100, 383):
            contribution = act[..., j:j + 1] * b.mlp.fc2.weight[:, j]
            assert neurons[j].item() == pytest.approx(contribution.norm().item(), rel=1e-4)


def test_ablation_score_by_hand(gpt, ds):
    """Michel et al.'s importance as a loss difference: the head's value rows and bias zeroed by hand."""
    x, y = ds.x_train[:8], ds.y_train[:8]
    scores = unit_scores(gpt, "head", "ablation", calibration=(x, y))
    with torch.no_grad():
        base = F.cross_entropy(gpt(x), y).item()
        for h in (0, 3):
            net = copy.deepcopy(gpt)
            net.block2.attn.v.weight[24 * h:24 * (h + 1)] = 0
            net.block2.attn.v.bias[24 * h:24 * (h + 1)] = 0
            assert scores["block2"][h].item() == pytest.approx(F.cross_entropy(net(x), y).item() - base, abs=1e-5)


def test_every_block_keeps_one_unit_and_refusals(gpt, ds):
    for unit, n in (("head", 4), ("neuron", 384)):
        for scope in ("layer", "global"):
            mask = gpt_prune(gpt, 1.0, unit=unit, scope=scope)
            key = "kept_heads" if unit == "head" else "kept_neurons"
            assert [r[key] for r in gpt_summary(gpt, mask)] == [1, 1]
            assert gpt_warnings(gpt, mask, 1.0, unit, scope)  # said in words
            assert shrink_gpt(gpt, mask)(tokens(1, 8)).shape == (1, 97, 8)
    assert "rounds to no attention head" in gpt_warnings(gpt, gpt_prune(gpt, 0.1, unit="head"), 0.1, "head")[0]
    no_heads = unit_mask(gpt, {"block1": torch.ones(4, dtype=torch.bool)}, "head")
    with pytest.raises(ValueError, match="'block1' would keep no attention head"):
        shrink_gpt(gpt, no_heads)
    no_neurons = unit_mask(gpt, {"block2": torch.ones(384, dtype=torch.bool)}, "neuron")
    with pytest.raises(ValueError, match="'block2' would keep no MLP neuron"):
        shrink_gpt(gpt, no_neurons)
    with pytest.raises(ValueError, match="between 0 and 1"):
        gpt_prune(gpt, 1.5, unit="head")
    with pytest.raises(ValueError, match="Unknown unit"):
        gpt_prune(gpt, 0.5, unit="layer")
    with pytest.raises(ValueError, match="need calibration"):
        gpt_prune(gpt, 0.5, unit="head", criterion="activation")
    with pytest.raises(ValueError, match="attention heads only"):
        gpt_prune(gpt, 0.5, unit="neuron", criterion="ablation", calibration=(ds.x_train[:2], ds.y_train[:2]))
    digits = load_dataset("digits")
    with pytest.raises(ValueError, match="Only the GPT has attention heads"):
        prune_to(build_model("mlp", digits), 0.5, granularity="head")


def test_unstructured_mask_cuts_only_what_nobody_reads(gpt):
    """A weights-only mask never removes a head through its value rows (the bias stays), only through proj."""
    mask = {k: torch.ones_like(p) for k, p in gpt.named_parameters() if k.endswith(".weight") and "attn" in k}
    mask["block1.attn.v.weight"][:24] = 0  # head 0's value rows, its bias kept: still outputs the bias
    assert not removes_units(gpt, mask)
    mask["block1.attn.proj.weight"][:, 24:48] = 0  # head 1 is never read
    assert kept_heads_neurons(gpt, mask)["block1"][0].tolist() == [True, False, True, True]
    with torch.no_grad():
        assert torch.allclose(shrink_gpt(gpt, mask)(tokens()), apply_mask(gpt, mask)(tokens()), atol=1e-5)


def test_page_path_reports_the_shrunk_gpt(gpt, ds):
    """prune_with, prune_report, size_report and latency_report on the GPT's heads: a real smaller model, timed."""
    s = PruneSettings(sparsity=0.5, granularity="head")
    out = prune_with(gpt, ds, s)
    assert not out.warnings and out.mask.sparsity() == pytest.approx(0.5 * 4 * 96 * 96 * 2 / (2 * 12 * 96 * 96))
    rep = prune_report(gpt, out, s, Metrics(accuracy=0.5, loss=2.0))
    linear = [m for m in shrink(gpt, out.mask).modules() if isinstance(m, torch.nn.Linear)]
    assert rep.kept == sum(m.weight.numel() for m in linear)
    row = next(r for r in rep.sizes if r["format"].startswith("structured"))
    assert row["bytes"] == 4 * n_params(shrink_gpt(gpt, out.mask))
    assert not any(r["format"].startswith("structured") for r in size_report(gpt, prune_to(gpt, 0.5)))
    lat = latency_report(gpt, out.mask, ds.input_shape, batch=4, repeats=2, dataset=ds)
    shrunk = next(r for r in lat if r["variant"].startswith("structured"))
    assert shrunk["median_ms"] is not None and shrunk["test_acc"] == pytest.approx(out.metrics.accuracy, abs=1e-4)
    unstructured = latency_report(gpt, prune_to(gpt, 0.5), ds.input_shape, batch=2, repeats=1)
    assert next(r for r in unstructured if r["variant"].startswith("structured"))["median_ms"] is None


def test_fine_tuned_schedule_keeps_the_cut_units_cut(gpt, ds):
    """Iterative head pruning with fine-tuning between steps (the page's schedule): training never revives a cut
    head (its biases are masked too), each step cuts further, and the fine-tuned model still shrinks exactly."""
    small_ds = dataclasses.replace(ds, x_train=ds.x_train[:32], y_train=ds.y_train[:32], x_val=ds.x_val[:8],
                                   y_val=ds.y_val[:8], x_test=ds.x_test[:8], y_test=ds.y_test[:8])
    s = PruneSettings(sparsity=0.5, granularity="head", schedule="iterative", rounds=2, finetune_epochs=1,
                      finetune_lr=1e-3, finetune_optimizer="adam")
    out = prune_with(gpt, small_ds, s, batch_size=16)
    assert [r["kept_heads"] for r in gpt_summary(gpt, out.mask)] == [2, 2] and len(out.steps) == 2
    cut = ~kept_heads_neurons(gpt, out.mask)["block1"][0].repeat_interleave(24)
    a = out.model.block1.attn
    assert bool((a.v.bias[cut] == 0).all()) and bool((a.q.weight[cut] == 0).all())
    assert not torch.equal(out.model.block1.attn.v.weight, gpt.block1.attn.v.weight)  # it did train
    x = tokens()
    with torch.no_grad():
        assert torch.allclose(shrink_gpt(out.model, out.mask)(x), out.model(x), atol=1e-5)


def test_the_activation_criterion_through_prune_with(gpt, ds):
    """The page's path: prune_with scores the GPT's heads on its first 64 training windows; the criterion is refused in
    words wherever it has no meaning (single weights, 2:4, a classifier)."""
    s = PruneSettings(sparsity=0.5, granularity="head", criterion="activation")
    small_ds = dataclasses.replace(ds, x_test=ds.x_test[:8], y_test=ds.y_test[:8])
    out = prune_with(gpt, small_ds, s)
    expect = gpt_prune(gpt, 0.5, unit="head", criterion="activation", calibration=ds.x_train[:64])
    assert {k: v.tolist() for k, v in out.mask.items()} == {k: v.tolist() for k, v in expect.items()}
    for granularity in ("weight", "nm"):
        with pytest.raises(ValueError, match="activation criterion scores the GPT's whole MLP neurons"):
            prune_with(gpt, small_ds, PruneSettings(granularity=granularity, criterion="activation"))
    with pytest.raises(ValueError, match="activation criterion scores the GPT's whole MLP neurons"):
        prune_to(build_model("mlp", load_dataset("digits")), 0.5, criterion="activation", granularity="neuron")
