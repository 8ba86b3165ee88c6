"""The drop debugger against hand computations on tiny models: per-layer errors, the weight-error split, flipped
examples, and reverts (every layer reverted is the float model, bit for bit)."""
import copy
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compress_core.gpt import build_gpt
from compress_core.pruning import apply_mask, prune
from compress_core.quant import QuantConfig, fake_quantize, quantize_model, quantize_weights
from compress_core.quant.primitives import CLIP_TOLERANCE
from compress_core.recover import DropDebugger, swapped, weight_error


def tiny(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(OrderedDict([("fc1", nn.Linear(6, 16)), ("relu1", nn.ReLU()), ("fc2", nn.Linear(16, 12)),
                                       ("relu2", nn.ReLU()), ("fc3", nn.Linear(12, 4))])).eval()
    x = torch.randn(300, 6, generator=g)
    y = model(x).argmax(1).detach()
    flip = torch.rand(300, generator=g) < 0.1  # a few wrong labels, so accuracy is below 1
    y[flip] = (y[flip] + 1) % 4
    return model, x, y


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def db(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return 10 * math.log10(float(a.double().pow(2).sum()) / float((a - b).double().pow(2).sum()))


def test_revert_every_layer_is_the_float_model_exactly_and_none_is_the_variant():
    model, x, y = tiny()
    q = quantize_model(model, QuantConfig(weight_bits=3, act_bits=4), x[:100])
    before_f, before_q = state(model), state(q)
    dbg = DropDebugger(model, q, x, y)
    full = dbg.revert(dbg.units)
    assert torch.equal(full.model(x), model(x))
    assert full.accuracy == dbg.float_accuracy and full.lost == 0 and full.change_pts == 0
    none = dbg.revert([])
    assert none.accuracy == (q(x).argmax(1) == y).float().mean().item()
    # a partial revert from the cache equals the same mix built by hand and run from scratch
    part = dbg.revert(["fc2"])
    by_hand = nn.Sequential(q.fc1, q.relu1, model.fc2, q.relu2, q.fc3)
    assert part.accuracy == (by_hand(x).argmax(1) == y).float().mean().item()
    assert part.lost == int((model(x).argmax(1) == y).sum()) - int((by_hand(x).argmax(1) == y).sum())
    assert same_state(before_f, state(model)) and same_state(before_q, state(q))  # nothing mutated
    with pytest.raises(ValueError, match="No weighted layer"):
        dbg.revert(["relu1"])


def test_only_one_layer_errors_against_a_hand_computation():
    model, x, y = tiny()
    q = quantize_model(model, QuantConfig(target="weights", weight_bits=3), x[:100])
    rows = {r["layer"]: r for r in DropDebugger(model, q, x, y).layers()}
    # fc1 alone: its post-ReLU output with the quantized weight, against the float one
    a = F.relu(model.fc1(x))
    b = F.relu(F.linear(x, q.fc1.quantized_weight(), q.fc1.bias))
    assert rows["fc1"]["only_layer_sqnr_db"] == pytest.approx(db(a, b), rel=1e-9)
    assert rows["fc1"]["only_layer_rel_mse"] == pytest.approx(10 ** (-db(a, b) / 10), rel=1e-9)
    only_fc1 = nn.Sequential(q.fc1, model.relu1, model.fc2, model.relu2, model.fc3)
    assert rows["fc1"]["only_output_sqnr_db"] == pytest.approx(db(model(x), only_fc1(x)), rel=1e-9)
    right = lambda m: int((m(x).argmax(1) == y).sum())  # noqa: E731
    assert rows["fc1"]["only_lost"] == right(model) - right(only_fc1)
    # fc2 alone: float input, quantized weight, ReLU
    h = F.relu(model.fc1(x))
    b2 = F.relu(F.linear(h, q.fc2.quantized_weight(), q.fc2.bias))
    assert rows["fc2"]["only_layer_sqnr_db"] == pytest.approx(db(F.relu(model.fc2(h)), b2), rel=1e-9)
    # accumulated at the last layer: the whole quantized model's logits
    assert rows["fc3"]["accumulated_sqnr_db"] == pytest.approx(db(model(x), q(x)), rel=1e-9)
    assert rows["fc1"]["accumulated_sqnr_db"] == rows["fc1"]["only_layer_sqnr_db"]  # nothing before fc1


def test_sixteen_bit_layers_cost_almost_nothing():
    model, x, y = tiny()
    q = quantize_model(model, QuantConfig(target="weights", weight_bits=16), x[:100])
    for r in DropDebugger(model, q, x, y).layers():
        assert r["only_layer_rel_mse"] < 1e-8 and r["only_output_rel_mse"] < 1e-8
        assert r["only_layer_sqnr_db"] > 80 and r["weight_bits"] == 16


def test_clip_and_round_add_up_to_the_weight_error():
    model, x, _ = tiny()
    q = quantize_model(model, QuantConfig(target="weights", weight_bits=4, weight_method="percentile",
                                          percentile=90.0), x[:100])
    for name in ("fc1", "fc2", "fc3"):
        ql, w = getattr(q, name), getattr(model, name).weight.detach()
        e = weight_error(getattr(model, name), ql)
        assert e["clip"] > 0 and e["round"] > 0
        assert e["clip"] + e["round"] == pytest.approx(e["total"], rel=1e-12)
        # by hand: clipped = more than half a step outside [S(qmin − Z), S(qmax − Z)] of its channel (beyond
        # that, clamping and not rounding sets the error)
        qp = ql.weight_qparams
        s, z = qp.scale.double().view(-1, 1), qp.zero_point.double().view(-1, 1)
        lo, hi = s * (qp.qmin - 0.5 - CLIP_TOLERANCE - z), s * (qp.qmax + 0.5 + CLIP_TOLERANCE - z)
        wd = w.double()
        out = (wd < lo) | (wd > hi)
        err2 = (wd - ql.quantized_weight().detach().double()).pow(2)
        assert e["clip"] == pytest.approx(float(err2[out].sum()), rel=1e-9)
        assert e["clip_fraction"] == pytest.approx(float(out.double().mean()))


def test_pruned_and_quantized_split_is_prune_plus_clip_plus_round():
    model, x, y = tiny()
    mask = prune(model, 0.5)
    pruned = apply_mask(model, mask)
    e = weight_error(model.fc2, pruned.fc2)
    w = model.fc2.weight.detach().double()
    assert e["prune"] == pytest.approx(float(w[mask["fc2.weight"] == 0].pow(2).sum()), rel=1e-12)
    assert e["total"] == pytest.approx(e["prune"]) and e["other"] == 0 and e["clip"] == 0
    both = quantize_model(pruned, QuantConfig(target="weights", weight_bits=3), x[:100])
    e = weight_error(model.fc2, both.fc2)
    assert e["prune"] + e["clip"] + e["round"] == pytest.approx(e["total"], rel=1e-12)
    rows = DropDebugger(model, both, x, y).layers()
    assert all(r["compressed"] for r in rows)


def test_flips_are_exactly_the_examples_whose_argmax_differs():
    model, x, y = tiny()
    q = quantize_model(model, QuantConfig(weight_bits=2, act_bits=3), x[:100])
    dbg = DropDebugger(model, q, x, y, threshold=0.05)
    flips = dbg.flips()
    expected = torch.nonzero(model(x).argmax(1) != q(x).argmax(1)).flatten().tolist()
    assert expected and [f["index"] for f in flips] == expected
    for f in flips:
        i = f["index"]
        assert f["float_pred"] == int(model(x[i:i + 1]).argmax()) and f["variant_pred"] == int(q(x[i:i + 1]).argmax())
        assert f["label"] == int(y[i]) and sum(f["variant_probs"]) == pytest.approx(1.0, abs=1e-5)
        assert torch.allclose(torch.tensor(f["variant_logits"]), q(x[i:i + 1])[0], atol=1e-6)
        # per-example error at fc1 by hand, and the first layer above the threshold
        a, b = F.relu(model.fc1(x[i])).detach(), q.fc1(x[i:i + 1])[0].detach()
        assert f["errors"]["fc1"] == pytest.approx(float((a - b).pow(2).sum() / a.pow(2).sum()), rel=1e-5)
        over = [u for u in ("fc1", "fc2", "fc3") if f["errors"][u] > 0.05]
        assert f["first_divergence"] == (over[0] if over else None)


def test_unchanged_layers_and_bad_inputs():
    model, x, y = tiny()
    mask = prune(model, 0.5, exclude=["fc1", "fc3"])
    dbg = DropDebugger(model, apply_mask(model, mask), x, y)
    assert dbg.changed() == ["fc2"]
    rows = {r["layer"]: r for r in dbg.layers()}
    assert rows["fc1"]["only_layer_rel_mse"] == 0 and rows["fc1"]["accumulated_rel_mse"] == 0
    assert rows["fc2"]["sparsity"] == pytest.approx(0.5) and dbg.ranking() == ["fc2"]
    other = nn.Sequential(OrderedDict([("a", nn.Linear(6, 4))]))
    with pytest.raises(ValueError, match="not the float model's"):
        DropDebugger(model, other, x, y)
    with pytest.raises(ValueError, match="at least one example"):
        DropDebugger(model, model, x[:0], y[:0])


def test_swapped_leaves_the_original_alone():
    model, x, _ = tiny()
    new = nn.Linear(16, 12)
    mixed = swapped(model, {"fc2": new})
    assert mixed.fc2 is new and model.fc2 is not new and mixed.fc1 is model.fc1


def test_gpt_per_layer_errors_and_revert():
    torch.manual_seed(0)
    gpt = build_gpt(vocab=11, context=8, layers=1, width=16, heads=2).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 11, (20, 8), generator=g)
    y = torch.randint(0, 11, (20, 8), generator=g)
    mask = prune(gpt, 0.6)
    variant = apply_mask(gpt, mask)
    dbg = DropDebugger(gpt, variant, x, y)
    rows = {r["layer"]: r for r in dbg.layers()}
    assert set(rows) == {"block1.attn.q", "block1.attn.k", "block1.attn.v", "block1.attn.proj", "block1.mlp.fc",
                         "block1.mlp.fc2"}
    # the q projection alone: its output on the float model's LayerNorm'd input
    h = gpt.block1.ln1(gpt.embed(x))
    a, b = gpt.block1.attn.q(h), variant.block1.attn.q(h)
    assert rows["block1.attn.q"]["only_layer_sqnr_db"] == pytest.approx(db(a, b), rel=1e-6)
    loss = F.cross_entropy(swapped(gpt, {"block1.mlp.fc": variant.block1.mlp.fc})(x), y).item()
    assert rows["block1.mlp.fc"]["only_bits"] == pytest.approx(loss / math.log(2), rel=1e-5)
    assert torch.equal(dbg.revert(dbg.units).model(x), gpt(x))
    with pytest.raises(ValueError, match="classifiers"):
        dbg.flips()
    # a weight-only quantized GPT keeps its Linear layers: the error is the stored weights' own ("other")
    wq = quantize_weights(gpt, bits=3, group_size="channel")
    for r in DropDebugger(gpt, wq, x, y).layers():
        assert r["compressed"] and r["clip"] == 0 and r["other"] > 0
        assert r["prune"] + r["other"] == pytest.approx(r["total"], rel=1e-12)


def test_activation_clip_and_round_split_on_a_clipping_range():
    model, x, y = tiny()
    q = quantize_model(model, QuantConfig(weight_bits=8, act_bits=3, act_method="percentile", percentile=95.0),
                       x[:100])
    rows = {r["layer"]: r for r in DropDebugger(model, q, x, y).layers()}
    a = F.relu(model.fc1(x)).detach()
    qp = q.fc1.output_qparams
    err2 = (a.double() - fake_quantize(a, qp).double()).pow(2)
    s, z = float(qp.scale), float(qp.zero_point)
    # clipped, by hand: more than half a step (and the float32 scale's tolerance) past the range's ends
    v = a.double() / s + z
    out = (v > qp.qmax + 0.5 + CLIP_TOLERANCE) | (v < qp.qmin - 0.5 - CLIP_TOLERANCE)
    r = rows["fc1"]
    assert r["act_bits"] == 3 and r["act_clip"] > 0
    assert r["act_clip"] == pytest.approx(float(err2[out].sum()), rel=1e-9)
    assert r["act_clip"] + r["act_round"] == pytest.approx(float(err2.sum()), rel=1e-9)
    assert rows["fc3"]["act_clip"] == 0  # the logits keep their min-max range


def test_shared_weights_variant():
    """Deep compression's k-means sharing keeps the layers Linear: its error is the stored weights' own."""
    from compress_core.deep_compression import share_layers

    model, x, y = tiny()
    shared = copy.deepcopy(model)
    share_layers(shared, None, k=4)
    rows = DropDebugger(model, shared, x, y).layers()
    for r in rows:
        w = getattr(model, r["layer"]).weight.detach().double()
        w_hat = getattr(shared, r["layer"]).weight.detach().double()
        assert r["compressed"] and r["weight_bits"] == 32 and r["clip"] == 0
        assert r["prune"] + r["other"] == pytest.approx(float((w - w_hat).pow(2).sum()), rel=1e-12)
        assert r["total"] == pytest.approx(float((w - w_hat).pow(2).sum()), rel=1e-12)
