"""The ``.clab`` compressed-model file: relative indices with filler zeros, shared-weight codes, Huffman coding.

The storage of Han, Mao & Dally 2016 ("Deep Compression", section 2 and figure 2; section 4 for Huffman coding),
written as plain bytes (``struct``, little-endian) with a JSON header, a magic number, a version and a CRC-32.
The byte layout, with a worked example, is in docs/FORMAT.md. In short, per weighted layer:

- **Relative indices.** The surviving weights are taken in flattened (row-major) order; each stores the gap to the
  previous one (the first: its own position) in an index of b bits. A gap above 2^b − 1 cannot be written, so a
  *filler* entry, a stored zero, is put 2^b − 1 positions on and the rest of the gap counted from there (3-bit
  indices: a gap of 8 = filler at +7, then 1). b is chosen per layer to make that layer's section smallest.
- **Codes.** Each entry stores a code: an index into the layer's codebook (k-means shared values, float32; a
  filler uses the codebook's 0.0, appended when the layer has none), or, for uniform quantization, a signed
  integer q (offset by 2^(bits−1)) with one float32 scale per output channel: w = q·scale.
- **Biases**: signed ``bias_bits``-bit integers with one float32 scale per layer (symmetric, b = q·scale), or
  float32 when ``bias_bits`` = 0.
- **Huffman coding** (optional, Huffman 1952; ``huffman.py``): each stream (indices, codes, biases) is written
  with a canonical Huffman code when that is smaller than the fixed-width one; the file stores the 4-bit code
  lengths, not a tree.
- The architecture is a JSON layer list (``clab_arch``), so ``load`` rebuilds the network without a data set.

No pickled code anywhere: ``load`` only ever reads numbers and JSON. A file that is truncated, corrupt (checksum),
of another kind (magic) or of an unknown version is refused with a ValueError that says which; so is one that passes
those checks yet breaks a rule of docs/FORMAT.md ("damaged", "cannot be read", "invalid").

**Bounds.** A file is read front to back and every count in it (header length, layers, shapes, parameters,
entries, codebook size, alphabet, byte lengths) is checked against the bytes left and the format's maxima
(``MAX_HEADER``, ``clab_arch.MAX_LAYERS``, ``clab_arch.MAX_PARAMETERS``, ``MAX_CODEBOOK``) *before* anything of
that size is allocated, so a forged count is refused in milliseconds. ``load`` allocates at most about 200 bytes
per byte of the file (160 measured, for a file that is one 1-bit Huffman stream) plus the model's own parameters
(4 bytes each, once: the network is built on the meta device and handed the decoded tensors), and takes time
linear in the file size (Huffman streams are decoded bit by bit in Python, about 0.2 µs a bit) plus the
parameters'. tests/test_han_format.py checks the memory bound.

Usage::

    data = save(model, mask)                 # bytes; model: weights shared (≤ 2^15 values per layer) or uniform
    len(data)                                # the file size, the only size the app shows for this format
    net = load(data)                         # an nn.Sequential: the saved weights exactly, biases on their grid
    parts(data)                              # where the bytes go, per layer and part (sums to len(data))
"""
from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..config import read_json
from . import huffman
from .clab_arch import EXTENSION, Layer, arch_spec, build_arch, check_spec

MAGIC = b"CLAB"
VERSION = 1
MIME = "application/octet-stream"
HEADER_DEPTH = 8  # nesting of the JSON header: the layer list is 2 deep; a meta dict of a few levels fits
PRELUDE = struct.Struct("<4sBII")  # magic, version, file length (bytes, checksum included), header length
CHECKSUM = struct.Struct("<I")  # CRC-32 (zlib.crc32) of every byte before it
LAYER = struct.Struct("<BBIH")  # kind, index bits b, entries (survivors + fillers), K (codebook) / bits (uniform)
STREAM = struct.Struct("<BHI")  # coding (0 fixed, 1 Huffman), width (fixed) / alphabet (Huffman), data bytes
F32 = struct.Struct("<f")
KIND_CODEBOOK, KIND_UNIFORM = 0, 1
FIXED, HUFFMAN = 0, 1
MAX_INDEX_BITS = 15  # a gap symbol fits a 15-bit Huffman alphabet
MAX_CODEBOOK = 2 ** 15  # values in one codebook, a filler's appended 0.0 included: codes of at most 15 bits
MAX_HEADER = 2 ** 20  # bytes of JSON header: the layer list and meta, far below this for any network here
DEFAULT_BIAS_BITS = 8
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


# ---- streams ---------------------------------------------------------------------------------------------
def _stream(symbols: np.ndarray, width: int, use_huffman: bool) -> bytes:
    """One stream of symbols: fixed ``width`` bits each, or canonical Huffman when that is smaller."""
    fixed = huffman.pack_fixed(symbols, width)
    best = STREAM.pack(FIXED, width, len(fixed)) + fixed
    counts = np.bincount(symbols) if symbols.size else np.zeros(0, np.int64)
    # a Huffman table's alphabet must fit its u16 field, and 15-bit codes hold at most 2^15 symbols
    if use_huffman and 0 < counts.size < 2 ** 16 and np.count_nonzero(counts) <= 2 ** huffman.MAX_LENGTH:
        lengths = huffman.code_lengths(counts)
        data = huffman.encode(symbols, lengths)
        coded = STREAM.pack(HUFFMAN, len(lengths), len(data)) + huffman.pack_lengths(lengths) + data
        if len(coded) < len(best):
            best = coded
    return best


def _width(alphabet: int) -> int:
    """Bits of a fixed-width code for symbols 0..alphabet−1 (at least 1)."""
    return max(1, math.ceil(math.log2(max(alphabet, 2))))


class _Reader:
    """Reads the file front to back; every read past the end is a ValueError saying what was being read, raised
    before the bytes are sliced, and every stream's symbol count is checked against its bytes before decoding."""

    def __init__(self, data: bytes, start: int, end: int):
        self.data, self.pos, self.end = data, start, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ValueError(f"The file is damaged: {what} runs past the end of the payload.")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, s: struct.Struct, what: str) -> tuple:
        return s.unpack(self.take(s.size, what))

    def floats(self, n: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(4 * n, what), dtype="<f4").astype(np.float32)

    def stream(self, count: int, what: str, width: int, alphabet: int) -> tuple[np.ndarray, int]:
        """(``count`` symbols, the stream's size in bytes). ``width``: the fixed width the format prescribes for
        this stream; ``alphabet``: how many symbols it may use (a Huffman table's A is at most that)."""
        start = self.pos
        coding, param, nbytes = self.unpack(STREAM, what)
        if coding == FIXED and param != width:
            raise ValueError(f"The file is damaged: {what} is {param} bits wide where the format says {width}.")
        if coding == FIXED and nbytes != -(-count * width // 8):
            raise ValueError(f"The file is damaged: {what} holds {nbytes:,} bytes, not {count:,} × {width} bits.")
        if coding not in (FIXED, HUFFMAN):
            raise ValueError(f"The file is damaged: {what} has unknown coding {coding}.")
        if coding == HUFFMAN and not 1 <= param <= alphabet:
            raise ValueError(f"The file is damaged: {what} has a Huffman alphabet of {param:,} symbols (1 to "
                             f"{alphabet:,} allowed).")
        try:
            if coding == FIXED:
                return huffman.unpack_fixed(self.take(nbytes, what), width, count), self.pos - start
            lengths = huffman.unpack_lengths(self.take(-(-param // 2), f"{what} (code lengths)"), param)
            return huffman.decode(self.take(nbytes, what), lengths, count), self.pos - start
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith("The file is") else f"The file is damaged: {what}: {msg}") from None


# ---- relative indices (Han 2016, figure 2) ---------------------------------------------------------------
def relative_entries(positions: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Han's relative indices: (gap of each entry, True where the entry is a filler), in file order.

    positions: increasing flat positions of the survivors. The first gap is counted from position 0, each next
    one from the previous entry. A gap above 2^b − 1 is split by filler entries 2^b − 1 apart.

    Example (b = 3, survivors at 1, 4 and 15 -- gap 11 > 7)::

        relative_entries(np.array([1, 4, 15]), 3)  # gaps [1, 3, 7, 4], fillers [F, F, T, F]
    """
    p = np.asarray(positions, dtype=np.int64)
    if p.size and (p[0] < 0 or (np.diff(p) <= 0).any()):
        raise ValueError("Positions must be increasing and non-negative.")
    top = 2 ** index_bits - 1
    gaps = np.diff(p, prepend=0)
    fillers = np.maximum(gaps - 1, 0) // top  # fillers before each survivor
    n = int(p.size + fillers.sum())
    filler = np.zeros(n, dtype=bool)
    survivor_at = np.arange(p.size) + np.cumsum(fillers)  # each survivor's entry number
    filler[np.setdiff1d(np.arange(n), survivor_at)] = True
    out = np.full(n, top, dtype=np.int64)
    out[survivor_at] = gaps - fillers * top
    return out, filler


def _index_stream_options(positions: np.ndarray, fixed_bits: int | None) -> range:
    if fixed_bits is not None:
        return range(fixed_bits, fixed_bits + 1)
    biggest = int(np.diff(positions, prepend=0).max()) if positions.size else 1
    return range(1, min(MAX_INDEX_BITS, max(1, biggest.bit_length())) + 1)


# ---- one layer -------------------------------------------------------------------------------------------
def _quantize_bias(b: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Symmetric ``bits``-bit codes of a bias vector and their float32 scale: b ≈ q·scale, |q| ≤ 2^(bits−1) − 1."""
    qmax = 2 ** (bits - 1) - 1
    top = float(np.abs(b).max()) if b.size else 0.0
    scale = np.float32(top / qmax) if top > 0 else np.float32(1.0)
    q = np.clip(np.round(b / scale), -qmax, qmax).astype(np.int64)
    return q, float(scale)


def _layer_section(name: str, weight: torch.Tensor, keep: torch.Tensor, bias: torch.Tensor | None,
                   uniform: tuple | None, bias_bits: int, use_huffman: bool, index_bits: int | None) -> bytes:
    w = weight.detach().to("cpu", torch.float32).reshape(-1).numpy()
    positions = np.flatnonzero(keep.detach().to("cpu").reshape(-1).numpy() != 0)
    vals = w[positions]
    if uniform is not None:
        scales, bits = uniform
        scales = np.asarray(torch.as_tensor(scales).detach().to("cpu", torch.float32).reshape(-1), dtype=np.float32)
        rows = weight.shape[0]
        if scales.size != rows or not 1 <= bits <= 16:
            raise ValueError(f"Layer {name}: need one scale per output channel ({rows}) and 1-16 bits.")
        step = scales[positions // (w.size // rows)]
        q = np.round(vals / np.where(step == 0, 1, step)).astype(np.int64)  # a row of zeros may have scale 0
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if q.size and (q.min() < lo or q.max() > hi):
            raise ValueError(f"Layer {name}: weights fall outside the {bits}-bit grid of its scales.")
        codes, zero, kind, k_field, table = q - lo, -lo, KIND_UNIFORM, bits, scales
        width = bits
    else:
        book, codes = np.unique(vals, return_inverse=True)
        if book.size > MAX_CODEBOOK:
            raise ValueError(f"Layer {name} has {book.size:,} distinct weight values: share or quantize the weights "
                             f"first (a codebook holds at most {MAX_CODEBOOK:,}).")
        hit = np.flatnonzero(book == 0)
        zero = int(hit[0]) if hit.size else book.size  # a filler's code: the codebook's 0.0 (appended if absent)
        kind, table = KIND_CODEBOOK, book.astype(np.float32)
    best = None
    for b in _index_stream_options(positions, index_bits):
        gaps, filler = relative_entries(positions, b)
        entry_codes = np.full(gaps.size, zero, dtype=np.int64)
        entry_codes[~filler] = codes
        if kind == KIND_CODEBOOK:
            book_b = np.append(table, np.float32(0)) if zero == table.size and filler.any() else table
            if book_b.size > MAX_CODEBOOK:
                continue  # the filler's 0.0 would overflow the codebook: a wider index needs fewer fillers
            k_field, width = book_b.size, _width(book_b.size)
            values = book_b.astype("<f4").tobytes()
        else:
            values = table.astype("<f4").tobytes()
        section = (LAYER.pack(kind, b, gaps.size, k_field) + values + _stream(gaps, b, use_huffman)
                   + _stream(entry_codes, width, use_huffman))
        if best is None or len(section) < len(best):
            best = section
    if best is None:
        raise ValueError(f"Layer {name} has {MAX_CODEBOOK:,} distinct non-zero values and gaps that need a filler's "
                         f"0.0: a codebook holds at most {MAX_CODEBOOK:,} values.")
    if bias is not None:
        bv = bias.detach().to("cpu", torch.float32).reshape(-1).numpy()
        if bias_bits == 0:
            best += bv.astype("<f4").tobytes()
        else:
            q, scale = _quantize_bias(bv, bias_bits)
            best += F32.pack(scale) + _stream(q + 2 ** (bias_bits - 1) - 1, bias_bits, use_huffman)
    return best


# ---- the file --------------------------------------------------------------------------------------------
def save(model: nn.Module, mask: Mapping[str, torch.Tensor] | None = None, *,
         uniform: Mapping[str, tuple] | None = None, bias_bits: int = DEFAULT_BIAS_BITS, huffman: bool = True,
         index_bits: int | None = None, meta: Mapping | None = None) -> bytes:
    """The model as ``.clab`` bytes.

    Args:
        model: an ``nn.Sequential`` (``arch_spec``) whose weights are already shared or quantized.
        mask: {weight name: 0/1 tensor}, 1 = stored (a survivor); None = the nonzero weights.
        uniform: {weight name: (per-output-channel scales, bits)} for layers on a symmetric uniform grid
            (w = q·scale, q a signed ``bits``-bit integer); every other layer stores a codebook of its distinct
            surviving values (at most 2^15: k-means shared weights).
        bias_bits: biases as signed integers of this many bits (2-16) with one float32 scale per layer; 0 =
            float32. Lossy: ``load`` returns the quantized biases (the pipeline's file stage measures that model).
        huffman: Huffman-code each stream when that is smaller; False = fixed-width codes only.
        index_bits: the relative index width b of every layer; None = per layer, the b that stores it smallest.
        meta: extra JSON-ready facts for the header (model and data-set names...).
    """
    if not (bias_bits == 0 or 2 <= bias_bits <= 16):
        raise ValueError(f"bias_bits must be 0 (float32) or from 2 to 16 (got {bias_bits!r}).")
    if index_bits is not None and not 1 <= index_bits <= MAX_INDEX_BITS:
        raise ValueError(f"index_bits must be from 1 to {MAX_INDEX_BITS} (got {index_bits!r}).")
    header = {"arch": arch_spec(model), "bias_bits": bias_bits, "meta": dict(meta or {})}
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise ValueError(f"The JSON header would take {len(head):,} bytes; a {EXTENSION} file allows {MAX_HEADER:,} "
                         "(make meta smaller).")
    body = b""
    for name, m in model.named_children():
        if isinstance(m, _WEIGHTED):
            key = f"{name}.weight"
            keep = mask[key] if mask is not None and key in mask else (m.weight != 0)
            body += _layer_section(name, m.weight, keep, m.bias, (uniform or {}).get(key), bias_bits, huffman,
                                   index_bits)
    total = PRELUDE.size + len(head) + len(body) + CHECKSUM.size
    data = PRELUDE.pack(MAGIC, VERSION, total, len(head)) + head + body
    return data + CHECKSUM.pack(zlib.crc32(data))


@dataclass
class LayerPart:
    """What one layer's section holds, and its bytes by part (``parts``)."""

    layer: str
    kind: str  # "codebook" or "uniform"
    index_bits: int
    entries: int  # survivors + fillers
    fillers: int  # entries that store 0.0 at the longest gap, 2^b − 1: Han's filler zeros
    zero_entries: int  # entries that store 0.0: the fillers, and survivors whose value is exactly 0 (uniform q = 0)
    k: int  # codebook values (codebook) or code bits (uniform)
    header: int  # bytes: the fixed fields
    values: int  # the codebook or the per-channel scales
    index: int  # the relative-index stream
    codes: int  # the code stream
    bias: int
    index_coding: str = "fixed"
    code_coding: str = "fixed"

    @property
    def bytes(self) -> int:
        return self.header + self.values + self.index + self.codes + self.bias


@dataclass
class FileContents:
    """A parsed file: its header, the decoded tensors and where its bytes go (sums to ``size``)."""

    header: dict
    state: dict[str, torch.Tensor] = field(repr=False)
    layers: list[LayerPart]
    size: int
    prelude: int = PRELUDE.size
    checksum: int = CHECKSUM.size

    @property
    def header_bytes(self) -> int:
        return self.size - self.prelude - self.checksum - sum(p.bytes for p in self.layers)


def _check_envelope(data: bytes) -> tuple[int, int]:
    """Magic, version, length and checksum, in that order; (header start, header length)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"Expected the file's bytes, got {type(data).__name__}.")
    data = bytes(data)
    least = PRELUDE.size + CHECKSUM.size
    if len(data) < least:
        raise ValueError(f"Not a {EXTENSION} file: {len(data)} bytes is shorter than the fixed {least}-byte frame "
                         "(the file is empty or truncated).")
    magic, version, total, head_len = PRELUDE.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"Not a {EXTENSION} model file: it starts with {magic!r}, not the magic number {MAGIC!r}.")
    if version != VERSION:
        raise ValueError(f"Unknown {EXTENSION} format version {version}: this code reads version {VERSION}.")
    if len(data) < total:
        raise ValueError(f"The file is truncated: its header says {total:,} bytes, but only {len(data):,} are "
                         "here.")
    if len(data) > total:
        raise ValueError(f"The file has {len(data) - total:,} unexpected bytes after its end ({total:,} bytes).")
    stored, = CHECKSUM.unpack_from(data, total - CHECKSUM.size)
    computed = zlib.crc32(data[: total - CHECKSUM.size])
    if stored != computed:
        raise ValueError(f"The file is corrupt: checksum mismatch (CRC-32 stored {stored:#010x}, computed "
                         f"{computed:#010x}).")
    if PRELUDE.size + head_len > total - CHECKSUM.size:
        raise ValueError("The file is damaged: its JSON header runs past the end of the payload.")
    if head_len > MAX_HEADER:
        raise ValueError(f"The file is damaged: its JSON header is {head_len:,} bytes, above the format's "
                         f"{MAX_HEADER:,}.")
    return PRELUDE.size, head_len


def _header(data: bytes, start: int, head_len: int) -> tuple[dict, list]:
    """The JSON header and its checked layer list (``clab_arch.check_spec``: nothing is built)."""
    try:  # depth read off the raw text first (config.read_json): a forged nesting is refused without recursion
        header = read_json(data[start:start + head_len].decode(), "The file's JSON header", max_chars=head_len,
                           max_depth=HEADER_DEPTH)
        arch, bias_bits = header["arch"], header["bias_bits"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:  # ValueError: JSON, digits, depth
        raise ValueError(f"The file's JSON header cannot be read ({type(e).__name__}: {str(e)[:120]}).") from None
    if type(bias_bits) is not int or bias_bits not in (0, *range(2, 17)):
        raise ValueError("The file's JSON header cannot be read: it needs a layer list and bias_bits 0 or 2-16.")
    return header, check_spec(arch)


def _layer(r: _Reader, layer: Layer, bias_bits: int, state: dict) -> LayerPart:
    """Decode one weighted layer's section into ``state``; every count is checked before it is used."""
    name, shape, at = layer.name, layer.weight, r.pos
    numel = math.prod(shape)
    kind, b, entries, k = r.unpack(LAYER, f"layer {name}'s header")
    if kind not in (KIND_CODEBOOK, KIND_UNIFORM):
        raise ValueError(f"The file is damaged: layer {name} has unknown kind {kind}.")
    if not 1 <= b <= MAX_INDEX_BITS:
        raise ValueError(f"The file is damaged: layer {name} has {b}-bit indices (1 to {MAX_INDEX_BITS} allowed).")
    if entries > numel:  # positions strictly increase below numel, fillers included
        raise ValueError(f"The file is damaged: layer {name} declares {entries:,} entries for {numel:,} weights.")
    if kind == KIND_CODEBOOK and (k > MAX_CODEBOOK or k == 0 and entries):
        raise ValueError(f"The file is invalid: layer {name} has a codebook of {k:,} values for {entries:,} "
                         f"entries (1 to {MAX_CODEBOOK:,}; 0 only for a layer with no entries).")
    if kind == KIND_UNIFORM and not 1 <= k <= 16:
        raise ValueError(f"The file is invalid: layer {name} has {k}-bit uniform codes (1 to 16 allowed).")
    if kind == KIND_CODEBOOK:
        table, width, alphabet = r.floats(k, f"layer {name}'s codebook"), _width(k), k
    else:
        table, width, alphabet = r.floats(shape[0], f"layer {name}'s scales"), k, 2 ** k
    values_end = r.pos
    gaps, index_size = r.stream(entries, f"layer {name}'s index stream", b, 2 ** b)
    codes, code_size = r.stream(entries, f"layer {name}'s code stream", width, alphabet)
    pos = np.cumsum(gaps)
    if entries and (pos[-1] >= numel or (gaps[1:] == 0).any()):
        raise ValueError(f"The file is damaged: layer {name}'s indices point outside its {numel:,} weights.")
    w = np.zeros(numel, dtype=np.float32)
    if kind == KIND_CODEBOOK:
        if entries and codes.max() >= k:
            raise ValueError(f"The file is damaged: layer {name} uses a code beyond its {k} codebook values.")
        w[pos] = table[codes]
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # float32 as stored: an inf scale is data, not damage
            w[pos] = (codes - 2 ** (k - 1)).astype(np.float32) * table[pos // (numel // shape[0])]
    state[f"{name}.weight"] = torch.from_numpy(w.reshape(shape))
    bias_at = r.pos
    if layer.bias:
        if bias_bits == 0:
            bias = r.floats(layer.bias, f"layer {name}'s bias")
        else:
            qmax = 2 ** (bias_bits - 1) - 1
            scale, = r.unpack(F32, f"layer {name}'s bias scale")
            q, _ = r.stream(layer.bias, f"layer {name}'s bias stream", bias_bits, 2 * qmax + 1)
            if q.size and q.max() > 2 * qmax:  # the symmetric grid: q = code − qmax in −qmax … qmax
                raise ValueError(f"The file is damaged: layer {name}'s bias has a code above {2 * qmax}.")
            with np.errstate(over="ignore", invalid="ignore"):
                bias = (q - qmax).astype(np.float32) * np.float32(scale)
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    coding, zeros = ("fixed", "Huffman"), w[pos] == 0
    return LayerPart(name, ("codebook", "uniform")[kind], b, entries, int((zeros & (gaps == 2 ** b - 1)).sum()),
                     int(zeros.sum()), k, LAYER.size, values_end - at - LAYER.size, index_size, code_size,
                     r.pos - bias_at, coding[r.data[values_end]], coding[r.data[values_end + index_size]])


def read(data: bytes) -> FileContents:
    """Check and decode a ``.clab`` file (no model built): header, tensors, and the bytes of every part."""
    data = bytes(data) if not isinstance(data, bytes) else data
    start, head_len = _check_envelope(data)
    header, arch = _header(data, start, head_len)
    r = _Reader(data, start + head_len, len(data) - CHECKSUM.size)
    state: dict[str, torch.Tensor] = {}
    layers = [_layer(r, la, header["bias_bits"], state) for la in arch if la.weight is not None]
    if r.pos != r.end:
        raise ValueError(f"The file is damaged: {r.end - r.pos} bytes follow the last layer.")
    return FileContents(header, state, layers, len(data))


def load(data: bytes) -> nn.Sequential:
    """The network stored in ``data`` (a ``.clab`` file's bytes), in evaluation mode, on the CPU.

    Raises ValueError for a truncated, corrupt, foreign or unknown-version file, and for one that breaks a rule of
    docs/FORMAT.md, naming what is wrong; never allocates by a count it has not checked (module docstring).
    """
    contents = read(data)
    model = build_arch(contents.header["arch"], device="meta")  # no storage: the decoded tensors are assigned
    model.load_state_dict(contents.state, assign=True)
    return model.eval()


def file_size(model: nn.Module, mask: Mapping[str, torch.Tensor] | None = None, **kwargs) -> int:
    """The length of ``save(model, mask, **kwargs)``: the size of this format, always measured, never estimated."""
    return len(save(model, mask, **kwargs))


def parts(data: bytes) -> list[dict]:
    """Where the file's bytes go: one row per part (frame, JSON header, each layer's header, codebook/scales,
    index, codes, bias, checksum), with ``bytes``; the rows sum to ``len(data)``."""
    c = read(data)
    rows = [dict(part="frame (magic, version, lengths)", layer="", bytes=c.prelude),
            dict(part="JSON header (architecture)", layer="", bytes=c.header_bytes)]
    for p in c.layers:
        rows += [dict(part="layer fields", layer=p.layer, bytes=p.header),
                 dict(part="codebook" if p.kind == "codebook" else "scales", layer=p.layer, bytes=p.values),
                 dict(part=f"relative index ({p.index_bits}-bit, {p.index_coding})", layer=p.layer, bytes=p.index),
                 dict(part=f"codes ({p.code_coding})", layer=p.layer, bytes=p.codes),
                 dict(part="bias", layer=p.layer, bytes=p.bias)]
    rows.append(dict(part="CRC-32", layer="", bytes=c.checksum))
    return rows


__all__ = ["EXTENSION", "MAGIC", "MAX_CODEBOOK", "MAX_HEADER", "MIME", "VERSION", "FileContents", "LayerPart",
           "arch_spec", "build_arch", "file_size", "load", "parts", "read", "relative_entries", "save"]
