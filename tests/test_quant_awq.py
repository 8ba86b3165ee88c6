"""AWQ against transcriptions of the reference code's two searches (llm-awq ``auto_scale`` / ``auto_clip``), torchao's
AWQ observer where it is installed, and the exactness of the rescaling in float.

The transcriptions compute the scaled and clamped weights in float32, as the reference code runs (in half precision
there), and the losses in float64 from the rows themselves (the library uses the Gram matrix). Sharing float32 inputs
to the quantizer matters: a clamped group's end points land exactly on rounding ties (±L on an asymmetric 2-bit grid
is −1.5 steps from zero), where a last-bit difference picks the other level.
"""
import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compress_core.layer_inputs import capture_inputs, input_stats
from compress_core.quant.awq import awq, awq_model, clip_search
from compress_core.quant.groupwise import layer_objective, rtn
from compress_core.quant.scaling import effective_weight_matrix, fold_into_layernorm, scale_input
from compress_core.quant.weight_only import quantize_weights
from tests.llm_blocks import FOLD, FOLD_V, block_inputs, make_block

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


def outlier_rows(seed, n, cols, outliers=3, gain=20.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cols, generator=g)
    x[:, torch.randperm(cols, generator=g)[:outliers]] *= gain  # a few salient input channels
    return x


def ref_auto_scale(w, x, bits, g, n_grid=20):
    """``_search_module_scale`` of the reference code for one linear layer."""
    x_max = x.double().abs().view(-1, x.shape[-1]).mean(0).float()
    org_out = x.double() @ w.double().T
    best_error, best_ratio, history = float("inf"), -1, []
    for ratio in range(n_grid):
        ratio = ratio * 1 / n_grid
        scales = x_max.pow(ratio).clamp(min=1e-4).view(-1)
        scales = scales / (scales.max() * scales.min()).sqrt()
        wq = rtn(w * scales.view(1, -1), bits, g) / scales.view(1, -1)
        loss = (org_out - x.double() @ wq.double().T).pow(2).mean().item()
        history.append(loss)
        if loss < best_error:
            best_error, best_ratio = loss, ratio
    return best_ratio, history


def ref_auto_clip(w, x, bits, g, n_grid=20, max_shrink=0.5):
    """``_search_module_clip`` of the reference code (all rows used, no token subsampling)."""
    w4 = w.reshape(w.shape[0], 1, -1, g)
    x4 = x.double().reshape(1, x.shape[0], -1, g)
    org_max_val = w4.abs().amax(dim=-1, keepdim=True)
    best_max_val = org_max_val.clone()
    min_errs = torch.ones_like(org_max_val, dtype=torch.float64) * 1e9
    org_out = (x4 * w4.double()).sum(dim=-1)
    for i_s in range(int(max_shrink * n_grid)):
        max_val = org_max_val * (1 - i_s / n_grid)
        cur_w = torch.clamp(w4, -max_val, max_val)
        q_w = rtn(cur_w.reshape(w.shape), bits, g).reshape(w4.shape)
        cur_out = (x4 * q_w.double()).sum(dim=-1)
        err = (cur_out - org_out).pow(2).mean(dim=1).view(min_errs.shape)
        cur_best_idx = err < min_errs
        min_errs[cur_best_idx] = err[cur_best_idx]
        best_max_val[cur_best_idx] = max_val[cur_best_idx]
    return best_max_val.reshape(w.shape[0], -1)


@SETTINGS
@given(seed=st.integers(0, 10 ** 6), bits=st.integers(2, 4), g=st.sampled_from(["channel", 8, 16]))
def test_scale_search_matches_reference(seed, bits, g):
    x = outlier_rows(seed, 256, 32)
    w = torch.randn(12, 32, generator=torch.Generator().manual_seed(seed + 1))
    stats = input_stats(x)
    res = awq(w, stats.gram, stats.absmean, bits, g, clip=False)
    ratio, history = ref_auto_scale(w, x, bits, g)
    assert res.alpha == ratio
    assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(res.losses, history))
    torch.testing.assert_close(res.weight, rtn(w * res.scale, bits, g), rtol=0, atol=0)


@SETTINGS
@given(seed=st.integers(0, 10 ** 6), bits=st.integers(2, 4), g=st.sampled_from([8, 16, 32]))
def test_clip_search_matches_reference(seed, bits, g):
    x = outlier_rows(seed, 200, 64)
    w = torch.randn(10, 64, generator=torch.Generator().manual_seed(seed + 2))
    ours = clip_search(w, input_stats(x).gram, bits, g)
    torch.testing.assert_close(ours, ref_auto_clip(w, x, bits, g), rtol=0, atol=0)


def test_alpha_zero_is_rtn_and_search_beats_it():
    x = outlier_rows(0, 300, 48)
    w = torch.randn(16, 48)
    stats = input_stats(x)
    for g in ("tensor", "channel", 16):
        res = awq(w, stats.gram, stats.absmean, 3, g, alpha=0.0, clip=False)
        assert torch.equal(res.scale, torch.ones(48))
        torch.testing.assert_close(res.weight, rtn(w, 3, g), rtol=0, atol=0)
        searched = awq(w, stats.gram, stats.absmean, 3, g, clip=False)  # α = 0 is on the grid: never worse
        assert layer_objective(w, searched.effective_weight, stats.gram) <= layer_objective(w, rtn(w, 3, g), stats.gram)
    # with salient channels the search moves off α = 0 and lowers the error
    res = awq(w, stats.gram, stats.absmean, 3, 16)
    assert res.alpha > 0 and res.loss < res.losses[0]
    assert (res.clip <= w.mul(res.scale).abs().reshape(16, 3, 16).amax(-1) + 1e-6).all()


def test_rescaling_is_exact_in_float():
    """y = (W·diag(s)) (x / s): a Linear, a Conv1d and a padded Conv2d keep their outputs to float precision."""
    torch.manual_seed(0)
    cases = [(nn.Linear(12, 5), torch.randn(7, 3, 12)), (nn.Conv1d(4, 6, 3, padding=1), torch.randn(2, 4, 9)),
             (nn.Conv2d(3, 4, 3, padding=1, stride=2), torch.randn(2, 3, 8, 8))]
    for layer, x in cases:
        s = torch.rand(layer.weight.shape[1]) * 10 + 0.05
        shape = [1, -1] + [1] * (layer.weight.dim() - 2) if layer.weight.dim() > 2 else [1, -1]
        scaled = scale_input(layer, s, layer.weight * s.reshape(shape))
        torch.testing.assert_close(scaled(x), layer(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(effective_weight_matrix(scaled), layer.weight.reshape(len(layer.weight), -1),
                                   rtol=1e-5, atol=1e-6)
    ln, q = nn.LayerNorm(12), nn.Linear(12, 5)
    x = torch.randn(4, 12)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2)
        ln.bias.normal_()
        ref = q(ln(x))
        s = torch.rand(12) + 0.1
        fold_into_layernorm(ln, s)
        q.weight.mul_(s)
    torch.testing.assert_close(q(ln(x)), ref, rtol=1e-5, atol=1e-5)


def test_awq_model_without_quantization_is_the_float_model():
    block, x = make_block(), block_inputs()
    inputs = capture_inputs(block, x)
    for fold in (None, FOLD, FOLD_V):
        same = awq_model(block, inputs, 3, 8, fold=fold, quantize=False)
        torch.testing.assert_close(same(x), block(x), rtol=1e-5, atol=1e-4)
    torch.manual_seed(0)
    relu_mlp = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 8)).eval()  # ReLU commutes with s > 0
    xm = torch.randn(64, 12)
    same = awq_model(relu_mlp, capture_inputs(relu_mlp, xm), 3, 8, fold={"0": ["2"]}, quantize=False)
    torch.testing.assert_close(same(xm), relu_mlp(xm), rtol=1e-5, atol=1e-5)
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)).eval()
    xc = torch.randn(16, 2, 6, 6)
    torch.testing.assert_close(awq_model(cnn, capture_inputs(cnn, xc), 4, 9, quantize=False)(xc), cnn(xc),
                               rtol=1e-5, atol=1e-5)


def test_awq_model_on_a_prenorm_block():
    """With outlier LayerNorm channels, AWQ's block output is closer to the float one than RTN's at 3 bits, folded
    into the LayerNorms or kept in the layers; the original block is untouched."""
    block, x = make_block(), block_inputs()
    before = {k: v.clone() for k, v in block.state_dict().items()}
    inputs = capture_inputs(block, x)
    ref = block(x)

    def err(m):
        with torch.no_grad():
            return float((m(x) - ref).pow(2).mean())

    rtn_err = err(quantize_weights(block, 3, 8))
    for fold in (None, FOLD):
        q = awq_model(block, inputs, 3, 8, fold=fold)
        assert err(q) < rtn_err
    folded = awq_model(block, inputs, 3, 8, fold=FOLD)
    assert type(folded.attn.q) is nn.Linear and folded.attn.proj.input_scale is not None
    # v → proj: v's rows are rescaled by proj's scale in float first, then quantized, so v stays on its grid
    # even per tensor (rescaling the rows of an already quantized v would give each row its own grid)
    folded_v = awq_model(block, inputs, 3, 8, fold=FOLD_V)
    assert type(folded_v.attn.proj) is nn.Linear and err(folded_v) < rtn_err
    per_tensor = awq_model(block, inputs, 3, "tensor", fold=FOLD_V)
    assert len(per_tensor.attn.v.weight.unique()) <= 8 and len(per_tensor.attn.proj.weight.unique()) <= 8
    assert all(torch.equal(v, block.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError):
        awq_model(block, inputs, 3, 8, layers=["attn.q"], fold=FOLD)


@pytest.mark.parametrize("seed,bits,g", [(0, 3, 16), (1, 4, 8), (2, 2, 32), (3, 4, "channel")])
def test_scale_search_matches_torchao_observer(seed, bits, g):
    """torchao's AWQ observer searches the same α grid with its own loop; handed this project's quantizer (through a
    config of its own), it must pick the same scales."""
    pytest.importorskip("torchao", reason="torchao (requirements-test.txt) is the reference for AWQ's search")
    from torchao.core.config import AOBaseConfig
    from torchao.prototype.awq.core import AWQObserver
    from torchao.quantization.transform_module import register_quantize_module_handler
    from torchao.utils import DummyModule

    @dataclass
    class RTNConfig(AOBaseConfig):
        bits: int
        group_size: object

    @register_quantize_module_handler(RTNConfig)
    def _rtn(module, config):
        return DummyModule(rtn(module.weight, config.bits, config.group_size))

    x = outlier_rows(seed, 256, 64)
    w = torch.randn(24, 64, generator=torch.Generator().manual_seed(seed + 5))
    obs = AWQObserver(w, None, RTNConfig(bits, g))
    obs(x, None)
    stats = input_stats(x)
    ours = awq(w, stats.gram, stats.absmean, bits, g, clip=False)
    torch.testing.assert_close(ours.scale, obs.calculate_qparams(), rtol=1e-6, atol=0)
