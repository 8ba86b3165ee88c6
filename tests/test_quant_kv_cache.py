"""KV-cache quantization: KIVI's asymmetric quantizer against a loop transcription, its error bound, which axis
each grid spans, and the attention module's ``kv_hook``."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_core.quant.kv_cache import kv_cache_bits, kv_quantizer, quantize_kv
from tests.llm_blocks import block_inputs, make_block

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def ref_kivi(x: torch.Tensor, bits: int, axis: str) -> torch.Tensor:
    """KIVI's quantizer on one group at a time (float64): mn, mx over the group, S = (mx − mn)/(2^b − 1),
    x̂ = mn + S·round((x − mn)/S)."""
    x = x.double()
    out = torch.empty_like(x)
    b, h, t, d = x.shape
    for i in range(b):
        for j in range(h):
            for k in range(t if axis == "token" else d):
                grp = x[i, j, k, :] if axis == "token" else x[i, j, :, k]
                mn, mx = grp.min(), grp.max()
                s = (mx - mn) / (2 ** bits - 1)
                val = mn + s * torch.round((grp - mn) / s) if s > 0 else grp
                if axis == "token":
                    out[i, j, k, :] = val
                else:
                    out[i, j, :, k] = val
    return out


@SETTINGS
@given(seed=st.integers(0, 10 ** 6), bits=st.sampled_from([2, 4, 8]), axis=st.sampled_from(["token", "channel"]),
       b=st.integers(1, 2), h=st.integers(1, 3), t=st.integers(1, 9), d=st.integers(1, 8))
def test_matches_transcription_within_half_a_step(seed, bits, axis, b, h, t, d):
    x = torch.randn(b, h, t, d, generator=torch.Generator().manual_seed(seed)) * 3
    ours = quantize_kv(x, bits, axis)
    dim = -1 if axis == "token" else -2
    scale = (x.amax(dim, keepdim=True) - x.amin(dim, keepdim=True)) / (2 ** bits - 1)
    assert ((ours - x).abs() <= scale / 2 + 1e-5).all()  # no clipping: min and max are levels
    ref = ref_kivi(x, bits, axis)
    diff = (ours.double() - ref).abs()
    assert ((diff <= 1e-5) | ((diff - scale.double()).abs() <= 1e-5)).all()  # a tie may round one step either way
    assert (diff <= 1e-5).float().mean() > 0.99


def test_axes_span_the_right_groups():
    """Per channel: each (batch, head, channel) column over the tokens takes at most 2^b values; per token each
    row over head_dim does. A key channel with an offset and large magnitude (KIVI's observation) is what per-channel
    grids handle and per-token ones do not."""
    g = torch.Generator().manual_seed(0)
    k = torch.randn(2, 3, 32, 16, generator=g)
    k[..., 5] = k[..., 5] * 2 + 40  # an outlier channel: a large offset shared by every token
    kc, kt = quantize_kv(k, 2, "channel"), quantize_kv(k, 2, "token")
    assert all(len(col.unique()) <= 4 for col in kc.transpose(-1, -2).reshape(-1, 32))
    assert all(len(row.unique()) <= 4 for row in kt.reshape(-1, 16))
    assert (kc - k).pow(2).mean() < (kt - k).pow(2).mean() / 10
    const = torch.full((1, 1, 5, 4), 0.3)
    assert torch.equal(quantize_kv(const, 2, "token"), const) and torch.equal(quantize_kv(const, 2, "channel"), const)


def test_kv_hook_in_attention():
    block, x = make_block(), block_inputs()
    with torch.no_grad():
        ref = block(x)
        errs = {}
        for bits in (8, 4, 2):
            block.attn.kv_hook = kv_quantizer(bits)
            errs[bits] = float((block(x) - ref).pow(2).mean())
        block.attn.kv_hook = None
    assert 0 < errs[8] < errs[4] < errs[2]
    assert errs[8] < 1e-4 * float(ref.pow(2).mean())
    q = kv_quantizer(4, key_axis="token", value_axis="channel")
    k, v = torch.randn(1, 2, 6, 4), torch.randn(1, 2, 6, 4)
    kq, vq = q(k, v)
    assert torch.equal(kq, quantize_kv(k, 4, "token")) and torch.equal(vq, quantize_kv(v, 4, "channel", causal=True))


def test_causal_per_channel_ranges_see_only_the_past():
    """Token t's grid spans its channel's range over tokens 0..t: changing a later token changes no earlier code,
    and the last token's grid is the whole window's (the non-causal grid)."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 9, 4)
    q = quantize_kv(x, 3, "channel", causal=True)
    y = x.clone()
    y[..., 6:, :] *= 10.0  # the future grows tenfold
    assert torch.equal(quantize_kv(y, 3, "channel", causal=True)[..., :6, :], q[..., :6, :])
    assert not torch.equal(quantize_kv(y, 3, "channel")[..., :6, :], quantize_kv(x, 3, "channel")[..., :6, :])
    torch.testing.assert_close(q[..., -1:, :], quantize_kv(x, 3, "channel")[..., -1:, :])


def test_a_gpt_with_a_quantized_kv_cache_stays_causal():
    """A later character never changes an earlier position's logits, with the KV hook on (KIVI's axes)."""
    from compress_core.data import load_dataset
    from compress_core.models import build_model

    ds = load_dataset("pydoc")
    model = build_model("gpt:1x16h2", ds, seed=0).eval()
    model.block1.attn.kv_hook = kv_quantizer(2)
    x = ds.x_test[:2].clone()
    y = x.clone()
    y[:, 40:] = (y[:, 40:] + 7) % ds.num_classes
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :, :40], model(y)[:, :, :40])


def test_cache_bits():
    # 2 tensors of 1·4·128·64 codes at 2 bits; keys per channel: 4·64 groups, values per token: 4·128 groups
    assert kv_cache_bits((1, 4, 128, 64), 2) == 2 * 4 * 128 * 64 * 2 + (4 * 64 + 4 * 128) * 32
    assert kv_cache_bits((2, 1, 10, 8), 8, "token", "token", scale_bits=32) == 2 * 160 * 8 + 2 * 20 * 64
