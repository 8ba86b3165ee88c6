"""Size accounting (hand-counted formats, PyTorch's own CSR tensors) and the latency helpers' behaviour."""
import warnings

import pytest
import torch

from compress_core.data import load_dataset
from compress_core.models import build_model
from compress_core.pruning import (
    Mask,
    apply_mask,
    bitmask_bytes,
    csr_bytes,
    latency_report,
    prune,
    semi_structured_benchmark,
    shrink,
    size_report,
    structured_bytes,
    time_call,
    time_calls,
    to_sparse_model,
    torch_csr_bytes,
    torch_csr_layout_bytes,
    uint_bytes,
)


@pytest.fixture(scope="module")
def mlp():
    return build_model("mlp", load_dataset("digits"), seed=0)


def test_format_byte_counts_by_hand():
    m = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]])  # 3 rows × 4 cols, 5 kept
    # CSR: 5 values × 4 B + 5 column indices × 1 B (cols < 256) + 4 row pointers × 1 B
    assert csr_bytes(m) == 5 * 4 + 5 + 4
    assert bitmask_bytes(m) == 5 * 4 + 2  # 12 bits round up to 2 bytes
    assert uint_bytes(255) == 1 and uint_bytes(256) == 2 and uint_bytes(70000) == 4
    w = torch.randn(3, 4) * m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        c = w.to_sparse_csr()
    assert torch_csr_bytes(w) == c.values().nbytes + c.crow_indices().nbytes + c.col_indices().nbytes


def test_size_report(mlp):
    dense = sum(p.numel() for p in mlp.parameters()) * 4
    biases = sum(p.numel() for n, p in mlp.named_parameters() if n.endswith("bias")) * 4
    mask = prune(mlp, 0.9)
    rows = {r["format"]: r for r in size_report(mlp, mask)}
    assert rows["dense float32"]["bytes"] == dense == rows["masked dense"]["bytes"]
    kept = mask.kept()
    # fc1 has 64 columns, fc2 300 (2-byte index), fc3 100; values 4 B each
    idx = mask.kept("fc1") * 1 + mask.kept("fc2") * 2 + mask.kept("fc3") * 1
    # row pointers: fc1 (1920 kept) and fc2 (3000) need 2 bytes, fc3 (100 kept) 1 byte
    ptr = 301 * 2 + 101 * 2 + 11 * 1
    assert rows["CSR (values + indices)"]["bytes"] == biases + kept * 4 + idx + ptr
    assert rows["bitmask (values + 1 bit/weight)"]["bytes"] == biases + kept * 4 + sum(
        -(-mask.total(n) // 8) for n in ("fc1", "fc2", "fc3"))
    assert rows["CSR (values + indices)"]["vs_dense"] < 0.2
    # dense masks: the sparse formats cost MORE than dense (indices are not free)
    full = {r["format"]: r for r in size_report(mlp, Mask.ones(mlp))}
    assert full["CSR (values + indices)"]["bytes"] > dense
    neurons = {r["format"]: r for r in size_report(mlp, prune(mlp, 0.5, granularity="neuron"))}
    assert neurons["structured (smaller dense model)"]["bytes"] == 4 * (64 * 150 + 150 + 150 * 50 + 50 + 50 * 10 + 10)
    assert "structured (smaller dense model)" not in {r["format"] for r in size_report(mlp, prune(mlp, 1.0))}


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_sparse_model_equals_masked_model(mlp, layout):
    mask = prune(mlp, 0.8)
    x = load_dataset("digits").x_test[:50]
    with torch.no_grad():
        assert torch.allclose(to_sparse_model(mlp, mask, layout)(x), apply_mask(mlp, mask)(x), atol=1e-5)


def test_latency_helpers(mlp):
    calls = []
    t = time_call(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and 0 <= t["min_ms"] <= t["median_ms"] <= t["p95_ms"]
    order = []
    both = time_calls({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] + ["a", "b"] * 3  # warm-up, then interleaved rounds
    assert set(both) == {"a", "b"} and all(v["repeats"] == 3 and v["min_ms"] <= v["median_ms"] for v in both.values())
    rows = latency_report(mlp, prune(mlp, 0.5, granularity="neuron"), (1, 8, 8), batch=64, repeats=3)
    assert [r["variant"] for r in rows] == ["dense", "masked dense", "sparse CSR", "sparse COO", "structured (shrunk)"]
    assert all(r["median_ms"] > 0 for r in rows) and rows[0]["vs_dense"] == 1.0
    cut = latency_report(mlp, prune(mlp, 1.0, granularity="neuron"), (1, 8, 8), batch=8, repeats=2)
    assert cut[-1]["median_ms"] is None and "no neuron" in cut[-1]["note"]
    info = semi_structured_benchmark()
    assert info["available"] == (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8) \
        or "unavailable" in info.get("reason", "")


@pytest.mark.parametrize("model_name,dataset", [("mlp", "digits"), ("cnn", "digits"), ("cnn", "mnist1d")])
def test_counted_sizes_equal_real_objects(model_name, dataset):
    model = build_model(model_name, load_dataset(dataset), seed=0)
    for mask in (prune(model, 0.6), prune(model, 0.5, granularity="neuron"), prune(model, 0.3, granularity="neuron")):
        small = shrink(model, mask)
        assert structured_bytes(model, mask) == 4 * sum(p.numel() for p in small.parameters())
        for k, m in mask.items():
            if k.endswith(".weight"):
                w = dict(model.named_parameters())[k].detach() * m
                assert torch_csr_layout_bytes(m) == torch_csr_bytes(w)


def test_structured_row_can_compare_another_mask(mlp):
    weights, neurons = prune(mlp, 0.5), prune(mlp, 0.5, granularity="neuron")
    rows = size_report(mlp, weights, structured_mask=neurons, structured_label=" (neurons)")
    row = rows[-1]
    assert row["format"] == "structured (smaller dense model) (neurons)" and not row["same_mask"]
    assert row["bytes"] == structured_bytes(mlp, neurons)
    assert all(r["same_mask"] for r in rows[:-1])
    lat = latency_report(mlp, weights, (1, 8, 8), batch=16, repeats=2, structured_mask=neurons, structured_label=" (n)")
    assert lat[-1]["variant"] == "structured (shrunk) (n)" and lat[-1]["median_ms"] > 0


def test_latency_rows_carry_the_accuracy_of_the_model_timed():
    """Issue 10: the latency chart showed structured pruning's speed without the accuracy it costs."""
    from compress_core.baselines import get_baseline
    from compress_core.data import load_dataset
    from compress_core.pruning import apply_mask, latency_report, prune, shrink
    from compress_core.train import evaluate

    ds = load_dataset("moons")
    model = get_baseline("moons", "tiny").model
    mask = prune(model, 0.5)
    neurons = prune(model, 0.5, granularity="neuron")
    rows = latency_report(model, mask, ds.input_shape, batch=64, repeats=3, structured_mask=neurons, dataset=ds)
    acc = {r["variant"]: r["test_acc"] for r in rows}
    assert acc["dense"] == pytest.approx(evaluate(model, ds.x_test, ds.y_test).accuracy)
    masked = evaluate(apply_mask(model, mask), ds.x_test, ds.y_test).accuracy
    assert acc["masked dense"] == pytest.approx(masked) and acc["sparse CSR"] == pytest.approx(masked, abs=1e-6)
    small = next(v for v in acc if v.startswith("structured"))
    assert acc[small] == pytest.approx(evaluate(shrink(model, neurons), ds.x_test, ds.y_test).accuracy)
    assert all("test_acc" not in r for r in latency_report(model, mask, ds.input_shape, batch=8, repeats=1))
