"""compress_core.lm: variant keys, builds that never touch the float model, paired scores, outliers and words."""
import numpy as np
import pytest
import torch

from compress_core import lm
from compress_core.data import load_dataset
from compress_core.models import build_model


@pytest.fixture(scope="module")
def small():
    """An untrained 1-block GPT on pydoc (structure and arithmetic need no training) and its calibration."""
    ds = load_dataset("pydoc")
    model = build_model("gpt:1x16h2", ds, seed=0).eval()
    return model, ds, lm.calibrate(model, ds, windows=16)


@pytest.mark.parametrize("key, family, fields", [
    ("gptq_w3_g128", "weight", dict(method="gptq", bits=3, group=128)),
    ("awq_w4_gch", "weight", dict(method="awq", bits=4, group="channel")),
    ("w8a8_smoothquant_a0.8", "w8a8", dict(method="smoothquant", alpha=0.8)),
    ("w8a8_per_token", "w8a8", dict(act="token")),
    ("wanda_50", "prune", dict(sparsity=0.5)),
    ("sparsegpt_2_4", "prune", dict(nm=(2, 4))),
    ("kv2_token", "kv", dict(bits=2, kv_axes=("token", "token"))),
])
def test_keys_parse_to_their_settings(key, family, fields):
    v = lm.parse(key)
    assert v.family == family and all(getattr(v, k) == x for k, x in fields.items())
    assert lm.label(key)


@pytest.mark.parametrize("bad", ["gptq_w9_g128", "rtn_w4_g100", "wanda_0", "wanda_4_2", "w8a8_per_tensor_a0.5",
                                 "kv3", "", "float32"])
def test_bad_keys_are_refused_in_words(bad):
    with pytest.raises(ValueError, match="variant|sparsity|N:M|α"):
        lm.parse(bad)


def test_every_family_builds_a_copy_and_leaves_the_float_model_alone(small):
    model, ds, calib = small
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for key in ("rtn_w3_g32", "gptq_w3_g128", "awq_w4_g128", "w8a8_per_tensor", "w8a8_smoothquant", "magnitude_50",
                "wanda_2_4", "sparsegpt_50", "kv4"):
        built = lm.build(model, key, calib)
        assert built is not model and not built.training
        built(ds.x_test[:2])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.kv_hook is None for m in model.modules() if hasattr(m, "kv_hook"))
    with pytest.raises(ValueError, match="calibrates"):
        lm.build(model, "gptq_w3_g128", None)


def test_pruned_variants_reach_their_sparsity(small):
    model, _, calib = small
    for key, want in (("magnitude_50", 0.5), ("wanda_50", 0.5), ("sparsegpt_2_4", 0.5)):
        w = torch.cat([m.weight.flatten() for n, m in lm.build(model, key, calib).named_modules()
                       if isinstance(m, torch.nn.Linear)])
        assert (w == 0).float().mean().item() == pytest.approx(want, abs=0.01)


def test_scores_are_paired_with_float(small):
    model, ds, calib = small
    res = lm.scores(model, ds, ("float", "kv8", "kv2"), calib)
    assert list(res) == ["float", "kv8", "kv2"] and res["float"].diff == 0
    windows = lm.variants.window_bpc(model, ds)
    assert res["float"].bpc == pytest.approx(float(np.mean(windows)))
    kv2 = lm.variants.window_bpc(lm.build(model, "kv2"), ds)
    assert res["kv2"].diff == pytest.approx(float(np.mean(kv2 - windows)))
    assert res["kv2"].diff_se == pytest.approx(float(np.std(kv2 - windows, ddof=1) / np.sqrt(len(windows))))
    assert lm.compare(res["kv8"], res["kv8"]) == "no difference"


def test_fold_groups_pair_each_layernorm_with_its_readers(small):
    model, _, _ = small
    assert lm.fold_groups(model) == {"block1.ln1": ["block1.attn.q", "block1.attn.k", "block1.attn.v"],
                                     "block1.ln2": ["block1.mlp.fc"]}


def test_outlier_table_finds_a_planted_outlier_channel():
    rows = torch.ones(50, 8)
    rows[:, 3] = 40.0
    (r,) = lm.outlier_table({"layer": rows}, top=2)
    assert r["top"][0] == 3 and r["outliers"] == 1 and r["ratio"] == pytest.approx(40.0)


def test_smoothing_view_keeps_the_product(small):
    model, _, calib = small
    v = lm.smoothing_view(model, calib, "block1.mlp.fc", 0.5)
    np.testing.assert_allclose(v["x_smooth"] * v["w_smooth"], v["x"] * v["w"], rtol=1e-5)
    np.testing.assert_allclose(v["x_smooth"], v["w_smooth"], rtol=1e-5)  # α = 0.5: both maxima meet
