"""The .clab file (compress_core.export.han_format) and its Huffman coder: round trips to the same logits, refusal of
damaged files, sizes that are file lengths, Han's relative indices with filler zeros, Huffman's optimality bound."""
import json
import struct
import zlib
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compress_core.deep_compression import PipelineConfig, run_pipeline
from compress_core.export import han_format as hf
from compress_core.export import huffman

FAST = PipelineConfig(sparsity=0.9, rounds=1, epochs=1, bits=4, centroid_epochs=1)


@pytest.fixture(scope="module")
def result(digits_mlp):
    return run_pipeline(*digits_mlp, FAST)


def _shared_model(res, baseline):
    """The compressed network in memory (k-means shared weights, float32 biases), before the file stage."""
    model = baseline.model
    state = dict(res.final_state)
    for name, p in baseline.final_state.items():
        if name.endswith(".bias"):
            state[name] = p.clone()  # the shared stage keeps float32 biases (the file stage quantizes them)
    model.load_state_dict(state)
    return model.eval()


# ---- round trips -----------------------------------------------------------------------------------------
def test_pipeline_file_loads_to_the_same_logits(result, digits_mlp):
    b, ds = digits_mlp
    net = hf.load(result.file)
    ref = b.model
    ref.load_state_dict(result.final_state)  # the compressed model the pipeline measured (quantized biases)
    with torch.no_grad():
        assert torch.equal(net(ds.x_test), ref.eval()(ds.x_test))
    assert result.stages[-1]["bytes"] == len(result.file)
    assert sum(p["bytes"] for p in hf.parts(result.file)) == len(result.file)


def test_float_biases_round_trip_exactly_and_8_bit_biases_change_no_prediction(result, digits_mlp):
    b, ds = digits_mlp
    model = _shared_model(result, b)
    exact = hf.save(model, result.mask, bias_bits=0)
    eight = hf.save(model, result.mask)
    with torch.no_grad():
        logits = model(ds.x_test)
        assert torch.equal(hf.load(exact)(ds.x_test), logits)  # lossless: codebooks and biases are float32
        approx = hf.load(eight)(ds.x_test)
    assert torch.equal(approx.argmax(1), logits.argmax(1))
    assert (approx - logits).abs().max() < 0.05
    # 410 biases in 1 byte instead of 4, less a float32 scale and a 7-byte stream header for each of 3 layers
    assert len(exact) - len(eight) >= 3 * 410 - 3 * (4 + 7)
    assert hf.file_size(model, result.mask) == len(eight)


def test_every_kind_of_layer_round_trips():
    """Conv2d and Linear, a codebook and a uniform per-channel grid, fixed-width and Huffman streams."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 10))
    book = torch.tensor([-0.5, -0.1, 0.2, 0.7])
    with torch.no_grad():
        conv, fc = model[0].weight, model[4].weight
        conv.copy_(book[torch.randint(0, 4, conv.shape, generator=g)] * (torch.rand(conv.shape, generator=g) > 0.5))
        scales = torch.rand(10, generator=g) * 0.1 + 0.01
        q = torch.randint(-8, 8, fc.shape, generator=g) * (torch.rand(fc.shape, generator=g) > 0.8)
        fc.copy_(q * scales[:, None])
    mask = {"0.weight": (conv != 0).float(), "4.weight": (q != 0).float()}
    x = torch.randn(5, 1, 8, 8, generator=g)
    for use_huffman in (True, False):
        data = hf.save(model, mask, uniform={"4.weight": (scales, 4)}, bias_bits=0, huffman=use_huffman)
        net = hf.load(data)
        with torch.no_grad():
            assert torch.equal(net(x), model(x))
        assert [type(m) for m in net] == [type(m) for m in model]
        kinds = {p.layer: p.kind for p in hf.read(data).layers}
        assert kinds == {"0": "codebook", "4": "uniform"}


def test_load_leaves_the_global_random_state_alone(result):
    state = torch.random.get_rng_state()
    hf.load(result.file)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_header_is_json_with_the_layer_list(result):
    magic, version, total, head_len = struct.unpack_from("<4sBII", result.file)
    assert (magic, version, total) == (b"CLAB", 1, len(result.file))
    header = json.loads(result.file[13:13 + head_len])
    assert header["arch"][1] == ["fc1", "Linear", 64, 300, 1] and header["bias_bits"] == 8
    assert header["meta"] == {"dataset": "digits", "model": "mlp", "input": [1, 8, 8]}


# ---- refusals --------------------------------------------------------------------------------------------
def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:40] + bytes([d[40] ^ 0x10]) + d[41:], "checksum mismatch"),  # one flipped bit in the header
    (lambda d: d[:-400] + bytes([d[-400] ^ 0xFF]) + d[-399:], "checksum mismatch"),  # a flipped byte in a layer
    (lambda d: d[:-1], "truncated"),
    (lambda d: d[: len(d) // 2], "truncated"),
    (lambda d: d[:10], "shorter than the fixed"),
    (lambda d: b"", "shorter than the fixed"),
    (lambda d: d + b"\0", "unexpected bytes"),
    (lambda d: b"PK\x03\x04" + d[4:], "magic number"),
    (lambda d: d[:4] + bytes([2]) + d[5:], "version 2"),
])
def test_damaged_files_are_refused_with_a_clear_message(result, damage, message):
    with pytest.raises(ValueError, match=message):
        hf.load(damage(result.file))


def test_a_consistent_file_with_a_bad_layer_is_refused_without_crashing(result):
    """A well-framed file (right length and checksum) whose header names a layer the payload does not hold."""
    data = result.file
    _, _, _, head_len = struct.unpack_from("<4sBII", data)
    header = json.loads(data[13:13 + head_len])
    header["arch"][1][3] = 600  # fc1 with 600 outputs: its weights and fc2's no longer match the payload
    head = json.dumps(header, separators=(",", ":")).encode()
    body = data[13 + head_len:-4]
    total = 13 + len(head) + len(body) + 4
    forged = _with_crc(struct.pack("<4sBII", b"CLAB", 1, total, len(head)) + head + body)
    with pytest.raises(ValueError, match="damaged|invalid|cannot"):
        hf.load(forged)


def test_unstorable_models_are_refused():
    with pytest.raises(ValueError, match="distinct weight values"):
        hf.save(nn.Sequential(nn.Linear(200, 200)))  # 40,000 float values: not shared
    with pytest.raises(ValueError, match="cannot be stored"):
        hf.save(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()))
    with pytest.raises(ValueError, match="bias_bits"):
        hf.save(nn.Sequential(nn.Linear(2, 2)), bias_bits=1)


# ---- Han's relative indices (2016, section 2, figure 2) --------------------------------------------------
def test_relative_indices_insert_a_filler_zero_when_a_gap_overflows():
    # 3-bit indices hold gaps up to 7: a gap of 8 needs one filler (at +7), then the remaining gap of 1
    gaps, filler = hf.relative_entries(np.array([0, 8]), 3)
    assert gaps.tolist() == [0, 7, 1] and filler.tolist() == [False, True, False]
    # figure 2's row: survivors at 1, 4 and 15 of 16 -> gaps 1, 3, then 11 > 7: a filler at 4 + 7 = 11, then 4
    gaps, filler = hf.relative_entries(np.array([1, 4, 15]), 3)
    assert gaps.tolist() == [1, 3, 7, 4] and filler.tolist() == [False, False, True, False]
    assert np.cumsum(gaps).tolist() == [1, 4, 11, 15]  # the entries' positions; the filler stores 0 at 11
    gaps, filler = hf.relative_entries(np.array([15]), 3)  # 15 = 7 + 7 + 1: two fillers
    assert gaps.tolist() == [7, 7, 1] and filler.sum() == 2
    gaps, filler = hf.relative_entries(np.array([1, 4, 15]), 4)  # 4 bits hold 11: no filler
    assert gaps.tolist() == [1, 3, 11] and not filler.any()


def test_a_row_stored_with_3_bit_indices_keeps_its_zeros():
    layer = nn.Linear(16, 1, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, [1, 4, 15]] = torch.tensor([3.4, 0.9, 1.7])
    data = hf.save(nn.Sequential(layer), index_bits=3, huffman=False)
    part = hf.read(data).layers[0]
    assert (part.index_bits, part.entries, part.fillers, part.zero_entries) == (3, 4, 1, 1)  # 3 survivors + 1 filler
    assert part.k == 4 and part.values == 16  # the codebook 0.9, 1.7, 3.4 and the appended 0.0 for the filler
    assert part.index == 7 + 2 and part.codes == 7 + 1  # 4 entries × 3 bits → 2 bytes; × 2-bit codes → 1 byte
    assert torch.equal(hf.load(data)[0].weight, layer.weight)


def test_automatic_index_width_is_never_worse_than_any_fixed_width(result, digits_mlp):
    model = _shared_model(result, digits_mlp[0])
    auto = len(hf.save(model, result.mask))
    fixed = {b: len(hf.save(model, result.mask, index_bits=b)) for b in range(1, 16)}
    assert auto <= min(fixed.values())
    assert len(hf.save(model, result.mask, huffman=False)) >= auto


# ---- Huffman coding (Huffman 1952) -----------------------------------------------------------------------
def test_huffman_textbook_example():
    # CLRS 16.3: frequencies a..f = 45, 13, 12, 16, 9, 5 -> an optimal code costs 224 bits per 100 characters
    counts = [45, 13, 12, 16, 9, 5]
    lengths = huffman.code_lengths(counts)
    assert huffman.encoded_bits(counts, lengths) == 224 and lengths[0] == 1
    codes = huffman.canonical_codes(lengths)
    words = {format(c, f"0{n}b") for c, n in zip(codes, lengths)}
    assert not any(a != b and b.startswith(a) for a in words for b in words)  # prefix-free


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=40).filter(lambda c: sum(c) > 0), st.randoms())
def test_huffman_round_trip_and_entropy_bound(counts, rnd):
    symbols = [s for s, c in enumerate(counts) for _ in range(c)]
    rnd.shuffle(symbols)
    lengths = huffman.code_lengths(counts)
    assert huffman.decode(huffman.encode(symbols, lengths), lengths, len(symbols)).tolist() == symbols
    assert huffman.kraft_sum(lengths) <= 1.0
    # unlimited code lengths: Huffman's optimal code, within one bit per symbol of the entropy
    optimal = huffman.code_lengths(counts, max_length=64)
    n, h = len(symbols), huffman.entropy_bits(counts)
    used = sum(1 for c in counts if c)
    assert h - 1e-9 <= huffman.encoded_bits(counts, optimal) < h + n or used == 1
    if used > 1:
        assert huffman.kraft_sum(optimal) == 1.0  # a full binary tree
    if max(optimal) <= huffman.MAX_LENGTH:  # the 15-bit cap did not bind: the stored code is the optimal one
        assert huffman.encoded_bits(counts, lengths) == huffman.encoded_bits(counts, optimal)


def test_huffman_beats_or_ties_a_fixed_code_and_caps_the_length():
    counts = [2 ** i for i in range(20)]  # so skewed that the optimal code is 19 bits deep
    lengths = huffman.code_lengths(counts)
    assert max(lengths) == huffman.MAX_LENGTH and huffman.kraft_sum(lengths) <= 1.0
    sym = np.random.default_rng(0).choice(20, 500, p=np.array(counts) / sum(counts))
    got = huffman.decode(huffman.encode(sym, lengths), lengths, len(sym))
    assert got.tolist() == sym.tolist()
    freq = Counter(sym.tolist())
    c = [freq.get(s, 0) for s in range(20)]
    assert huffman.encoded_bits(c, huffman.code_lengths(c)) <= 5 * len(sym)  # 20 symbols: 5 bits fixed


def test_huffman_refuses_bits_that_are_no_code():
    with pytest.raises(ValueError, match="cannot hold"):
        huffman.decode(b"", [1, 1], 1)  # checked before decoding: 0 bits cannot hold a 1-bit code
    with pytest.raises(ValueError, match="ends after 4 of 5"):
        huffman.decode(b"\xff", [1, 2, 2], 5)  # codes 0, 10, 11: eight 1-bits are four symbols, not five
    with pytest.raises(ValueError, match="prefix code"):
        huffman.canonical_codes([1, 1, 1])


def test_the_worked_example_in_docs_format_is_what_save_writes(root):
    layer = nn.Linear(8, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight.view(-1)[[1, 4, 15]] = torch.tensor([3.4, 0.9, 1.7])
        layer.bias.copy_(torch.tensor([0.5, -0.25]))
    data = hf.save(nn.Sequential(layer), index_bits=3, huffman=False)
    doc = (root / "docs" / "FORMAT.md").read_text()
    dump = doc.split("126 bytes.\n\n```\n")[1].split("```")[0]
    assert bytes.fromhex("".join(dump.split())) == data
    assert hf.load(data)[0].bias.tolist() == pytest.approx([0.5, -64 * 0.5 / 127])
