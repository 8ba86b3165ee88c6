"""Whole-model quantization of the GPT: every nested Linear (``block1.attn.q``, ``block1.mlp.fc``, …) fake-quantizes
its weight and its input; embeddings, LayerNorms and the tied head stay float. Checked against hand-written fake
quantization (``quant.primitives``) and PyTorch's own per-channel fake-quantize kernel, on a small random GPT and on
the trained baseline."""
import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from compress_core import get_baseline, load_dataset
from compress_core.gpt import TiedHead
from compress_core.models import build_model
from compress_core.quant import (
    QuantConfig,
    bits_sensitivity,
    bits_sweep,
    calibrate,
    compute_qparams,
    fake_quantize,
    layer_report,
    model_size,
    quant_layers,
    quantization_aware_training,
    quantize_model,
    suggest_bits,
)
from compress_core.quant.qat import _QATLayer, freeze, prepare_qat
from compress_core.quant.report import layer_tensor
from compress_core.text import lm_metrics
from compress_core.train import TrainConfig

LINEARS = [f"block{i}.{p}" for i in (1, 2) for p in ("attn.q", "attn.k", "attn.v", "attn.proj", "mlp.fc", "mlp.fc2")]


@pytest.fixture(scope="module")
def pydoc():
    return load_dataset("pydoc")


@pytest.fixture(scope="module")
def small(pydoc):
    """A random 2-block GPT, 32 wide: quick, and its Linears sit where the built-in GPT's do."""
    return build_model("gpt:2x32h2", pydoc, seed=0).eval()


@pytest.fixture(scope="module")
def calib(pydoc):
    return pydoc.x_train[:48]


def _float_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every Linear's float input on ``x`` (one batch), by forward pre-hooks: the reference's own capture."""
    seen = {}
    hooks = [m.register_forward_pre_hook(lambda _m, a, n=n: seen.__setitem__(n, a[0].detach().clone()))
             for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def _hand_quantized(model: nn.Module, x: torch.Tensor, bits: int, act_bits: int | None) -> nn.Module:
    """The reference: a copy of ``model`` whose Linears use per-channel symmetric min-max weights, written with
    ``compute_qparams`` and ``fake_quantize``, and (``act_bits``) fake-quantize their input on an affine unsigned
    grid over the float input's [min, max] on ``x``."""
    ref = copy.deepcopy(model).eval()
    inputs = _float_inputs(model, x)
    for name, m in ref.named_modules():
        if not isinstance(m, nn.Linear):
            continue
        w = m.weight.detach()
        qp = compute_qparams(w.amin(1), w.amax(1), bits, symmetric=True, signed=True, axis=0)
        with torch.no_grad():
            m.weight.copy_(fake_quantize(w, qp))
        if act_bits:
            a = inputs[name]
            aqp = compute_qparams(a.min(), a.max(), act_bits, symmetric=False, signed=False)
            m.register_forward_pre_hook(lambda _m, args, aqp=aqp: (fake_quantize(args[0], aqp),))
    return ref


def test_every_nested_linear_is_quantized_and_the_rest_stays_float(small, calib):
    before = {k: v.clone() for k, v in small.state_dict().items()}
    q = quantize_model(small, QuantConfig(), calib)
    assert [n for n, _ in quant_layers(q)] == LINEARS
    assert all(ql.quantize_input and ql.input_qparams is not None and ql.output_qparams is None
               for _, ql in quant_layers(q))
    assert not any(isinstance(m, nn.Linear) for m in q.modules())
    # embeddings, LayerNorms and the tied head: untouched, float, and the head still reads the copy's embedding
    assert isinstance(q.head, TiedHead) and q.head.tied_weight is q.embed.tok.weight
    assert torch.equal(q.embed.tok.weight, small.embed.tok.weight) and torch.equal(q.ln_f.weight, small.ln_f.weight)
    assert all(torch.equal(v, small.state_dict()[k]) for k, v in before.items())  # the float model is unchanged
    assert not q.training


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_weight_only_equals_hand_written_fake_quantization(small, calib, bits):
    q = quantize_model(small, QuantConfig(target="weights", weight_bits=bits), calib)
    ref = _hand_quantized(small, calib, bits, None)
    x = calib[:8]
    with torch.no_grad():
        assert torch.equal(q(x), ref(x))
    for name, ql in quant_layers(q):
        assert torch.equal(ql.quantized_weight(), ref.get_submodule(name).weight)


def test_w8a8_equals_hand_written_input_side_fake_quantization(small, calib):
    """Input-side activations: each Linear rounds its own input to a grid over the float input's range."""
    q = quantize_model(small, QuantConfig(weight_bits=4, act_bits=8, calib_batch_size=len(calib)), calib)
    ref = _hand_quantized(small, calib, 4, 8)
    with torch.no_grad():
        torch.testing.assert_close(q(calib[:8]), ref(calib[:8]), rtol=0, atol=1e-5)
    # the inputs are signed (no ReLU before a Linear): the affine grid's zero point sits inside it
    zps = [int(ql.input_qparams.zero_point) for _, ql in quant_layers(q)]
    assert all(0 < z < 255 for z in zps)


def test_per_channel_weights_match_torch_fake_quantize_per_channel(small, calib):
    for symmetric in (True, False):
        q = quantize_model(small, QuantConfig(target="weights", weight_bits=4, weight_symmetric=symmetric), calib)
        for _, ql in quant_layers(q):
            qp = ql.weight_qparams
            ref = torch.fake_quantize_per_channel_affine(ql.weight.detach(), qp.scale.float(), qp.zero_point.int(),
                                                         0, qp.qmin, qp.qmax)
            assert torch.equal(ql.quantized_weight(), ref)


def test_percentile_calibration_reads_every_input_and_min_max_only_the_extremes(small, calib):
    """Min-max keeps two numbers a batch; the result is the same range as on every activation kept."""
    cfg = QuantConfig(calib_batch_size=16)
    q = quantize_model(small, cfg, calib)
    inputs = _float_inputs(small, calib)
    for name, ql in quant_layers(q):
        want = calibrate(inputs[name], "minmax", bits=8, symmetric=False, signed=False)
        assert torch.equal(ql.input_qparams.scale, want.scale) and torch.equal(ql.input_qparams.zero_point,
                                                                               want.zero_point)
    qp = quantize_model(small, replace(cfg, act_method="percentile", percentile=99.0), calib)
    name, ql = quant_layers(qp)[0]
    want = calibrate(inputs[name], "percentile", bits=8, symmetric=False, signed=False, percentile=99.0)
    torch.testing.assert_close(ql.input_qparams.scale, want.scale)


def test_mixed_precision_names_nested_layers_and_bad_input_is_refused(small, calib):
    q = quantize_model(small, QuantConfig(target="weights", layer_bits=(("block2.mlp.fc", 3),)), calib)
    bits = {n: ql.weight_qparams.bits for n, ql in quant_layers(q)}
    assert bits["block2.mlp.fc"] == 3 and bits["block1.attn.q"] == 8
    with pytest.raises(ValueError, match="unknown layers"):
        quantize_model(small, QuantConfig(layer_bits=(("fc1", 4),)), calib)
    with pytest.raises(ValueError, match="needs calibration data"):
        quantize_model(small, QuantConfig(), None)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(q, QuantConfig(target="weights"))


def test_size_report_and_layer_view_cover_nested_layers(small, calib):
    float_size = model_size(small)
    n_params = sum(p.numel() for p in small.parameters())  # the tied head owns none: counted once, as embed.tok
    assert float_size["bits"] == 32 * n_params
    q = quantize_model(small, QuantConfig(target="weights"), calib)
    size = model_size(q)
    rows = {r["layer"]: r for r in size["layers"]}
    assert rows["block1.attn.q"]["weight_bits"] == 8 and rows["embed.tok"]["weight_bits"] == 32
    lin = sum(small.get_submodule(n).weight.numel() for n in LINEARS)
    scales = sum(small.get_submodule(n).weight.shape[0] for n in LINEARS)  # one float32 scale per output channel
    assert size["bits"] == float_size["bits"] - 24 * lin + 32 * scales
    q8 = quantize_model(small, QuantConfig(), calib)
    rep = layer_report(q8, calib)
    assert [(r["layer"], r["tensor"]) for r in rep] == [(n, t) for n in LINEARS for t in ("input", "weight")]
    assert all(r["sqnr_db"] > 20 for r in rep)
    view = layer_tensor(quantize_model(small, QuantConfig(target="activations"), calib), "block1.mlp.fc2", calib)
    assert view.what == "input activations" and view.values.shape[-1] == 4 * 32


def test_qat_fine_tunes_the_gpt_and_freezes_nested_layers(small, pydoc):
    few = replace(pydoc, x_train=pydoc.x_train[:64], y_train=pydoc.y_train[:64], x_val=pydoc.x_val[:16],
                  y_val=pydoc.y_val[:16])
    cfg = QuantConfig(weight_bits=4)
    prepared = prepare_qat(small, cfg, few.x_train[:32], lsq=True)
    assert all(isinstance(prepared.get_submodule(n), _QATLayer) for n in LINEARS)  # wrapped where they sit
    frozen = freeze(prepared)
    assert [n for n, _ in quant_layers(frozen)] == LINEARS
    q, hist = quantization_aware_training(small, cfg, few, TrainConfig(epochs=1, lr=1e-3, batch_size=16),
                                          calibration_data=few.x_train[:32], lsq=True, keep_best=False)
    assert hist.iterations == 4 and [n for n, _ in quant_layers(q)] == LINEARS
    assert all(ql.weight_qparams.bits == 4 and ql.input_qparams is not None for _, ql in quant_layers(q))
    assert not torch.equal(dict(quant_layers(q))["block1.attn.q"].weight, small.block1.attn.q.weight)


@pytest.fixture(scope="module")
def gpt():
    return get_baseline("pydoc", "gpt")  # the trained, cached baseline


def test_w8a8_stays_near_float_and_2_bit_weights_cost_more_on_the_trained_gpt(gpt, pydoc):
    model, calib = gpt.model, pydoc.x_train[:64]
    base = lm_metrics(model, pydoc)
    w8a8 = lm_metrics(quantize_model(model, QuantConfig(), calib), pydoc)
    w8 = lm_metrics(quantize_model(model, QuantConfig(target="weights"), calib), pydoc)
    w2 = lm_metrics(quantize_model(model, QuantConfig(target="weights", weight_bits=2), calib), pydoc)
    assert abs(w8a8.bpc - base.bpc) < 0.1  # a loose bound: 8-bit rounding moves a trained GPT by ~0.002 bpc
    assert abs(w8.bpc - base.bpc) < 0.05
    assert w2.bpc > w8.bpc + 0.2  # 2-bit weights (3 levels) cost far more than 8-bit


def test_sensitivity_scan_and_sweep_read_bits_per_character(small, pydoc):
    few = replace(pydoc, x_val=pydoc.x_val[:24], y_val=pydoc.y_val[:24], x_test=pydoc.x_test[:24],
                  y_test=pydoc.y_test[:24])
    rows = bits_sensitivity(small, few, QuantConfig(target="weights"), bits=(2, 8), calibration_data=few.x_train[:8])
    assert [(r["layer"], r["bits"]) for r in rows] == [(n, b) for n in LINEARS for b in (2, 8)]
    base = lm_metrics(small, few, "val").bpc
    assert all(abs(r["bpc"] - r["change_bpc"] - base) < 1e-9 and r["n"] == 24 for r in rows)
    assert dict(suggest_bits(rows, 1000.0)) == {n: 2 for n in LINEARS}  # any loss is within a huge budget
    assert set(dict(suggest_bits(rows, 0.0)).values()) <= {2, 8}
    sweep = bits_sweep(small, few, QuantConfig(target="weights"), (2, 8), few.x_train[:8])
    assert [r["bits"] for r in sweep] == [2, 8] and all({"bpc", "bpc_se", "accuracy", "kb"} <= r.keys()
                                                         for r in sweep)
    assert sweep[0]["kb"] < sweep[1]["kb"]


def test_one_pass_gives_the_paired_score_and_evaluate_s_metrics(small, pydoc):
    """What the page shows on the GPT comes from one pass over the test windows; it equals ``score`` (paired with
    float) and ``train.evaluate`` computed apart."""
    from compress_core.lm.variants import score, score_with_metrics
    from compress_core.train import evaluate

    few = replace(pydoc, x_test=pydoc.x_test[:40], y_test=pydoc.y_test[:40])
    q = quantize_model(small, QuantConfig(weight_bits=4), pydoc.x_train[:8])
    ref, ref_w = score(small, few)
    s, w, m = score_with_metrics(q, few, ref_w, "q")
    assert s == score(q, few, ref_w, "q")[0]
    e = evaluate(q, few.x_test, few.y_test)
    assert m.accuracy == e.accuracy and m.loss == pytest.approx(e.loss, rel=1e-6)
