"""The text corpus and the tiny GPT: the corpus's splits, the model's shapes, causality, attention against PyTorch's
own, the tied head, training and evaluation on next characters, generation and the catalog's refusals."""
import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compress_core import catalog, text
from compress_core.data import _load_builtin, load_dataset
from compress_core.models import build_model, summary, weighted_layers
from compress_core.settings import TrainConfig, default_train_config
from compress_core.train import evaluate, train

TINY = "gpt:2x32h4"  # 2 blocks, 32 wide, 4 heads of 8: about 28 k parameters, milliseconds a step


@pytest.fixture(scope="module")
def ds():
    return load_dataset("pydoc")


@pytest.fixture(scope="module")
def tiny(ds):
    return build_model(TINY, ds, seed=0).eval()


def test_corpus_is_deterministic_and_split_contiguously(ds):
    assert text.corpus() == text.corpus.__wrapped__()
    assert len(text.VOCAB) == len(set(text.VOCAB)) == ds.num_classes == catalog.data_info("pydoc").num_classes == 97
    assert ds.class_names == tuple(text.VOCAB) and ds.meta["vocab"] == text.VOCAB
    assert set(text.corpus()) <= set(text.VOCAB) and len(text.corpus()) > 400_000
    train_ids, val_ids, test_ids = text.corpus_splits()
    assert np.array_equal(np.concatenate([train_ids, val_ids, test_ids]), text.encode(text.corpus()))
    n = len(text.corpus())
    assert (len(train_ids), len(val_ids)) == (round(0.9 * n), round(0.95 * n) - round(0.9 * n))
    # validation and test windows tile their own stretch of text, in order, without overlap
    for x, y, ids in ((ds.x_val, ds.y_val, val_ids), (ds.x_test, ds.y_test, test_ids)):
        assert x.shape == y.shape == (len(ids) // 64, 64) and x.dtype == y.dtype == torch.int64
        assert np.array_equal(x.reshape(-1).numpy(), ids[:x.numel()])
        assert np.array_equal(y.reshape(-1).numpy(), ids[1:x.numel() + 1])
    # every training window and its targets lie inside the training text: held-out text is never trained on
    train_text = text.decode(train_ids)
    assert ds.x_train.shape == (2 * len(train_ids) // 64, 64)
    assert torch.equal(ds.x_train[:, 1:], ds.y_train[:, :-1])
    for i in range(0, len(ds.y_train), 997):
        assert text.decode(ds.x_train[i]) + text.decode(ds.y_train[i, -1:]) in train_text
    # the seed picks the training windows only
    again, other = _load_builtin.__wrapped__("pydoc", 0), load_dataset("pydoc", seed=1)
    assert torch.equal(again.x_train, ds.x_train) and not torch.equal(other.x_train, ds.x_train)
    assert torch.equal(other.x_test, ds.x_test) and torch.equal(other.y_val, ds.y_val)


def test_encode_decode_round_trip():
    sample = text.corpus()[100_000:102_000]
    assert text.decode(text.encode(sample)) == sample
    assert text.decode(text.encode("it’s “x” – é\n")) == "it's \"x\" - " + text.FALLBACK + "\n"
    assert text.encode("").shape == (0,)
    assert text.bits_per_char(math.log(2)) == 1.0


@pytest.mark.parametrize("spec", ["gpt", TINY, "gpt:1x8h1", "gpt:3x48h6"])
def test_parameter_count_and_layers_match_the_built_model(ds, spec):
    model = build_model(spec, ds)
    arch, info = catalog.built_architecture(spec, ds.input_shape), catalog.data_info(ds)
    n = sum(p.numel() for p in model.parameters())
    assert catalog.param_count(arch, info) == n == summary(model, ds.input_shape)["total_params"]
    assert catalog.weighted_layer_count(arch) == len(weighted_layers(model)) == 6 * arch.layers
    assert [name for name, _ in weighted_layers(model)][:6] == [
        "block1.attn.q", "block1.attn.k", "block1.attn.v", "block1.attn.proj", "block1.mlp.fc", "block1.mlp.fc2"]
    assert [name for name, _ in model.named_children()] == [
        "embed", *(f"block{i}" for i in range(1, arch.layers + 1)), "ln_f", "head"]


def test_default_gpt_is_the_registered_size(ds):
    assert catalog.list_models("pydoc") == ["gpt"] and "gpt" not in catalog.list_models("digits")
    arch = catalog.parse_model("gpt")
    assert (arch.layers, arch.width, arch.heads) == catalog.DEFAULT_GPT
    assert catalog.parse_model(arch.name) == arch
    assert 200_000 <= catalog.param_count(arch, catalog.data_info("pydoc")) <= 1_000_000


def test_logits_are_batch_vocabulary_time(ds, tiny):
    assert tiny(ds.x_val[:3]).shape == (3, 97, 64)
    assert tiny(ds.x_val[:2, :10]).shape == (2, 97, 10)  # shorter contexts (generation) work
    with pytest.raises(ValueError, match="at most 64 tokens"):
        tiny(torch.zeros(1, 65, dtype=torch.long))


def test_causal_a_later_token_never_changes_earlier_logits(ds, tiny):
    x = ds.x_val[:4].clone()
    with torch.no_grad():
        before = tiny(x)
        for t in (0, 17, 63):
            y = x.clone()
            y[:, t] = (y[:, t] + 5) % 97
            after = tiny(y)
            assert torch.equal(after[:, :, :t], before[:, :, :t])
            assert not torch.equal(after[:, :, t:], before[:, :, t:])


def test_attention_equals_pytorch_scaled_dot_product_attention():
    torch.manual_seed(0)
    model = build_model("gpt:1x48h6", "pydoc", seed=3)
    attn = model.block1.attn
    x = torch.randn(3, 20, 48, requires_grad=True)
    ours = attn(x)
    (g_ours,) = torch.autograd.grad(ours.square().sum(), x)

    def split(z):
        return z.view(3, 20, 6, 8).transpose(1, 2)

    ref_y = F.scaled_dot_product_attention(split(attn.q(x)), split(attn.k(x)), split(attn.v(x)), is_causal=True)
    ref = attn.proj(ref_y.transpose(1, 2).reshape(3, 20, 48))
    (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)
    # the kv hook sees (B, heads, T, head dim) keys and values, before attention
    seen = []
    attn.kv_hook = lambda k, v: (seen.append((k.shape, v.shape)), (k, 2 * v))[1]
    doubled = attn(x)
    attn.kv_hook = None
    assert seen == [((3, 6, 20, 8), (3, 6, 20, 8))]
    ref2 = attn.proj((2 * ref_y).transpose(1, 2).reshape(3, 20, 48))
    torch.testing.assert_close(doubled, ref2, rtol=1e-5, atol=1e-6)


def test_tied_head_shares_the_embedding_and_keeps_the_tie_through_copies(ds):
    model = build_model(TINY, ds, seed=0)
    emb = model.embed.tok.weight
    assert model.head.tied_weight is emb and not list(model.head.parameters())
    assert not any(k.startswith("head") for k in model.state_dict())
    assert len({p.data_ptr() for p in model.parameters()}) == len(list(model.parameters()))
    x = ds.x_val[:2]
    hidden = model.ln_f(model[1:-2](model.embed(x)))
    torch.testing.assert_close(model(x), (hidden @ emb.T).transpose(1, 2))
    twin = copy.deepcopy(model)
    assert twin.head.tied_weight is twin.embed.tok.weight and twin.embed.tok.weight is not emb
    with torch.no_grad():
        twin.embed.tok.weight.mul_(2)  # the copy's head follows the copy's embedding; the original stays
    assert torch.equal(twin.head.tied_weight, 2 * emb) and model.head.tied_weight is emb
    fresh = build_model(TINY, ds, seed=1)
    fresh.load_state_dict(model.state_dict())
    assert fresh.head.tied_weight is fresh.embed.tok.weight and torch.equal(fresh(x), model(x))
    F.cross_entropy(model(x), ds.y_val[:2]).backward()  # the head's gradient reaches the embedding
    assert model.embed.tok.weight.grad is not None and model.embed.tok.weight.grad.abs().sum() > 0


def test_evaluate_on_text_is_the_mean_per_character_cross_entropy(ds, tiny):
    x, y = ds.x_val, ds.y_val
    with torch.no_grad():
        out = tiny(x)
    m = evaluate(tiny, x, y, batch_size=50)
    assert abs(m.loss - F.cross_entropy(out, y).item()) < 1e-5
    assert m.accuracy * y.numel() == (out.argmax(1) == y).sum().item()
    assert m.bits == pytest.approx(m.loss / math.log(2))
    lm = text.lm_metrics(tiny, ds, "val", batch_size=64)
    per_window = F.cross_entropy(out, y, reduction="none").double().mean(1)
    assert lm.loss == pytest.approx(m.loss, abs=1e-5) and lm.bpc == pytest.approx(lm.loss / math.log(2))
    assert lm.perplexity == pytest.approx(math.exp(lm.loss))
    assert lm.bpc_se == pytest.approx(float(per_window.std()) / math.sqrt(len(y)) / math.log(2), rel=1e-4)
    assert (lm.windows, lm.characters, lm.accuracy) == (len(y), y.numel(), m.accuracy)
    # an untrained GPT guesses close to uniformly over the 97 symbols
    assert abs(lm.bpc - math.log2(97)) < 0.3


def test_a_short_training_run_lowers_the_loss(ds):
    small = replace(ds, x_train=ds.x_train[:640], y_train=ds.y_train[:640])
    model = build_model(TINY, small, seed=0)
    before = evaluate(model, ds.x_val, ds.y_val).loss
    hist = train(model, small, TrainConfig(epochs=2, batch_size=32, lr=1e-2, rewind_iteration=5),
                 seed=0, device=torch.device("cpu"))
    assert hist.iterations == 40
    assert hist.records[-1]["val_loss"] < before - 0.8


def test_generate_is_seeded_deterministic_and_crops_its_context(ds, tiny):
    state = torch.random.get_rng_state()
    a = text.generate(tiny, ds, "def f(x):\n    return", n_chars=40, temperature=1.0, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # a private generator
    assert a == text.generate(tiny, ds.meta["vocab"], "def f(x):\n    return", 40, 1.0, seed=7)
    assert len(a) == 40 and set(a) <= set(text.VOCAB)
    assert a != text.generate(tiny, ds, "def f(x):\n    return", 40, 1.0, seed=8)
    long_prompt = text.corpus()[:500]  # longer than the context: only its last 64 characters are read
    assert text.generate(tiny, ds, long_prompt, 20, 0.7, seed=1) == text.generate(tiny, ds, long_prompt[-64:], 20,
                                                                                   0.7, seed=1)
    greedy = text.generate(tiny, ds, "while", n_chars=3, temperature=0, seed=0)
    ids = text.encode("while").tolist()
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(tiny(torch.tensor([ids]))[0, :, -1].argmax()))
    assert greedy == text.decode(ids[-3:])
    assert text.generate(tiny, ds, "", 5, 1.0, seed=0) == text.generate(tiny, ds, "\n", 5, 1.0, seed=0)


@pytest.mark.parametrize("spec, words", [
    ("gpt:4x128", "Cannot read the sizes"), ("gpt:ax128h4", "Cannot read the sizes"),
    ("gpt:4x128h4x", "Cannot read the sizes"), ("gpt:", "Unknown model"), ("gpt:4-128-4", "Cannot read the sizes"),
    ("transformer", "gpt:4x128h4"),
])
def test_parse_model_refuses_nonsense_in_plain_words(spec, words):
    with pytest.raises(ValueError, match=words):
        catalog.parse_model(spec)
    assert any(words in p for p in catalog.model_problems(spec, "pydoc"))


def test_model_problems_on_text_and_for_gpts():
    assert catalog.model_problems("mlp", "pydoc") == [
        "An MLP needs images, signals, points or tables; pydoc is text (characters to predict one after another). "
        "Use a GPT."]
    assert catalog.model_problems("cnn:8k3-16k5", "pydoc")[0].startswith("A CNN needs images or signals; pydoc is text")
    assert catalog.model_problems("tiny", "pydoc")[0].startswith("An MLP needs")
    assert catalog.model_problems("gpt", "digits") == ["A GPT needs text; digits is image. Use an MLP or a CNN."]
    assert catalog.model_problems("gpt:2x32h4", "moons") == ["A GPT needs text; moons is points. Use an MLP."]
    assert catalog.model_problems("gpt", "pydoc") == [] and catalog.model_problems(TINY, "pydoc") == []
    assert catalog.model_problems("gpt:9x64h4", "pydoc") == ["A GPT here has 1 to 8 layers (got 9)."]
    assert catalog.model_problems("gpt:2x100h3", "pydoc") == [
        "The width is split evenly between the heads: 100 is not a multiple of 3."]
    assert catalog.model_problems("gpt:2x4h1", "pydoc") == ["A GPT here is 8 to 384 wide (got 4)."]
    assert catalog.model_problems("gpt:2x64h32", "pydoc") == ["A GPT here has 1 to 16 attention heads (got 32)."]
    big = catalog.model_problems("gpt:8x384h8", "pydoc")
    assert len(big) == 1 and "14,258,304 parameters" in big[0] and "1,000,000" in big[0]
    with pytest.raises(ValueError, match="A GPT needs text"):
        build_model("gpt", "digits")


def test_a_gpt_baseline_is_cached_like_every_other(tmp_path):
    from compress_core.baselines import get_baseline

    cfg = TrainConfig(epochs=1, batch_size=1024, lr=1e-2, rewind_iteration=3)  # 13 steps of a tiny GPT
    a = get_baseline("pydoc", "gpt:1x8h1", seed=0, train_config=cfg, cache_dir=tmp_path)
    b = get_baseline("pydoc", "gpt:1x8h1", seed=0, train_config=cfg, cache_dir=tmp_path)
    assert not a.from_cache and b.from_cache and a.config.hash() == b.config.hash()
    assert b.test_metrics == a.test_metrics and b.history.records == a.history.records
    model = b.model
    assert model.head.tied_weight is model.embed.tok.weight
    ds = load_dataset("pydoc")
    assert evaluate(model, ds.x_test, ds.y_test) == b.test_metrics
    assert text.lm_metrics(model, ds, "test").bpc == pytest.approx(b.test_metrics.bits)


def test_the_recipe_covers_every_gpt_size():
    recipe = default_train_config("pydoc", "gpt")
    assert recipe.lr_schedule == "cosine" and recipe.keep_best
    assert default_train_config("pydoc", TINY) == recipe
