"""The .clab file (compress_core.export.han_format) and its Huffman coder: round trips to the same logits, refusal of
damaged files, sizes that are file lengths, Han's relative indices with filler zeros, Huffman's optimality bound."""
import functools
import json
import re
import struct
import time
import tracemalloc
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


def _every_kind_model():
    """(model, mask, uniform grids): a codebook Conv2d and a 4-bit per-channel uniform Linear, with max-pooling."""
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
    return model, {"0.weight": (conv != 0).float(), "4.weight": (q != 0).float()}, {"4.weight": (scales, 4)}


def test_every_kind_of_layer_round_trips():
    """Conv2d and Linear, a codebook and a uniform per-channel grid, fixed-width and Huffman streams."""
    model, mask, grids = _every_kind_model()
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for use_huffman in (True, False):
        data = hf.save(model, mask, uniform=grids, bias_bits=0, huffman=use_huffman)
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


def test_settings_the_format_cannot_describe_are_refused_not_dropped():
    """A max-pool's padding once vanished on saving: the file loaded as a different network. Now it is refused,
    as are the other settings the layer list has no place for (docs/FORMAT.md, "Header")."""
    for layer, words in [(nn.MaxPool2d(2, 2, padding=1), "max-pooling with padding 0"),
                         (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
                         (nn.MaxPool1d(3, dilation=2), "dilation 1"),
                         (nn.MaxPool2d(2, return_indices=True), "return_indices"),
                         (nn.Conv2d(1, 2, (3, 5)), "only square"),
                         (nn.Conv2d(1, 2, 3, dilation=2), "only square|dilation"),
                         (nn.Conv2d(1, 2, 3, padding="same"), "whole-number"),
                         (nn.Flatten(0), "cannot be stored"),
                         (type("MyLinear", (nn.Linear,), {})(2, 2), "cannot be stored")]:  # a subclass may differ
        with pytest.raises(ValueError, match=words):
            hf.save(nn.Sequential(layer))
    net = hf.load(hf.save(nn.Sequential(nn.MaxPool2d(3, 2))))  # what it can describe comes back as it was
    assert (net[0].kernel_size, net[0].stride, net[0].padding, net[0].ceil_mode) == (3, 2, 0, False)


# ---- forged files: every count is checked before anything is allocated -----------------------------------
def _reframe(head: bytes, body: bytes) -> bytes:
    """A well-framed file around a JSON header and layer sections: length and CRC-32 as a forger would set them."""
    return _with_crc(struct.pack("<4sBII", b"CLAB", 1, 13 + len(head) + len(body) + 4, len(head)) + head + body)


def _patch(data: bytes, at: int, fmt: str, value) -> bytes:
    """``data`` with the field at ``at`` overwritten and the CRC-32 recomputed: only the format's rules can tell."""
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, at, value)
    return _with_crc(bytes(body))


def _fields(data: bytes) -> list[tuple[int, str]]:
    """(offset, struct format) of every count and code field in the file: the header length, and per layer kind,
    b, entries, K, each stream's coding, width or alphabet and byte length, and the bias scale."""
    head_len = struct.unpack_from("<I", data, 9)[0]
    out, at, contents = [(9, "<I")], 13 + head_len, hf.read(data)
    for p in contents.layers:
        out += [(at, "<B"), (at + 1, "<B"), (at + 2, "<I"), (at + 6, "<H")]
        index = at + 8 + p.values
        streams = [index, index + p.index]
        bias = index + p.index + p.codes
        if contents.header["bias_bits"] and p.bias:  # a scale and a stream (float32 biases have no field)
            out.append((bias, "<f"))
            streams.append(bias + 4)
        out += [(s + d, f) for s in streams for d, f in ((0, "<B"), (1, "<H"), (3, "<I"))]
        at = bias + p.bias
    return out


@functools.cache
def _every_kind_file() -> bytes:
    model, mask, grids = _every_kind_model()
    return hf.save(model, mask, uniform=grids)


@functools.cache
def _huffman_file(n: int = 300) -> bytes:
    """A 380-byte file whose index, code and bias streams are all Huffman-coded (skewed counts), in a layer of
    400,000 weights: the kind of file the forged 2^32 − 1 count was found in."""
    layer = nn.Linear(1000, 400)
    with torch.no_grad():
        v = torch.full((n,), 0.5)
        v[::50], v[1::47], v[2::43] = 0, 0.25, 0.75
        layer.weight.zero_()
        layer.weight.view(-1)[:n] = v
        layer.bias.zero_()
        layer.bias[:5] = 0.1
    return hf.save(nn.Sequential(layer))


def _load_bounded(data: bytes) -> tuple[nn.Sequential | ValueError, float, int]:
    """(the model or the ValueError, seconds, peak bytes allocated as tracemalloc sees them: Python and NumPy)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = hf.load(data)
    except ValueError as e:
        out = e
    finally:
        seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, seconds, peak


def test_a_huffman_count_of_2_32_minus_1_is_refused_before_allocating():
    """The 283-byte forged file of issue #24 took 35 s and ~22 GB before a MemoryError: ~8 bytes per declared
    symbol. Now the count is checked against the layer's weights and the stream's bits first."""
    data = _huffman_file()
    entries = next(at for at, f in _fields(data) if f == "<I" and at > 9)
    assert [p.index_coding for p in hf.read(data).layers] == ["Huffman"]
    for count, words in [(2 ** 32 - 1, "declares 4,294,967,295 entries"), (400_000, "cannot hold 400,000")]:
        out, seconds, peak = _load_bounded(_patch(data, entries, "<I", count))
        assert isinstance(out, ValueError) and re.search(words, str(out)) and "damaged" in str(out)
        assert seconds < 5 and peak < 50e6
    with pytest.raises(ValueError, match="cannot hold 4,294,967,295"):
        huffman.decode(b"\0" * 270, [1, 1], 2 ** 32 - 1)  # the decoder checks too, for any caller


def test_a_gigantic_layer_in_the_header_is_refused_before_any_module_is_built():
    data = _worked_example()
    head_len = struct.unpack_from("<I", data, 9)[0]
    header, body = json.loads(data[13:13 + head_len]), data[13 + head_len:-4]
    header["arch"][0][2:4] = [10 ** 9, 10 ** 9]  # Linear(10^9, 10^9): 4 exabytes of float32
    out, seconds, peak = _load_bounded(_reframe(json.dumps(header).encode(), body))
    assert isinstance(out, ValueError) and "invalid" in str(out) and "16,777,216 parameters" in str(out)
    assert seconds < 5 and peak < 50e6
    with pytest.raises(ValueError, match="parameters"):  # and a model that size is refused on saving
        hf.save(nn.Sequential(*[nn.Linear(1, 1) for _ in range(3)], nn.Linear(2 ** 14, 2 ** 14, device="meta")))


@pytest.mark.parametrize("head, words", [
    (b"[" * 100_000 + b"]" * 100_000, "nests lists and mappings 100,000 deep"),  # refused before json.loads recurses
    (b" " * (2 ** 20 + 1), "JSON header is 1,048,577 bytes, above the format's 1,048,576"),
    (json.dumps({"arch": [[str(i), "ReLU"] for i in range(1025)], "bias_bits": 0, "meta": {}}).encode(),
     "invalid: its architecture must be a list of at most 1,024 layers"),
    (b'{"arch": [], "bias_bits": false, "meta": {}}', "bias_bits 0 or 2-16"),  # false is no 0
])
def test_a_forged_json_header_is_refused_in_the_formats_words(head, words):
    out, seconds, peak = _load_bounded(_reframe(head, b""))
    assert isinstance(out, ValueError) and words in str(out), out
    assert seconds < 5 and peak < 50e6


@pytest.mark.parametrize("n", [40_000])
def test_load_allocates_at_most_200_bytes_per_file_byte_plus_the_parameters(n):
    """The module docstring's bound, on the two worst cases measured: long 1-bit Huffman streams of indices and
    codes, and a file that is almost only one 1-bit Huffman bias stream (decoded through Python lists)."""
    dense, biased = nn.Linear(1, n, bias=False), nn.Linear(1, n)
    with torch.no_grad():
        w = torch.full((n,), 0.5)
        w[::100], w[1::97], w[2::89] = 0, 0.25, 0.75
        dense.weight.copy_(w[:, None])
        biased.weight.zero_()
        biased.bias.copy_(w.abs().clamp(min=0.5))
    for model in (dense, biased):
        data = hf.save(nn.Sequential(model))
        out, _, peak = _load_bounded(data)
        params = sum(p.numel() for p in model.parameters())
        assert isinstance(out, nn.Sequential) and peak <= 200 * len(data) + 4 * params


_FORGED_JSON = [0, -1, 2, 2 ** 31, 10 ** 9, 10 ** 30, True, 1.5, "3", None, [3]]


@st.composite
def _forgeries(draw):
    """A valid small file with one thing forged and the frame (length, CRC-32) made right again."""
    data = draw(st.sampled_from([_every_kind_file(), _huffman_file()]))
    how = draw(st.sampled_from(["field", "byte", "cut", "insert", "json"]))
    payload = range(13, len(data) - 4)
    if how == "field":
        at, fmt = draw(st.sampled_from(_fields(data)))
        if fmt == "<f":
            return _patch(data, at, fmt, draw(st.sampled_from([0.0, -1.0, float("inf"), float("nan"), 1e38])))
        top = 2 ** (8 * struct.calcsize(fmt)) - 1
        edges = [v for v in (0, 1, 2, 3, 15, 16, 17, 2 ** 15, 2 ** 15 + 1, top - 1, top) if v <= top]
        value = draw(st.sampled_from(edges) | st.integers(0, top))
        return _patch(data, at, fmt, value)
    if how == "byte":
        return _patch(data, draw(st.sampled_from(payload)), "<B", draw(st.integers(0, 255)))
    head_len = struct.unpack_from("<I", data, 9)[0]
    head, body = data[13:13 + head_len], data[13 + head_len:-4]
    if how == "cut":
        at = draw(st.integers(0, len(body) - 1))
        return _reframe(head, body[:at] + body[at + draw(st.integers(1, 8)):])
    if how == "insert":
        at = draw(st.integers(0, len(body)))
        return _reframe(head, body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:])
    header = json.loads(head)
    entry = draw(st.sampled_from(header["arch"]))
    i = draw(st.integers(0, len(entry) - 1))
    names = ["", "a.b", "forward", "4", 3] if i == 0 else ["Sigmoid", "Linear"]
    entry[i] = draw(st.sampled_from(_FORGED_JSON + names))
    return _reframe(json.dumps(header).encode(), body)


@settings(max_examples=80, deadline=None)
@given(_forgeries())
def test_a_forged_file_loads_or_is_refused_with_a_value_error_within_the_bounds(forged):
    """Whatever is forged, ``load`` returns a network or raises ValueError -- never MemoryError, IndexError... --
    quickly and within the memory bound (these files are under 500 bytes and their models under 400,001
    parameters: 200 bytes a byte + 4 a parameter is under 2 MB; 50 MB leaves room for what tracemalloc adds)."""
    out, seconds, peak = _load_bounded(forged)
    assert isinstance(out, (nn.Sequential, ValueError))
    if isinstance(out, ValueError):
        assert re.search("damaged|cannot be read|invalid", str(out)), str(out)  # framed right: the rules refuse
    assert seconds < 5 and peak < 50e6


# ---- the rules of docs/FORMAT.md, each refused when broken ------------------------------------------------
# offsets in the worked example (docs/FORMAT.md's table): layer fields at 68, index stream 92 (data 99-100),
# code stream 101 (data 108), bias scale 109, bias stream 113 (data 120-121), CRC-32 from 122
@pytest.mark.parametrize("patches, words", [
    ([(93, "<H", 4)], "4 bits wide where the format says 3"),  # b = 3, its fixed stream 4 bits: once accepted
    ([(69, "<B", 4)], "3 bits wide where the format says 4"),  # the same disagreement from the other side
    ([(102, "<H", 3)], "code stream is 3 bits wide where the format says 2"),  # K = 4: ceil(log2 4) = 2
    ([(114, "<H", 9)], "bias stream is 9 bits wide where the format says 8"),
    ([(69, "<B", 0)], "0-bit indices"),
    ([(69, "<B", 16)], "16-bit indices"),
    ([(74, "<H", 0)], "invalid: layer 0 has a codebook of 0 values for 4"),  # K = 0 with entries: nothing to code
    ([(74, "<H", 2 ** 15 + 1)], "invalid: layer 0 has a codebook of 32,769"),
    ([(68, "<B", 2)], "unknown kind 2"),
    ([(92, "<B", 2)], "unknown coding 2"),
    ([(100, "<B", 0xC1)], "padding bits after the last symbol are not zero"),  # 12 bits used, 4 padding
    ([(120, "<B", 0xFF)], "code above 254"),  # q = 128: outside the symmetric 8-bit grid −127 … 127
    ([(92, "<B", 1), (93, "<H", 9)], "Huffman alphabet of 9 symbols (1 to 8 allowed)"),  # 3-bit gaps: 0 … 7
    ([(92, "<B", 1), (93, "<H", 0)], "Huffman alphabet of 0 symbols"),
    ([(70, "<I", 17)], "declares 17 entries for 16 weights"),
])
def test_each_rule_of_the_format_is_enforced(patches, words):
    data = _worked_example()
    for at, fmt, value in patches:
        data = _patch(data, at, fmt, value)
    out, _, _ = _load_bounded(data)
    assert isinstance(out, ValueError) and words in str(out), out


def _insert(data: bytes, at: int, extra: bytes, length_at: int | None = None) -> bytes:
    """``extra`` inserted at ``at`` (a stream's byte length at ``length_at`` grown to match), re-framed."""
    head_len = struct.unpack_from("<I", data, 9)[0]
    body = bytearray(data[13 + head_len:-4])
    if length_at is not None:
        struct.pack_into("<I", body, length_at - 13 - head_len, struct.unpack_from("<I", data, length_at)[0] + 1)
    return _reframe(data[13:13 + head_len], bytes(body[:at - 13 - head_len]) + extra + body[at - 13 - head_len:])


def test_spare_bytes_and_bits_are_refused_where_the_format_says_zero_padding():
    """Every stream is exactly its symbols plus zero padding of the last byte; nothing follows the last layer."""
    fixed, coded = _worked_example(), _huffman_file()
    part = hf.read(coded).layers[0]
    index = len(coded) - 4 - part.bias - part.codes - part.index  # the index stream: coding, A, length, table
    index_len = index + 3
    table = -(-struct.unpack_from("<H", coded, index + 1)[0] // 2)
    data_end = index + 7 + table + struct.unpack_from("<I", coded, index_len)[0]
    cases = [(_insert(fixed, 101, b"\0", 95), "holds 3 bytes, not 4 × 3 bits"),  # a spare byte, fixed stream
             (_insert(fixed, 122, b"\0"), "1 bytes follow the last layer"),
             (_insert(coded, data_end, b"\0", index_len), "bits follow the last"),  # a spare byte, Huffman
             (_patch(coded, data_end - 1, "<B", coded[data_end - 1] | 1), "bits follow the last"),  # padding
             (_patch(coded, index + 8, "<B", coded[index + 8] | 1), "padding bits")]  # A = 3: the 4th nibble
    for data, words in cases:
        out, _, _ = _load_bounded(data)
        assert isinstance(out, ValueError) and words in str(out) and "damaged" in str(out), (words, out)


@pytest.mark.parametrize("entry, words", [
    (["1", "Sigmoid"], "unknown layer type 'Sigmoid'"),
    (["forward", "ReLU"], "reserved layer name"),  # nn.Module would refuse it only while building
    (["0", "ReLU"], "repeated"),
    (["1", "MaxPool2d", 2, 2, 1], "needs 2 arguments (kernel, stride)"),  # no place for a padding
    (["1", "Linear", 2, 2, True], "bias = True, not a whole number from 0 to 1"),
])
def test_a_layer_list_that_breaks_the_header_rules_is_refused_in_the_formats_words(entry, words):
    data = _worked_example()
    head_len = struct.unpack_from("<I", data, 9)[0]
    header = json.loads(data[13:13 + head_len])
    header["arch"].append(entry)
    with pytest.raises(ValueError, match="The file is invalid: its architecture entry") as refused:
        hf.read(_reframe(json.dumps(header).encode(), data[13 + head_len:-4]))
    assert words in str(refused.value)


def test_an_all_zero_layer_has_k_0_and_its_zero_biases_a_scale_of_1():
    """docs/FORMAT.md: K = 0 only for a layer with no entries (codes then 1 bit wide, 0 bytes); biases that are
    all 0 have no max|b| to scale by, so the scale is stored as 1.0 and every q is 0."""
    model = nn.Sequential(nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
    data = hf.save(model)
    part = hf.read(data).layers[0]
    assert (part.entries, part.k, part.values, part.codes) == (0, 0, 0, 7)
    scale_at = len(data) - 4 - part.bias
    assert struct.unpack_from("<f", data, scale_at)[0] == 1.0
    net = hf.load(data)
    assert not net[0].weight.any() and not net[0].bias.any()


def test_a_codebook_holds_at_most_32768_values_the_fillers_0_included():
    """2^15 − 1 distinct values, one more far away: the gap needs a filler, and its 0.0 would be value 32,769."""
    layer = nn.Linear(1, 2 ** 15 + 40_000, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[: 2 ** 15 - 1, 0] = torch.arange(1, 2 ** 15, dtype=torch.float32)
        layer.weight[-1, 0] = -1.0
    with pytest.raises(ValueError, match="at most 32,768 values"):
        hf.save(nn.Sequential(layer))


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


def _worked_example() -> bytes:
    """docs/FORMAT.md's 126-byte file: fixed widths, so its table gives every field's offset."""
    layer = nn.Linear(8, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight.view(-1)[[1, 4, 15]] = torch.tensor([3.4, 0.9, 1.7])
        layer.bias.copy_(torch.tensor([0.5, -0.25]))
    return hf.save(nn.Sequential(layer), index_bits=3, huffman=False)


def test_the_worked_example_in_docs_format_is_what_save_writes(root):
    data = _worked_example()
    doc = (root / "docs" / "FORMAT.md").read_text()
    dump = doc.split("126 bytes.\n\n```\n")[1].split("```")[0]
    assert bytes.fromhex("".join(dump.split())) == data
    assert hf.load(data)[0].bias.tolist() == pytest.approx([0.5, -64 * 0.5 / 127])
