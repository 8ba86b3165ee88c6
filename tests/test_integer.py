"""Integer-only inference: integer-only ops, agreement with the fake-quantized model (≤ 1 step), torch.ao's
quantized layers as an oracle (≤ 1 step), exact integer convolution / pooling, and clear conversion errors."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.integer import (
    ConversionError,
    IntLayer,
    IntMaxPool,
    channels_first,
    fake_quant_codes,
    int_matmul,
    integer_accuracy,
    to_integer,
)
from compress_core.quant import QuantConfig, quantize, quantize_model
from compress_core.testing import reference_requantize
from compress_core.train import TrainConfig, evaluate

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # the oracle's API

CASES = [("digits", "mlp", TrainConfig(epochs=6, lr=1e-3)), ("digits", "cnn", TrainConfig(epochs=6, lr=2e-3)),
         ("mnist1d", "cnn", TrainConfig(epochs=4, lr=2e-3))]


@pytest.fixture(scope="session")
def trained():
    """(dataset, baseline) per case: short training runs, cached on disk across test sessions."""
    return {(d, m): (load_dataset(d), get_baseline(d, m, seed=0, train_config=cfg)) for d, m, cfg in CASES}


@pytest.fixture(scope="session")
def converted(trained):
    out = {}
    for key, (ds, b) in trained.items():
        qm = quantize_model(b.model, QuantConfig(), ds.x_train[:512])
        out[key] = (ds, b, qm, to_integer(qm, ds.input_shape))
    return out


@pytest.mark.parametrize("key", [(d, m) for d, m, _ in CASES])
def test_logits_within_one_step_and_same_accuracy(converted, key, prediction_flips):
    ds, b, qm, prog = converted[key]
    ci, cf = prog(ds.x_test), fake_quant_codes(qm, prog, ds.x_test)
    diff = (ci.to(torch.int32) - cf.to(torch.int32)).abs()
    assert diff.max() <= 1
    assert (diff == 0).float().mean() > 0.9  # most logits are bit-identical
    # 1 step apart, only near-ties (top-2 fake-quant codes ≤ 2 steps apart) can change a prediction
    with torch.no_grad():
        f = prediction_flips(qm.eval()(ds.x_test), cf, ci)
    assert f["outside"] == 0 and f["differ"] <= f["near_ties"], f
    acc_int = integer_accuracy(prog, ds.x_test, ds.y_test)
    acc_fq = evaluate(qm, ds.x_test, ds.y_test).accuracy
    assert round(abs(acc_int - acc_fq) * len(ds.y_test)) <= f["differ"]  # each flip moves 1 answer at most
    assert acc_int > 0.5


@pytest.mark.parametrize("cfg", [QuantConfig(per_channel=False), QuantConfig(weight_symmetric=False),
                                 QuantConfig(act_symmetric=True), QuantConfig(weight_bits=4, narrow_range=True)])
def test_other_schemes_agree_layer_by_layer(trained, cfg):
    """Per-tensor, asymmetric weights (run-time Z_w term), signed activations, 4-bit: each layer within 1 step
    of the fake-quantized layer given the same integer input."""
    ds, b = trained[("digits", "cnn")]
    qm = quantize_model(b.model, cfg, ds.x_train[:512])
    prog = to_integer(qm)
    children = dict(qm.named_children())
    q = prog.quantize_input(ds.x_test[:200])
    for op in prog.ops:
        out = op(q)
        if isinstance(op, IntLayer):
            m = children[op.name]
            y = m(prog.dequantize(channels_first(q), op.x))
            y = torch.relu(y) if op.relu else y  # the model's ReLU module (a no-op on a post-ReLU range)
            want = quantize(y, op.y.qp) - op.y.offset
            assert (channels_first(out).to(torch.int32) - want).abs().max() <= 1, op.name
        q = out
    assert abs(integer_accuracy(prog, ds.x_test, ds.y_test) - evaluate(qm, ds.x_test, ds.y_test).accuracy) < 0.01


class FloatWatcher(TorchDispatchMode):
    """Records every op run and the dtype of every tensor it returns."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor):
                self.seen.append((str(func), t.dtype))
        return out


@pytest.mark.parametrize("key", [("digits", "cnn"), ("mnist1d", "cnn"), ("digits", "mlp")])
def test_no_float_tensor_between_input_codes_and_logits(converted, key):
    ds, b, qm, prog = converted[key]
    q = prog.quantize_input(ds.x_test[:64])
    trace = []
    with FloatWatcher() as w:
        prog.forward_int(q, trace)
    assert len(w.seen) > 20
    floats = [(f, d) for f, d in w.seen if d.is_floating_point or d.is_complex]
    assert not floats, floats[:5]
    assert all(not t.dtype.is_floating_point for _, t, _ in trace)
    # the matrix products ran on int8 operands with torch's int8 kernel (where this CPU offers it)
    assert any("_int_mm" in f for f, _ in w.seen) or all(op.kernel == "int32 matmul" for op in prog.layers)
    assert all(t.dtype == torch.int8 for _, t, _ in trace)  # every activation between layers is int8
    assert all(op.weight_t.dtype == torch.int8 and op.folded_bias.dtype == torch.int32 for op in prog.layers)
    with FloatWatcher() as fast:  # the fast path (no trace: batch-last, one-pass rescales, scratch memory)
        codes = prog.forward_int(q)
    assert not [(f, d) for f, d in fast.seen if d.is_floating_point or d.is_complex]
    assert torch.equal(codes, trace[-1][1])


@pytest.mark.parametrize("headroom", [True, False])
def test_rescale_equals_gemmlowp_primitive(trained, headroom):
    """Both rescale routes equal TFLite's MultiplyByQuantizedMultiplier(acc·2^L, M0, −(n + L)) + Z, clamped,
    bit for bit, on accumulator values across the layer's whole possible range (|acc| ≤ its bound)."""
    for key in [("digits", "mlp"), ("mnist1d", "cnn"), ("digits", "cnn")]:
        ds, b = trained[key]
        prog = to_integer(quantize_model(b.model, QuantConfig(), ds.x_train[:256]), headroom=headroom)
        g = torch.Generator().manual_seed(0)
        for op in prog.layers:
            assert (op.headroom > 0) == headroom and op.acc_bound << op.headroom <= 2 ** 31 - 1
            bound = op.acc_bound
            acc = torch.randint(-bound, bound + 1, (512, op.bias.numel()), generator=g, dtype=torch.int64)
            acc[:64] = torch.randint(-3000, 3000, (64, op.bias.numel()), generator=g)
            acc[64], acc[65] = bound, -bound
            acc = acc.to(torch.int32)
            want = reference_requantize(op, acc).to(torch.int32)
            assert torch.equal(op.requantize(acc.clone()).to(torch.int32), want), op.name
            steps = {}
            assert torch.equal(op.requantize(acc.clone(), steps).to(torch.int32), want)
            assert torch.equal(steps["out"], want)
            if op.fused:  # the fused route (raw products in, one multiply-add-shift) gives the same codes
                assert torch.equal(op.rescale_fused(acc - op.folded_bias).to(torch.int32), want), op.name
            elif op.relu:  # accumulators too large for its int64 terms: the stage-by-stage rescale only
                with pytest.raises(ValueError, match="too large for the one-pass"):
                    op.rescale_fused(acc)
            else:
                with pytest.raises(ValueError, match="needs a ReLU"):
                    op.rescale_fused(acc)


def test_int_mm_is_exact_on_extreme_values():
    g = torch.Generator().manual_seed(0)
    for m, k, n in [(1024, 64, 300), (1, 300, 100), (33, 54, 16), (7, 5, 3)]:
        a = torch.randint(-128, 128, (m, k), generator=g, dtype=torch.int8)
        b = torch.randint(-128, 128, (k, n), generator=g, dtype=torch.int8)
        a[0], b[:, 0] = -128, -128
        assert torch.equal(int_matmul(a, b), a.to(torch.int64) @ b.to(torch.int64))


def test_integer_conv_and_pool_are_exact(converted):
    """The im2col convolution's int32 accumulator equals float64 convolution of (q_x − Z_x) and (q_w − Z_w)
    (exact for these small integers); integer max-pool equals torch's max-pool."""
    for key in [("digits", "cnn"), ("mnist1d", "cnn")]:
        ds, _, _, prog = converted[key]
        op = prog.layers[1]  # conv2: a padded convolution of a real activation
        q = prog.quantize_input(ds.x_test[:16])
        for o in prog.ops[:prog.ops.index(op)]:  # channels-last, conv1, pool1
            q = o(q)
        steps = {}
        out = op(q, steps)
        conv = F.conv2d if op.kind == "conv2d" else F.conv1d
        xr = channels_first(q).double() - op.x.zero
        wr = op.weight_codes.double() - op.w_qp.zero_point.double().reshape(-1, *[1] * (op.weight_codes.dim() - 1))
        want = conv(xr, wr, op.bias.double(), stride=op.stride, padding=op.padding)
        got = channels_first(steps["acc"].reshape(*out.shape))
        assert torch.equal(got.double(), want)
        pool = next(o for o in prog.ops if isinstance(o, IntMaxPool))
        mp = F.max_pool2d if len(pool.kernel_size) == 2 else F.max_pool1d
        assert torch.equal(channels_first(pool(out)).double(), mp(channels_first(out).double(), pool.kernel_size))


def _ao_layer(op, m):
    """torch.ao.nn.quantized's Linear/Conv holding the same int8 weights and scales (test oracle only)."""
    import torch.ao.nn.quantized as nnq

    qp = op.w_qp
    if qp.per_channel:
        qw = torch.quantize_per_channel(m.weight.detach(), qp.scale.double(), qp.zero_point.long(), 0, torch.qint8)
    else:
        qw = torch.quantize_per_tensor(m.weight.detach(), float(qp.scale), int(qp.zero_point), torch.qint8)
    assert torch.equal(qw.int_repr().to(torch.int32), op.weight_codes)
    if op.kind == "linear":
        layer = nnq.Linear(m.weight.shape[1], m.weight.shape[0])
    else:
        cls = nnq.Conv2d if op.kind == "conv2d" else nnq.Conv1d
        layer = cls(m.weight.shape[1], m.weight.shape[0], tuple(op.kernel_size), stride=op.stride,
                    padding=op.padding)
    layer.set_weight_bias(qw, m.bias.detach())
    layer.scale, layer.zero_point = float(op.y.qp.scale), int(op.y.qp.zero_point)
    return layer


@pytest.fixture
def exact_ao_engine():
    """Run torch.ao's quantized kernels on QNNPACK, the one engine that is exact for full-range 8-bit inputs.

    On a CPU without VNNI (AVX2 only), the x86/fbgemm and oneDNN kernels multiply uint8 activations by int8
    weights with `vpmaddubsw`, which adds each pair of products into a *saturating int16*: 255·127·2 = 64,770
    does not fit, so the accumulator is silently clipped and outputs come out tens of steps off. That is why
    PyTorch's default observers for those engines use `reduce_range=True` (7-bit activations); our activations
    use all 8 bits, as Jacob et al. and gemmlowp do. With VNNI (`vpdpbusd`, int32 sums) the same engines are
    exact, so the oracle passed on some machines and failed on others. QNNPACK widens to int16 *after*
    subtracting zero points and sums in int32, so it is exact everywhere (its requantization may round a tie the
    other way: ≤ 1 step)."""
    if "qnnpack" not in torch.backends.quantized.supported_engines:
        pytest.skip("this torch build has no QNNPACK engine; fbgemm/x86 saturate int16 on CPUs without VNNI")
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"
    yield
    torch.backends.quantized.engine = before


def test_ao_engine_is_exact_on_full_range_uint8(exact_ao_engine):
    """The oracle's own precondition: worst-case 8-bit inputs (255) times int8 weights (±127), no saturation."""
    import torch.ao.nn.quantized as nnq

    x = torch.full((4, 64), 255, dtype=torch.uint8)
    w = torch.full((8, 64), 127, dtype=torch.int8)
    w[1::2] = -127
    layer = nnq.Linear(64, 8)
    layer.set_weight_bias(torch._make_per_tensor_quantized_tensor(w, 1.0, 0), torch.zeros(8))
    # exact acc = ±255·127·64 = ±2,072,640 → codes 128 ± 122 (inside 0..255); int16-saturated sums would give
    # ±32 · 32,767 → 128 ± 62
    layer.scale, layer.zero_point = 17000.0, 128
    got = layer(torch._make_per_tensor_quantized_tensor(x, 1.0, 0)).int_repr().to(torch.int32)
    acc = x.to(torch.int32) @ w.to(torch.int32).T
    want = torch.round(acc.double() / 17000).to(torch.int32) + 128
    assert (got - want).abs().max() <= 1


@pytest.mark.parametrize("key", [(d, m) for d, m, _ in CASES])
def test_layers_match_torch_ao_quantized_oracle(converted, key, exact_ao_engine):
    ds, _, qm, prog = converted[key]
    children = dict(qm.named_children())
    q = prog.quantize_input(ds.x_test[:128])
    with torch.no_grad():
        for op in prog.ops:
            out = op(q)
            if isinstance(op, IntLayer):
                layer = _ao_layer(op, children[op.name])
                codes = (channels_first(q).to(torch.int32) + op.x.offset).to(torch.uint8)
                xq = torch._make_per_tensor_quantized_tensor(codes, float(op.x.qp.scale), int(op.x.qp.zero_point))
                yq = layer(xq)
                if op.relu:
                    yq = torch.relu(yq)
                want = yq.int_repr().to(torch.int32)
                assert (channels_first(out).to(torch.int32) + op.y.offset - want).abs().max() <= 1, op.name
            q = out


def test_clear_errors_name_the_layer(trained):
    ds, b = trained[("digits", "mlp")]
    weights_only = quantize_model(b.model, QuantConfig(target="weights"))
    with pytest.raises(ConversionError, match="Layer fc1: .*not\\s+calibrated"):
        to_integer(weights_only)
    acts_only = quantize_model(b.model, QuantConfig(target="activations"), ds.x_train[:256])
    with pytest.raises(ConversionError, match="Layer fc1: its weights are not quantized"):
        to_integer(acts_only)
    with pytest.raises(ConversionError, match="Layer fc1: a float Linear"):
        to_integer(b.model)
    qm = quantize_model(b.model, QuantConfig(), ds.x_train[:256])
    odd = nn.Sequential(*[m for _, m in qm.named_children()][:3], nn.Tanh())
    with pytest.raises(ConversionError, match="Layer 3: Tanh is not supported"):
        to_integer(odd)
    bad = copy.deepcopy(qm)
    qp = bad.fc2.output_qparams
    bad.fc2.output_qparams = type(qp)(qp.scale * 1e-9, qp.zero_point, qp.bits, qp.signed, qp.symmetric,
                                      qp.narrow_range, qp.axis)
    with pytest.raises(ConversionError, match="Layer fc2: the multiplier M .* needs a left shift"):
        to_integer(bad)
    wide = quantize_model(b.model, QuantConfig(weight_bits=16, act_bits=16), ds.x_train[:256])
    with pytest.raises(ConversionError, match="Layer fc\\d: accumulator overflow risk"):
        to_integer(wide)
    assert issubclass(ConversionError, ValueError)


def test_qat_model_converts(trained):
    """A quantization-aware-trained model (learned step sizes, LSQ) runs as integers just as well."""
    from compress_core.quant import quantization_aware_training

    ds, b = trained[("digits", "mlp")]
    qm, _ = quantization_aware_training(b.model, QuantConfig(weight_bits=4), ds, TrainConfig(epochs=1, lr=5e-4),
                                        lsq=True)
    prog = to_integer(qm)
    diff = (prog(ds.x_test).to(torch.int32) - fake_quant_codes(qm, prog, ds.x_test).to(torch.int32)).abs()
    assert diff.max() <= 1
    assert abs(integer_accuracy(prog, ds.x_test, ds.y_test) - evaluate(qm, ds.x_test, ds.y_test).accuracy) <= 0.002
