"""ONNX export (issue 13): QDQ graphs that carry our scales and zero points, valid ONNX, fused by ONNX Runtime into
integer kernels, and in agreement with our integer program; the float export; clear refusals."""
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from compress_core.baselines import get_baseline
from compress_core.catalog import data_info
from compress_core.data import list_datasets, load_dataset
from compress_core.export.onnx_export import (
    compare_with_integer,
    ort_fused_ops,
    ort_predict,
    ort_session,
    time_runtimes,
    to_onnx,
    to_onnx_float,
)
from compress_core.integer import to_integer
from compress_core.models import list_models
from compress_core.quant import QuantConfig, quant_layers, quantize, quantize_model
from compress_core.quant.qat import quantization_aware_training
from compress_core.train import TrainConfig

# Every built-in classifier: the GPT on text (LayerNorm, softmax, GELU, a tied head) has no integer program.
PAIRS = [(d, m) for d in list_datasets() if data_info(d).kind != "text" for m in list_models(d)]
INTEGER_KERNELS = ("QGemm", "QLinearConv", "QLinearMatMul")
FLOAT_KERNELS = {"Gemm", "FusedGemm", "Conv", "FusedConv", "MatMul"}


@dataclass
class Case:
    ds: object
    qmodel: nn.Module
    program: object
    onnx: bytes


@pytest.fixture(scope="module")
def exported():
    """exported(dataset, model, config) -> Case: quantized (PTQ, 512 calibration examples), converted and exported
    once per module."""
    cache = {}

    def get(dataset: str, model: str, config: QuantConfig = QuantConfig()) -> Case:
        key = (dataset, model, config)
        if key not in cache:
            ds = load_dataset(dataset)
            qm = quantize_model(get_baseline(dataset, model, seed=0).model, config, ds.x_train[:512])
            cache[key] = Case(ds, qm, to_integer(qm, ds.input_shape), to_onnx(qm, ds.input_shape))
        return cache[key]

    return get


def _integer_kernels(ops: dict) -> int:
    return sum(ops.get(k, 0) for k in INTEGER_KERNELS)


@pytest.mark.parametrize("pair", PAIRS, ids=["·".join(p) for p in PAIRS])
def test_ort_runs_integer_kernels_and_agrees_with_our_program(exported, pair):
    """8 bits, per-channel weights (the default QuantConfig), every built-in pair: ≥ 99.5 % equal predictions, logits
    within 2 steps, and ONNX Runtime runs every layer as an integer kernel with no float Q/DQ left inside."""
    c = exported(*pair)
    r = compare_with_integer(c.qmodel, c.program, c.ds.x_test, c.ds.y_test, model_bytes=c.onnx)
    assert r["n"] == len(c.ds.y_test)
    assert r["agreement"] >= 0.995, r
    assert r["max_step_diff"] <= 2, r
    assert r["exact"] > 0.9, r  # most logits are the same codes
    assert abs(r["ort_accuracy"] - r["integer_accuracy"]) <= 1 - r["agreement"] + 1e-9  # a flip moves ≤ 1 answer
    ops = ort_fused_ops(c.onnx)
    assert _integer_kernels(ops) == len(c.program.layers), ops
    assert not FLOAT_KERNELS & ops.keys(), ops
    # only the graph's boundaries stay: one QuantizeLinear of the float input, one DequantizeLinear of the logits
    assert ops.get("QuantizeLinear") == 1 and ops.get("DequantizeLinear") == 1, ops
    assert "Relu" not in ops and "Clip" not in ops  # the ReLUs are the uint8 outputs' saturation at Z = 0


def _graph_index(model: onnx.ModelProto):
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return inits, producer, consumers


def _assert_qparams(inits: dict, node, qp, dtype) -> None:
    scale, zero = inits[node.input[1]], inits[node.input[2]]
    assert scale.dtype == np.float32 and zero.dtype == dtype
    assert np.array_equal(scale.reshape(-1), qp.scale.numpy().reshape(-1))  # bit for bit
    assert np.array_equal(zero.reshape(-1).astype(np.int64), qp.zero_point.numpy().reshape(-1).astype(np.int64))


@pytest.mark.parametrize("case", [("digits", "cnn", QuantConfig()),
                                  ("mnist1d", "cnn", QuantConfig(per_channel=False)),
                                  ("digits", "mlp", QuantConfig(weight_symmetric=False))],
                         ids=["digits·cnn-per-channel", "mnist1d·cnn-per-tensor", "digits·mlp-asymmetric"])
def test_qdq_initializers_are_our_scales_and_zero_points(exported, case):
    """Read the graph back: it passes the checker, and every Q/DQ node's scale and zero point is ours, exactly."""
    dataset, model, config = case
    c = exported(dataset, model, config)
    m = onnx.load_from_string(c.onnx)
    onnx.checker.check_model(m, full_check=True)
    inits, producer, consumers = _graph_index(m)
    by_name = {n.name: n for n in m.graph.node}
    layers = quant_layers(c.qmodel)
    # the float input is quantized with the first layer's input (S, Z)
    (q_in,) = consumers[m.graph.input[0].name]
    assert q_in.op_type == "QuantizeLinear"
    _assert_qparams(inits, q_in, layers[0][1].input_qparams, np.uint8)
    act_qparams = []
    for name, ql in layers:
        layer = c.program.layer(name)
        node = by_name[name]
        assert node.op_type == ("Gemm" if ql.kind == "linear" else "Conv")
        x_dq, w_dq, b_dq = (producer[i] for i in node.input)
        assert x_dq.op_type == w_dq.op_type == b_dq.op_type == "DequantizeLinear"
        _assert_qparams(inits, x_dq, ql.input_qparams, np.uint8)
        # weights: our int8 codes, our scales and zero points (per output channel along axis 0, or one)
        codes = inits[w_dq.input[0]]
        assert codes.dtype == np.int8 and np.array_equal(codes, quantize(ql.weight.detach(), ql.weight_qparams))
        _assert_qparams(inits, w_dq, ql.weight_qparams, np.int8)
        axis = {a.name: a.i for a in w_dq.attribute}.get("axis")
        assert axis == (0 if config.per_channel else None)
        # bias: int32 codes q_b = round(b / (S_x·S_w)) with scale S_x·S_w and zero point 0
        b_codes, b_scale, b_zero = (inits[i] for i in b_dq.input)
        s_xw = ql.weight_qparams.scale.double() * ql.input_qparams.scale.double()
        assert b_codes.dtype == np.int32 and np.array_equal(b_codes, layer.bias.numpy())
        assert np.array_equal(b_codes, torch.round(ql.bias.detach().double() / s_xw).numpy())
        s_xw = s_xw.float().numpy()
        assert np.array_equal(b_scale.reshape(-1), s_xw.reshape(-1)) and not b_zero.any()
        # output: (Relu →) QuantizeLinear with the layer's post-ReLU output (S, Z)
        nxt = consumers[node.output[0]][0]
        if nxt.op_type == "Relu":
            assert ql.relu
            nxt = consumers[nxt.output[0]][0]
        assert nxt.op_type == "QuantizeLinear"
        _assert_qparams(inits, nxt, ql.output_qparams, np.uint8)
        act_qparams += [ql.input_qparams, ql.output_qparams]
    # no scale that is not ours: every activation Q/DQ (the ones around pools and flattens too) uses one of them
    ours = {(float(qp.scale), int(qp.zero_point)) for qp in act_qparams}
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[0] not in inits:
            assert (float(inits[n.input[1]]), int(inits[n.input[2]])) in ours, n.name


@pytest.mark.parametrize("config", [QuantConfig(per_channel=False), QuantConfig(weight_symmetric=False),
                                    QuantConfig(weight_symmetric=False, per_channel=False),
                                    QuantConfig(act_symmetric=True)],
                         ids=["per-tensor", "asymmetric", "asymmetric-per-tensor", "signed-activations"])
@pytest.mark.parametrize("pair", [("digits", "cnn"), ("mnist1d", "mlp")], ids=["digits·cnn", "mnist1d·mlp"])
def test_other_schemes_export_and_agree(exported, pair, config):
    """Per-tensor and asymmetric (affine) weights, and signed symmetric activations (int8, Z = 0, where the fused
    ReLU becomes a Clip after the integer kernel): still integer kernels, still in agreement."""
    c = exported(*pair, config)
    r = compare_with_integer(c.qmodel, c.program, c.ds.x_test, c.ds.y_test, model_bytes=c.onnx)
    assert r["agreement"] >= 0.99 and r["max_step_diff"] <= 2, r
    ops = ort_fused_ops(c.onnx)
    assert _integer_kernels(ops) == len(c.program.layers) and not FLOAT_KERNELS & ops.keys(), ops


@pytest.mark.parametrize("pair", [("digits", "cnn"), ("moons", "tiny")], ids=["digits·cnn", "moons·tiny"])
def test_single_rounding_program_matches_ort_bit_for_bit(exported, pair):
    """ONNX Runtime rescales an accumulator with one float rounding; our program with ``headroom=True`` rounds once
    too, and then (almost) every logit code is identical -- the default program's 1-step differences are TFLite's
    double rounding, not an export error."""
    c = exported(*pair)
    single = to_integer(c.qmodel, headroom=True)
    r = compare_with_integer(c.qmodel, single, c.ds.x_test, c.ds.y_test, model_bytes=c.onnx)
    assert r["exact"] >= 0.99 and r["agreement"] == 1.0, r


def test_low_and_high_bit_widths_keep_our_codes(exported):
    """4-bit codes are stored in int8/uint8 and clamped to our range (ORT still runs QGemm); 12-bit activations are
    uint16 (opset ≥ 21), run as float Gemm between Q/DQ; both agree with our program."""
    c = exported("digits", "mlp", QuantConfig(weight_bits=4, act_bits=4))
    m = onnx.load_from_string(c.onnx)
    inits, _, _ = _graph_index(m)
    for name, ql in quant_layers(c.qmodel):
        w = inits[f"{name}_weight_quantized"]
        assert w.dtype == np.int8 and -8 <= w.min() and w.max() <= 7
    logits = ort_predict(ort_session(c.onnx), c.ds.x_test)
    qp = c.program.output.qp
    codes = np.rint(logits.astype(np.float64) / float(qp.scale)) + int(qp.zero_point)
    assert codes.min() >= qp.qmin and codes.max() <= qp.qmax == 15  # clamped to 4 bits, not uint8's 255
    r = compare_with_integer(c.qmodel, c.program, c.ds.x_test, c.ds.y_test, model_bytes=c.onnx)
    assert r["max_step_diff"] <= 2 and r["exact"] > 0.9, r
    ops = ort_fused_ops(c.onnx)
    assert ops.get("QGemm") == 3 and ops.get("Clip", 0) >= 1, ops

    c = exported("digits", "mlp", QuantConfig(act_bits=12))
    inits, _, _ = _graph_index(onnx.load_from_string(c.onnx))
    assert inits["fc1_output_zero_point"].dtype == np.uint16
    r = compare_with_integer(c.qmodel, c.program, c.ds.x_test, c.ds.y_test, model_bytes=c.onnx)
    assert r["agreement"] >= 0.99 and r["max_step_diff"] <= 2, r
    with pytest.raises(ValueError, match="opset 21"):
        to_onnx(c.qmodel, c.ds.input_shape, opset=13)


def test_opset_13_gives_the_same_logits(exported):
    c = exported("digits", "cnn")
    old = to_onnx(c.qmodel, c.ds.input_shape, opset=13)
    assert onnx.load_from_string(old).opset_import[0].version == 13
    x = c.ds.x_test[:100]
    assert np.array_equal(ort_predict(ort_session(old), x), ort_predict(ort_session(c.onnx), x))


def test_refused_models_raise_a_plain_value_error(exported):
    c = exported("digits", "mlp")
    ds, b = c.ds, get_baseline("digits", "mlp", seed=0)
    refused = [quantize_model(b.model, QuantConfig(target="weights")),             # no activation scales
               quantize_model(b.model, QuantConfig(target="activations"), ds.x_train[:64]),  # float weights
               b.model,                                                          # not quantized at all
               nn.Sequential(nn.Linear(3, 2)).train()]
    for model in refused:
        with pytest.raises(ValueError) as e:
            to_onnx(model, ds.input_shape)
        assert type(e.value) is ValueError and "Cannot export" in str(e.value)
    with pytest.raises(ValueError, match="opset"):
        to_onnx(c.qmodel, ds.input_shape, opset=12)
    with pytest.raises(ValueError, match="cannot be exported"):
        to_onnx_float(nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()), (4,))


@pytest.mark.parametrize("pair", PAIRS, ids=["·".join(p) for p in PAIRS])
def test_float_export_matches_torch(pair):
    ds = load_dataset(pair[0])
    model = get_baseline(*pair, seed=0).model
    session = ort_session(to_onnx_float(model, ds.input_shape))
    with torch.no_grad():
        expected = model(ds.x_test).numpy()
    assert np.abs(ort_predict(session, ds.x_test) - expected).max() <= 1e-4


def test_pruned_and_qat_models_export(exported):
    """A pruned channel gets the program's S_w = S_y/S_x (its bias code fits int32); a QAT (LSQ) model exports."""
    c = exported("digits", "mlp")
    model = get_baseline("digits", "mlp", seed=0).model
    with torch.no_grad():
        model.fc1.weight[:4] = 0
    qm = quantize_model(model, QuantConfig(), c.ds.x_train[:512])
    prog = to_integer(qm)
    onnx_bytes = to_onnx(qm, c.ds.input_shape)
    inits, _, _ = _graph_index(onnx.load_from_string(onnx_bytes))
    assert np.array_equal(inits["fc1_weight_scale"], prog.layer("fc1").w_qp.scale.numpy())
    r = compare_with_integer(qm, prog, c.ds.x_test, c.ds.y_test, model_bytes=onnx_bytes)
    assert r["agreement"] >= 0.995 and r["max_step_diff"] <= 2, r

    ds = load_dataset("moons")
    qat, _ = quantization_aware_training(get_baseline("moons", "tiny", seed=0).model, QuantConfig(weight_bits=4), ds,
                                         TrainConfig(epochs=1, lr=1e-3), lsq=True)
    r = compare_with_integer(qat, to_integer(qat), ds.x_test, ds.y_test)
    assert r["agreement"] >= 0.99 and r["max_step_diff"] <= 2, r


def test_time_runtimes_measures_four_runtimes_on_one_thread(exported):
    c = exported("digits", "mlp")
    threads = torch.get_num_threads()
    rows = time_runtimes(get_baseline("digits", "mlp", seed=0).model, c.qmodel, c.program, c.ds.x_test[:32],
                         repeats=2)
    assert [r["runtime"] for r in rows] == ["torch float", "our integer program", "ONNX Runtime float",
                                            "ONNX Runtime int8"]
    assert all(r["batch"] == 32 and r["median_ms"] > 0 for r in rows)
    assert torch.get_num_threads() == threads
