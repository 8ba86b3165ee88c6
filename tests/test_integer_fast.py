"""The integer program's fast path (batch-last codes, max-pools on the int32 accumulators, one-pass rescales,
per-thread scratch memory) against the readable op-by-op path that the walk-through records: the same codes
bit for bit on every model, quantization scheme and batch size; no float op; at batch 1 no more ops than op
by op (but for the transposes in and out); results that never share memory with the scratch, also when
threads run at once."""
import threading

import pytest
import torch
from torch import nn

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.integer import IntLayer, int_matmul, to_integer
from compress_core.integer.ops import Scratch
from compress_core.quant import QuantConfig, quantize, quantize_model
from compress_core.testing import reference_requantize, tflite_reference_codes
from compress_core.train import TrainConfig

from .test_integer import FloatWatcher

CASES = [("digits", "mlp", TrainConfig(epochs=6, lr=1e-3)), ("digits", "cnn", TrainConfig(epochs=6, lr=2e-3)),
         ("mnist1d", "cnn", TrainConfig(epochs=4, lr=2e-3))]
KEYS = [(d, m) for d, m, _ in CASES]
SCHEMES = {"8bit": QuantConfig(), "per-tensor": QuantConfig(per_channel=False),
           "asym": QuantConfig(weight_symmetric=False), "signed-acts": QuantConfig(act_symmetric=True),
           "4bit": QuantConfig(weight_bits=4, act_bits=4), "12bit-acts": QuantConfig(act_bits=12)}


@pytest.fixture(scope="module")
def trained():
    return {(d, m): (load_dataset(d), get_baseline(d, m, seed=0, train_config=cfg)) for d, m, cfg in CASES}


def _all_paths(prog, x):
    """Output codes of every route: the fast path from floats and from codes, op by op, op by op with steps."""
    q = prog.quantize_input(x)
    return {"call": prog(x), "fast": prog.forward_int(q), "ops": prog.forward_steps(q),
            "steps": prog.forward_steps(q, [])}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_fast_path_gives_the_codes_of_the_step_by_step_path(trained, key, scheme):
    ds, b = trained[key]
    qm = quantize_model(b.model, SCHEMES[scheme], ds.x_train[:512])
    for headroom in (False, True):
        prog = to_integer(qm, ds.input_shape, headroom=headroom)
        if scheme == "12bit-acts":  # codes wider than 8 bits: int16 storage, the int32 matmul fallback
            assert prog.input.dtype == torch.int16 and all(op.kernel == "int32 matmul" for op in prog.layers)
        for n in (len(ds.x_test), 64, 33, 5, 1):  # scratch memory from 32 examples on, none below
            got = _all_paths(prog, ds.x_test[:n])
            want = got.pop("steps")
            assert want.shape == (n, 10) and want.dtype == prog.output.dtype
            for route, codes in got.items():
                assert torch.equal(codes, want), (scheme, headroom, n, route)
    if scheme in ("signed-acts", "12bit-acts"):  # and TFLite's codes (tests/test_fidelity_integer.py: the others)
        prog, x = to_integer(qm), ds.x_test[:100]
        assert torch.equal(prog.codes(prog(x)).to(torch.int64), tflite_reference_codes(qm, x))


def test_empty_batch(trained):
    ds, b = trained[("digits", "cnn")]
    prog = to_integer(quantize_model(b.model, QuantConfig(), ds.x_train[:512]))
    assert prog(ds.x_test[:0]).shape == (0, 10)


@pytest.mark.parametrize("headroom", [False, True])
def test_every_rescale_route_equals_the_gemmlowp_primitive(trained, headroom):
    """``IntLayer.rescale`` (the fast path's route, channels last or as rows) and ``rescale_one_pass`` (signed
    rounding, for layers without a ReLU) equal MultiplyByQuantizedMultiplier + Z, clamped, bit for bit, on
    accumulators across each layer's whole range -- with ties of the rounding shift on both signs."""
    g = torch.Generator().manual_seed(1)
    negative_ties = one_pass = 0
    for key in KEYS:
        ds, b = trained[key]
        for cfg in (QuantConfig(), QuantConfig(per_channel=False)):
            prog = to_integer(quantize_model(b.model, cfg, ds.x_train[:256]), headroom=headroom)
            for op in prog.layers:
                assert op.fused == (op.relu and op.one_pass)
                one_pass += op.one_pass
                out = op.bias.numel()
                acc = torch.randint(-op.acc_bound, op.acc_bound + 1, (4096, out), generator=g, dtype=torch.int64)
                acc[:1024] = torch.randint(-3000, 3000, (1024, out), generator=g)
                acc[0], acc[1] = op.acc_bound, -op.acc_bound
                acc = acc.to(torch.int32)
                want = reference_requantize(op, acc).to(torch.int32)
                raw = acc - op.folded_bias
                assert torch.equal(op.rescale(raw).to(torch.int32), want), op.name
                assert torch.equal(op.rescale(raw.t().contiguous(), rows=True).t().to(torch.int32), want), op.name
                scratch = Scratch()
                for _ in range(2):  # the scratch path, twice (the second time from kept buffers)
                    got = op.rescale(raw.t().contiguous(), rows=True, take=scratch.take)
                    assert torch.equal(got.t().to(torch.int32), want), op.name
                if op.one_pass:
                    assert torch.equal(op.rescale_one_pass(raw).to(torch.int32), want), op.name
                # ties: high ≡ 2^(n−1) mod 2^n, where RoundingDivideByPOT's halves away from zero matter
                n = op._k.n.to(torch.int64)
                high = (acc.to(torch.int64) * op._k.M0L + (1 << 30)) >> 31
                tie = (n > 0) & (high % (1 << n.clamp(min=1)) == (1 << (n - 1).clamp(min=0)))
                negative_ties += int((tie & (high < 0)).sum())
    assert one_pass > 10
    assert headroom or negative_ties > 100  # (with headroom the high product steps by 2^L: ties are rare)


def test_one_pass_refuses_a_layer_whose_terms_could_overflow(trained):
    ds, b = trained[("digits", "mlp")]
    op = to_integer(quantize_model(b.model, QuantConfig(), ds.x_train[:256])).layer("fc3")
    wide = IntLayer(**{f: getattr(op, f) for f in ("name", "kind", "weight_t", "weight_codes", "w_zero", "bias",
                                                      "folded_bias", "M", "M0", "shift", "x", "y", "w_qp", "relu",
                                                      "acc_bound", "headroom")})
    assert not wide.one_pass and not wide.fused
    with pytest.raises(ValueError, match="too large for the one-pass"):
        wide.rescale_one_pass(torch.zeros(2, op.bias.numel(), dtype=torch.int32))
    acc = torch.randint(-op.acc_bound, op.acc_bound + 1, (256, op.bias.numel()), dtype=torch.int32)
    assert torch.equal(wide.rescale(acc - op.folded_bias), op.requantize(acc))  # stage by stage instead
    assert torch.equal(wide.rescale((acc - op.folded_bias).t().contiguous(), rows=True).t(), op.requantize(acc))


@pytest.mark.parametrize("key", KEYS)
def test_no_float_op_and_fewer_ops_on_the_fast_path(trained, key):
    ds, b = trained[key]
    prog = to_integer(quantize_model(b.model, QuantConfig(), ds.x_train[:512]))
    for n in (64, 1):
        q = prog.quantize_input(ds.x_test[:n])
        with FloatWatcher() as fast:
            prog.forward_int(q)
        with FloatWatcher() as ops:
            prog.forward_steps(q)
        floats = [(f, d) for f, d in fast.seen if d.is_floating_point or d.is_complex]
        assert not floats, floats[:5]
        assert any("_int_mm" in f for f, _ in fast.seen) or all(op.kernel == "int32 matmul" for op in prog.layers)
        if n == 1:  # the batch-1 cost is the number of ops: no more per layer than op by op (+ the transposes in
            # and out of the batch-last layout)
            assert len(fast.seen) <= len(ops.seen) + 4, (len(fast.seen), len(ops.seen))


def test_quantize_input_batch_last_equals_quantize_input(trained):
    ds, b = trained[("digits", "cnn")]
    prog = to_integer(quantize_model(b.model, QuantConfig(), ds.x_train[:512]), ds.input_shape)
    S = float(prog.input.qp.scale)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, *ds.input_shape, generator=g) * 3
    k = torch.randint(-400, 400, x.shape, generator=g).to(torch.float32)
    x[:100] = (k[:100] + 0.5) * S  # halves: round half to even
    x[100, 0, 0, :5] = torch.tensor([float("inf"), -float("inf"), 1e30, -1e30, -0.0])
    x[101] = 2.0 ** 25 * S  # beyond 2^24, where adding the zero point is no longer exact
    for xs in (x, x[:1], x.double()):
        want = prog.quantize_input(xs)
        assert torch.equal(want, (quantize(xs, prog.input.qp) - prog.input.offset).to(prog.input.dtype))
        assert torch.equal(prog.quantize_input_batch_last(xs), want.movedim(0, -1).contiguous())
    x[5, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        prog.quantize_input_batch_last(x)
    with pytest.raises(ValueError, match="NaN"):
        prog(x)


def test_results_never_share_the_scratch_and_threads_do_not_mix(trained):
    ds, b = trained[("mnist1d", "cnn")]
    prog = to_integer(quantize_model(b.model, QuantConfig(), ds.x_train[:512]))
    xs = [ds.x_test[i * 100:i * 100 + 100] for i in range(4)]
    want = [prog.forward_steps(prog.quantize_input(x)) for x in xs]
    first = prog(xs[0])
    prog(xs[1])  # the same batch size: the same scratch buffers
    assert torch.equal(first, want[0])
    errors = []

    def work(i):
        try:
            for _ in range(15):
                if not torch.equal(prog(xs[i]), want[i]):
                    errors.append(i)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_scratch_keeps_one_buffer_per_role():
    s = Scratch()
    a = s.take("t", (4, 8), torch.int64)
    assert s.take("t", (4, 8), torch.int64) is a
    small = s.take("t", (2, 3), torch.int64)  # smaller: a view of the same memory
    assert small.data_ptr() == a.data_ptr() and small.is_contiguous()
    big = s.take("t", (64, 64), torch.int64)
    assert big.shape == (64, 64) and len(s.bufs) == 1
    assert s.take("t", (4, 8), torch.int32).dtype == torch.int32 and len(s.bufs) == 2


def test_int_matmul_on_the_strides_int_mm_gets_wrong():
    """``torch._int_mm`` returns wrong sums on an overlapping view (a one-channel im2col can be one) and on a
    one-column matrix whose size-1 dimension has an odd stride (a one-channel 1×1 convolution's patches):
    ``int_matmul`` hands it row-major operands."""
    g = torch.Generator().manual_seed(1)
    a = torch.randint(-128, 128, (50, 1), generator=g, dtype=torch.int8).as_strided((50, 1), (1, 7))
    b = torch.randint(-128, 128, (1, 3), generator=g, dtype=torch.int8).as_strided((1, 3), (1, 1))
    assert a.is_contiguous() and b.is_contiguous()
    assert torch.equal(int_matmul(a, b), a.to(torch.int32) @ b.to(torch.int32))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-128, 128, (1, 44, 3), generator=g, dtype=torch.int8)
    cols = x.unfold(1, 5, 1).permute(0, 3, 1, 2).reshape(5, 40 * 3)  # rows overlap: stride 3, 120 wide
    assert cols.stride() == (3, 1)
    w = torch.randint(-128, 128, (16, 5), generator=g, dtype=torch.int8)
    assert torch.equal(int_matmul(w, cols), w.to(torch.int32) @ cols.to(torch.int32))
    out = torch.empty(16, 120, dtype=torch.int32)
    int_matmul(w, cols, out=out)
    assert torch.equal(out, w.to(torch.int32) @ cols.to(torch.int32))


ODD_MODELS = {
    # strided, padded convolutions, a 3×3 / stride-2 pool over odd sizes, a convolution with no pool after it
    "conv2d": lambda: nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
                                    nn.Conv2d(4, 6, 2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 5)),
    # a pool before any convolution, a 1×1 convolution, and a program that ends channels-last
    "pool-first": lambda: nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(1, 3, 1), nn.ReLU(), nn.Conv2d(3, 4, (2, 3))),
    "conv1d": lambda: nn.Sequential(nn.Conv1d(1, 5, 4, stride=3, padding=2), nn.ReLU(), nn.MaxPool1d(3),
                                    nn.Flatten(), nn.Linear(20, 7), nn.ReLU(), nn.Linear(7, 3)),
}


@pytest.mark.parametrize("name", list(ODD_MODELS))
def test_odd_shapes_and_layouts(name):
    torch.manual_seed(0)
    model = ODD_MODELS[name]().eval()
    x = torch.randn(70, 1, 40) if name == "conv1d" else torch.randn(70, 1, 9, 11)
    qm = quantize_model(model, QuantConfig(), x[:40])
    prog = to_integer(qm)
    want = tflite_reference_codes(qm, x)
    for n in (70, 3, 1):
        got = _all_paths(prog, x[:n])
        for route, codes in got.items():
            assert codes.shape == got["steps"].shape, route
            assert torch.equal(prog.codes(codes).to(torch.int64).reshape(n, -1),
                               want[:n].reshape(n, -1) if name != "pool-first" else
                               want[:n].movedim(1, -1).reshape(n, -1)), (route, n)
