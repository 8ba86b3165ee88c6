"""Wanda and SparseGPT against transcriptions of their papers, against the library's magnitude pruning, against
torchao's WandaSparsifier, and against each other on the layer-wise error they are meant to reduce.

References written here, independently of the library: Wanda's mask by explicit per-row / per-layer / per-group
argsorts of |W_ij|·‖X_j‖₂ with the norms summed by hand (for a conv, by shifting the padded image rather than
unfolding it); SparseGPT's Algorithm 1 column by column with every update applied at once (no lazy batches).
"""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as torch_prune

from compress_core.layer_inputs import capture_inputs, input_stats, output_error, weight_matrix
from compress_core.pruning import (
    MagnitudeScore,
    Mask,
    apply_mask,
    calibrated_mask,
    is_nm_sparse,
    nm_prune,
    prune,
    select_mask,
    sparsegpt_layer,
    sparsegpt_prune,
    wanda_mask,
    wanda_prune,
    wanda_scores,
)


# ---- synthetic data and models ---------------------------------------------------------------------------------
def correlated_rows(n: int, d: int, seed: int = 0, outliers: bool = True) -> torch.Tensor:
    """(n, d) inputs with correlated channels and, like an LLM's hidden states, a few channels far larger."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(d) + 0.4 * torch.randn(d, d, generator=g) / math.sqrt(d)
    x = torch.randn(n, d, generator=g) @ mix
    if outliers:
        x = x * torch.exp(0.8 * torch.randn(d, generator=g))
    return x


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """A pre-LayerNorm transformer block (GPT-2's): x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d: int = 32, heads: int = 4):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc", nn.Linear(d, 4 * d))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("proj", nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def mlp(seed: int = 0, sizes=(24, 40, 12)) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]))


def same_state(a: nn.Module, b: dict) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.state_dict().items())


# ---- Wanda -----------------------------------------------------------------------------------------------------
def wanda_reference(w: np.ndarray, x: np.ndarray, sparsity=None, nm=None, per="row") -> np.ndarray:
    """The paper's mask by explicit loops: S_ij = |W_ij|·sqrt(Σ_rows x_j²); drop the lowest of each comparison group."""
    out, cols = w.shape
    norm = np.array([math.sqrt(sum(float(v) ** 2 for v in x[:, j])) for j in range(cols)])
    s = np.abs(w).astype(np.float64) * norm[None, :]
    keep = np.ones_like(s)
    if nm is not None:
        n, m = nm
        for i in range(out):
            for g in range(0, cols, m):
                order = np.argsort(-s[i, g:g + m], kind="stable")
                keep[i, g + order[n:]] = 0
    elif per == "row":
        k = round(sparsity * cols)
        for i in range(out):
            keep[i, np.argsort(s[i], kind="stable")[:k]] = 0
    else:
        keep.reshape(-1)[np.argsort(s.reshape(-1), kind="stable")[:round(sparsity * s.size)]] = 0
    return keep


@pytest.mark.parametrize("target", [dict(sparsity=0.5), dict(sparsity=0.7, per="layer"), dict(nm=(2, 4)),
                                    dict(nm=(1, 3))])
def test_wanda_mask_equals_transcription(target):
    model = mlp()
    x = correlated_rows(200, 24)
    mask = wanda_prune(model, x, **target)
    rows = capture_inputs(model, x)
    for name, module in [("0", model[0]), ("2", model[2])]:
        ref = wanda_reference(module.weight.detach().numpy(), rows[name].numpy(), **target)
        np.testing.assert_array_equal(mask[f"{name}.weight"].numpy(), ref)
    # the per-layer entry point agrees with the model-level one
    torch.testing.assert_close(wanda_mask(model[0].weight, input_stats(rows["0"]).norm, **target), mask["0.weight"])


def test_wanda_differs_from_magnitude_when_input_norms_differ():
    model = mlp()
    x = correlated_rows(200, 24)
    assert not torch.equal(wanda_prune(model, x, 0.5)["0.weight"],
                           calibrated_mask(model, x, MagnitudeScore(), 0.5)["0.weight"])


def test_wanda_with_uniform_input_norms_is_magnitude_pruning():
    """Inputs of ±1 give every channel the norm √rows: Wanda's ranking is then |w|'s, per row, per layer and N:M."""
    model = mlp(sizes=(24, 40, 12))
    g = torch.Generator().manual_seed(1)
    signs = torch.randint(0, 2, (64, 24), generator=g).float() * 2 - 1
    inputs = {"0": signs}
    # per row: torch's own l1_unstructured applied to each output row on its own
    mask = wanda_prune(model, inputs, 0.6, layers=["0"])
    w = model[0].weight.detach()
    for i in range(w.shape[0]):
        ref = torch_prune.L1Unstructured(0.6).compute_mask(w[i], torch.ones_like(w[i]))
        torch.testing.assert_close(mask["0.weight"][i], ref)
    # per layer: the library's magnitude pruning; N:M: its nm_prune
    lay = wanda_prune(model, inputs, 0.6, per="layer", layers=["0"])
    torch.testing.assert_close(lay["0.weight"], prune(model, 0.6)["0.weight"])
    torch.testing.assert_close(wanda_prune(model, inputs, nm=(2, 4), layers=["0"])["0.weight"],
                               nm_prune(model, 2, 4)["0.weight"])
    # and the magnitude criterion object is the same selection
    torch.testing.assert_close(calibrated_mask(model, inputs, MagnitudeScore(), 0.6, layers=["0"])["0.weight"],
                               mask["0.weight"])


def test_wanda_exact_row_sparsity_and_nm_pattern():
    model = mlp(sizes=(24, 40, 12))
    x = correlated_rows(100, 24)
    mask = wanda_prune(model, x, 0.5)
    for key in ("0.weight", "2.weight"):
        kept = mask[key].sum(1)
        assert torch.all(kept == mask[key].shape[1] // 2)
    assert mask.sparsity() == 0.5 and set(mask) == {"0.weight", "2.weight"}
    m24 = wanda_prune(model, x, nm=(2, 4))
    assert is_nm_sparse(m24, 2, 4) and m24.sparsity() == 0.5
    assert not is_nm_sparse(wanda_prune(model, x, 0.5), 2, 4)  # unstructured 50 % is not 2:4


def test_wanda_matches_torchao_wanda_sparsifier_given_its_statistic():
    """torchao's WandaSparsifier compares |W|·‖X_j‖₂² over the whole layer (its observer keeps the *squared* norm,
    and it does not take the root). Fed that statistic, our selection gives exactly its masks, per layer and 2:4;
    with the paper's ‖X_j‖₂ the order differs whenever input norms differ."""
    pytest.importorskip("torchao")
    from torchao.sparsity import WandaSparsifier

    model = mlp(sizes=(24, 40, 12))
    x = correlated_rows(128, 24)
    rows = capture_inputs(model, x)
    for kwargs, ours in [(dict(sparsity_level=0.5), dict(sparsity=0.5, per="layer")),
                         (dict(semi_structured_block_size=4), dict(nm=(2, 4)))]:
        ao_model = mlp(sizes=(24, 40, 12))
        with warnings.catch_warnings():  # torchao warns that 2:4 fixes the level, torch.ao that it is deprecated
            warnings.simplefilter("ignore")
            sparsifier = WandaSparsifier(**kwargs)
            sparsifier.prepare(ao_model, config=[{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
            ao_model(x)
            sparsifier.step()
            sparsifier.squash_mask()
        paper_differs = False
        for name in ("0", "2"):
            w = getattr(model, name).weight.detach()
            ao_keep = (getattr(ao_model, name).weight.detach() != 0).float()
            squared = rows[name].double().pow(2).sum(0)
            torch.testing.assert_close(select_mask(wanda_scores(w, squared), **ours), ao_keep)
            paper_differs |= not torch.equal(select_mask(wanda_scores(w, squared.sqrt()), **ours), ao_keep)
        assert paper_differs


# ---- SparseGPT -------------------------------------------------------------------------------------------------
def sparsegpt_reference(w, gram, sparsity=None, nm=None, blocksize=128, damp=0.01):
    """Algorithm 1 of Frantar & Alistarh (2023), one column at a time, each update applied to every later column
    at once. [H⁻¹] denotes the upper Cholesky factor of the dampened inverse Hessian, as in the paper."""
    W = w.double().clone()
    H = gram.double().clone()
    rows, cols = W.shape
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.diagonal(H).mean() * torch.eye(cols, dtype=torch.float64)
    Hinv = torch.linalg.cholesky(torch.linalg.inv(H), upper=True)
    d = torch.diagonal(Hinv)
    M = torch.ones(rows, cols, dtype=torch.bool)
    for j in range(cols):
        if nm is None and j % blocksize == 0:  # adaptive mask selection for the next B_s columns
            end = min(j + blocksize, cols)
            score = (W[:, j:end] ** 2 / d[j:end] ** 2).reshape(-1).numpy()
            k = round(sparsity * rows * end) - round(sparsity * rows * j)  # this block's share of the count
            flat = M[:, j:end].clone().reshape(-1)
            flat[np.argsort(score, kind="stable")[:k]] = False
            M[:, j:end] = flat.reshape(rows, end - j)
        if nm is not None and j % nm[1] == 0:
            n, m = nm
            for r in range(rows):
                s = (W[r, j:j + m] ** 2 / d[j:j + m] ** 2).numpy()
                M[r, j + np.argsort(-s, kind="stable")[n:]] = False
        e = W[:, j] / Hinv[j, j] * (~M[:, j])  # the pruned part of column j, scaled
        W[:, j:] -= torch.outer(e, Hinv[j, j:])  # OBS update of this and every later column
    return W * M, M.float()


@pytest.mark.parametrize("case", [
    dict(shape=(64, 300), sparsity=0.5, blocksize=128),   # a short last block
    dict(shape=(48, 96), sparsity=0.7, blocksize=32),
    dict(shape=(40, 64), nm=(2, 4), blocksize=128),
    dict(shape=(40, 66), nm=(1, 3), blocksize=33),          # a shorter last N:M group is impossible: 66 = 22·3
    dict(shape=(32, 80), sparsity=0.5, blocksize=128, dead=True),
])
def test_sparsegpt_equals_column_by_column_algorithm_1(case):
    out, cols = case["shape"]
    torch.manual_seed(0)
    w = torch.randn(out, cols)
    x = correlated_rows(4 * cols, cols)
    if case.get("dead"):
        x[:, [3, 17, 40]] = 0  # inputs that never fire: their weights go, first
    gram = input_stats(x).gram
    kw = dict(sparsity=case.get("sparsity"), nm=case.get("nm"), blocksize=case["blocksize"])
    w_hat, keep = sparsegpt_layer(w, gram, **kw)
    ref_w, ref_keep = sparsegpt_reference(w, gram, **kw)
    torch.testing.assert_close(keep, ref_keep)
    torch.testing.assert_close(w_hat.double(), ref_w, atol=1e-5, rtol=1e-5)
    assert torch.all(w_hat[keep == 0] == 0)
    if case.get("sparsity") is not None:
        assert int((keep == 0).sum()) == round(case["sparsity"] * w.numel())
    else:
        assert is_nm_sparse({"w.weight": keep}, *case["nm"])
    # the reconstruction helps: the same mask without the OBS updates is worse
    assert output_error(w, w_hat, gram) < output_error(w, w * keep, gram)


def test_output_error_is_the_mean_squared_output_difference():
    torch.manual_seed(0)
    x = correlated_rows(300, 20)
    w, w_hat = torch.randn(7, 20), torch.randn(7, 20)
    direct = float(((x.double() @ (w.double() - w_hat.double()).T) ** 2).sum() / len(x))
    assert output_error(w, w_hat, input_stats(x).gram) == pytest.approx(direct, rel=1e-9)
    assert output_error(w, w, input_stats(x).gram) == 0.0


@pytest.mark.parametrize("target", [dict(sparsity=0.5), dict(nm=(2, 4))])
def test_error_order_sparsegpt_wanda_magnitude_on_correlated_inputs(target):
    """Reconstruction beats choosing well, which beats choosing by |w| alone: the three methods' ordering."""
    torch.manual_seed(0)
    w = torch.randn(96, 128)
    stats = input_stats(correlated_rows(2048, 128))
    sgpt = output_error(w, sparsegpt_layer(w, stats.gram, **target)[0], stats.gram)
    wanda = output_error(w, w * wanda_mask(w, stats.norm, **target), stats.gram)
    magnitude = output_error(w, w * select_mask(w.abs(), **target), stats.gram)
    assert sgpt < wanda < magnitude


def test_error_order_on_the_digits_mlp(digits_mlp):
    """On a trained network's real activations (every layer of digits·mlp, 50 % and 2:4), Wanda beating per-row
    magnitude too. (bench/bench_llm_pruning.py prints the errors and the test accuracies.)"""
    baseline, ds = digits_mlp
    model = baseline.model
    inputs = capture_inputs(model, ds.x_train[:512])
    for target in (dict(sparsity=0.5), dict(nm=(2, 4))):
        pruned, mask = sparsegpt_prune(model, inputs, **target)
        wanda = wanda_prune(model, inputs, **target)
        magnitude = calibrated_mask(model, inputs, MagnitudeScore(), **target)
        for name in ("fc1", "fc2", "fc3"):
            stats = input_stats(inputs[name])
            w = weight_matrix(getattr(model, name))
            e_sgpt = output_error(w, weight_matrix(getattr(pruned, name)), stats.gram)
            e_wanda = output_error(w, w * wanda[f"{name}.weight"], stats.gram)
            e_magnitude = output_error(w, w * magnitude[f"{name}.weight"], stats.gram)
            assert e_sgpt < e_wanda < e_magnitude, (name, target, e_sgpt, e_wanda, e_magnitude)


# ---- the model-level functions ---------------------------------------------------------------------------------
def test_model_level_functions_leave_the_model_alone_and_speak_mask():
    torch.manual_seed(0)
    block = Block()
    before = {k: v.clone() for k, v in block.state_dict().items()}
    block.train()
    x = torch.randn(6, 10, 32)
    x[..., 5] *= 20  # one outlier feature, as in LLM hidden states
    linears = ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc", "mlp.proj"]

    mask = wanda_prune(block, x, nm=(2, 4))
    pruned, smask = sparsegpt_prune(block, x, 0.5, sequential=True)
    assert same_state(block, before) and block.training  # untouched, mode restored
    assert pruned is not block
    for m in (mask, smask):
        assert isinstance(m, Mask) and set(m) == {f"{n}.weight" for n in linears}
        assert m.sparsity() == 0.5
    assert is_nm_sparse(mask, 2, 4)
    applied = apply_mask(block, mask)  # the rest of the library accepts the masks
    assert torch.all(applied.mlp.fc.weight[mask["mlp.fc.weight"] == 0] == 0)
    # SparseGPT's copy is zero where its mask is, and masking it again changes nothing
    again = apply_mask(pruned, smask)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in pruned.state_dict().items())
    # non-linear parameters are copied unchanged; biases too (SparseGPT reconstructs weights only)
    assert torch.equal(pruned.ln1.weight, block.ln1.weight) and torch.equal(pruned.attn.q.bias, block.attn.q.bias)

    # layers=: the others keep every weight, and their values
    part, pmask = sparsegpt_prune(block, x, 0.5, layers=["mlp.fc"])
    assert pmask.layer_sparsity() == {n: (0.5 if n == "mlp.fc" else 0.0) for n in linears}
    assert torch.equal(part.attn.q.weight, block.attn.q.weight)

    # sequential: the first layer sees the same inputs either way, a later one does not
    _, one_shot_mask = sparsegpt_prune(block, x, 0.5)
    assert torch.equal(one_shot_mask["attn.q.weight"], smask["attn.q.weight"])
    assert not torch.equal(one_shot_mask["mlp.proj.weight"], smask["mlp.proj.weight"])

    # block output: reconstruction keeps it closest, Wanda next, magnitude (per row) last
    with torch.no_grad():
        y = block(x)
        errors = [float(((model(x) - y) ** 2).mean()) for model in (
            pruned, apply_mask(block, wanda_prune(block, x, 0.5)),
            apply_mask(block, calibrated_mask(block, x, MagnitudeScore(), 0.5)))]
    assert errors[0] < errors[1] < errors[2], errors


def test_conv_layers_through_the_row_view():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    x = torch.randn(12, 3, 6, 6) * torch.tensor([1.0, 4.0, 0.3])[:, None, None]
    conv = model[0]
    # Wanda: the norm of input (channel c, kernel offset a, b) over every sample and output position, by shifting
    # the zero-padded images (no unfold), in the weight's (c, a, b) flattening order
    pad = F.pad(x, (1, 1, 1, 1))
    norm = torch.tensor([float(pad[:, c, a:a + 6, b:b + 6].double().pow(2).sum().sqrt())
                         for c in range(3) for a in range(3) for b in range(3)])
    mask = wanda_prune(model, x, 0.5, layers=["0"])
    expected = select_mask(conv.weight.detach().reshape(8, -1).abs() * norm, 0.5)
    assert mask["0.weight"].shape == conv.weight.shape
    torch.testing.assert_close(mask["0.weight"].reshape(8, -1), expected)
    assert mask.kept("0") == 8 * 13 and mask.sparsity("3") == 0.0  # round(0.5 · 27) = 14 go (half to even)

    # SparseGPT: the pruned conv's real output error is the Gram-matrix error, and it is below Wanda's
    pruned, smask = sparsegpt_prune(model, x, nm=(2, 4), layers=["0"])
    # 27 inputs per row: 6 groups of 4 keep 2 each, the last group of 3 keeps 2
    assert is_nm_sparse({"0.weight": smask["0.weight"]}, 2, 4) and smask.kept("0") == 8 * (6 * 2 + 2)
    gram = input_stats(capture_inputs(model, x, ["0"])["0"]).gram
    with torch.no_grad():
        diff = (pruned[0](x) - conv(x)).double()  # (N, out, H, W): the bias cancels
    positions = x.shape[0] * 36
    measured = float(diff.pow(2).sum() / positions)
    assert output_error(conv.weight, pruned[0].weight, gram) == pytest.approx(measured, rel=1e-6)
    wanda_nm = apply_mask(model, wanda_prune(model, x, nm=(2, 4), layers=["0"]))
    assert measured < output_error(conv.weight, wanda_nm[0].weight, gram)


def test_arguments_are_checked():
    model = mlp()
    x = correlated_rows(20, 24)
    for bad in (dict(), dict(sparsity=0.5, nm=(2, 4)), dict(sparsity=1.5), dict(nm=(3, 2)),
                dict(sparsity=0.5, per="neuron")):
        with pytest.raises(ValueError):
            wanda_prune(model, x, **bad)
    with pytest.raises(ValueError, match="captured rows"):
        sparsegpt_prune(model, capture_inputs(model, x), 0.5, sequential=True)
    with pytest.raises(ValueError, match="No captured inputs"):
        wanda_prune(model, {"0": x}, 0.5)
    with pytest.raises(ValueError, match="multiple of M"):
        sparsegpt_layer(torch.randn(4, 8), torch.eye(8), nm=(2, 4), blocksize=6)


# ---- properties ------------------------------------------------------------------------------------------------
shapes = st.tuples(st.integers(1, 6), st.integers(1, 24))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, sparsity=st.floats(0, 1), seed=st.integers(0, 2 ** 16))
def test_property_sparsity_targets_are_met_exactly(shape, sparsity, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    rows = torch.randn(3 * shape[1] + 2, shape[1], generator=g)
    stats = input_stats(rows)
    keep = wanda_mask(w, stats.norm, sparsity)
    assert torch.all((keep == 0).sum(1) == round(sparsity * shape[1]))
    assert int((wanda_mask(w, stats.norm, sparsity, per="layer") == 0).sum()) == round(sparsity * w.numel())
    w_hat, keep = sparsegpt_layer(w, stats.gram, sparsity, blocksize=8)
    assert int((keep == 0).sum()) == round(sparsity * w.numel())
    assert torch.all(w_hat[keep == 0] == 0) and torch.isfinite(w_hat).all()


@settings(max_examples=40, deadline=None)
@given(shape=shapes, nm=st.tuples(st.integers(1, 4), st.integers(1, 4)).filter(lambda t: t[0] <= t[1]),
       seed=st.integers(0, 2 ** 16))
def test_property_nm_patterns_are_exact(shape, nm, seed):
    n, m = nm
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    stats = input_stats(torch.randn(3 * shape[1] + 2, shape[1], generator=g))
    # every full group keeps exactly N, a shorter last group min(N, its length)
    expected = (shape[1] // m) * n + min(n, shape[1] % m)
    for keep in (wanda_mask(w, stats.norm, nm=nm), sparsegpt_layer(w, stats.gram, nm=nm, blocksize=4 * m)[1]):
        assert is_nm_sparse({"w.weight": keep}, n, m)
        assert torch.all(keep.sum(1) == expected)
