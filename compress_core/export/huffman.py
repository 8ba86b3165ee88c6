"""Canonical Huffman coding, written out: code lengths from symbol counts, codes from the lengths, bit packing.

Huffman 1952 ("A Method for the Construction of Minimum-Redundancy Codes"): repeatedly merge the two least
frequent groups of symbols; every merge adds one bit to the codes of all symbols in both groups. The average
code length L of the result is optimal among prefix codes, and H ≤ L < H + 1 for the entropy H of the counts.

A *canonical* code (as DEFLATE, RFC 1951 section 3.2.2, uses) is fixed by the code lengths alone: codes are
handed out in order of (length, symbol), each one the previous plus one, shifted left when the length grows. So a
file stores one small number per symbol (its length), not a tree. Lengths are capped at ``MAX_LENGTH`` = 15 bits
so each fits in 4 bits; when the optimal code is deeper (rare: it needs ≥ 1,597 symbols, Fibonacci-skewed), the
counts are halved until it fits -- a simple, still prefix-free, near-optimal fallback.

Bits are packed most significant first, the last byte padded with zeros.

Usage::

    lengths = code_lengths(np.bincount(symbols))
    data = encode(symbols, lengths)
    assert list(decode(data, lengths, len(symbols))) == list(symbols)
"""
from __future__ import annotations

import heapq
import math
from typing import Sequence

import numpy as np

MAX_LENGTH = 15  # longest code: a length fits in one 4-bit nibble


def code_lengths(counts: Sequence[int], max_length: int = MAX_LENGTH) -> list[int]:
    """Huffman code length of each symbol 0..len(counts)−1 (0 for a symbol that never occurs).

    One occurring symbol gets a 1-bit code (a code needs at least one bit to be read back).
    """
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts):
        raise ValueError("Symbol counts cannot be negative.")
    used = [s for s, c in enumerate(counts) if c > 0]
    lengths = [0] * len(counts)
    if len(used) == 1:
        lengths[used[0]] = 1
    if len(used) <= 1:
        return lengths
    if len(used) > 2 ** max_length:
        raise ValueError(f"{len(used)} symbols do not fit in codes of at most {max_length} bits.")
    while True:
        # heap of (count, tie-break, symbols in the group); the tie-break makes the result deterministic
        heap = [(counts[s], i, [s]) for i, s in enumerate(used)]
        heapq.heapify(heap)
        depth = dict.fromkeys(used, 0)
        order = len(heap)
        while len(heap) > 1:
            c1, _, g1 = heapq.heappop(heap)
            c2, _, g2 = heapq.heappop(heap)
            for s in g1 + g2:
                depth[s] += 1
            heapq.heappush(heap, (c1 + c2, order, g1 + g2))
            order += 1
        if max(depth.values()) <= max_length:
            for s, d in depth.items():
                lengths[s] = d
            return lengths
        counts = [max(1, c // 2) if c > 0 else 0 for c in counts]  # flatten the counts, try again


def canonical_codes(lengths: Sequence[int]) -> list[int]:
    """The canonical code (an integer, read in ``lengths[s]`` bits) of each symbol; 0 where the length is 0."""
    if any(n < 0 or n > MAX_LENGTH for n in lengths):
        raise ValueError(f"Code lengths must be from 0 to {MAX_LENGTH}.")
    if kraft_sum(lengths) > 1:
        raise ValueError("These code lengths cannot form a prefix code (Kraft sum above 1).")
    bl_count = [0] * (MAX_LENGTH + 1)
    for n in lengths:
        bl_count[n] += 1
    bl_count[0] = 0
    next_code, code = [0] * (MAX_LENGTH + 2), 0
    for bits in range(1, MAX_LENGTH + 1):
        code = (code + bl_count[bits - 1]) << 1
        next_code[bits] = code
    codes = [0] * len(lengths)
    for s, n in enumerate(lengths):
        if n:
            codes[s] = next_code[n]
            next_code[n] += 1
    return codes


def kraft_sum(lengths: Sequence[int]) -> float:
    """Σ 2^−length over the used symbols: ≤ 1 for every prefix code, exactly 1 for a Huffman code of ≥ 2 symbols."""
    return sum(2.0 ** -n for n in lengths if n)


def pack_bits(values: np.ndarray, widths: np.ndarray) -> bytes:
    """Each ``values[i]`` written in ``widths[i]`` bits, most significant first, zero-padded to whole bytes."""
    values, widths = np.asarray(values, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    if values.size == 0:
        return b""
    top = int(widths.max())
    shift = widths[:, None] - 1 - np.arange(top)[None, :]  # bit j of a w-bit value is (v >> (w−1−j)) & 1
    bits = (values[:, None] >> np.maximum(shift, 0)) & 1
    return np.packbits(bits[shift >= 0].astype(np.uint8)).tobytes()


def pack_fixed(symbols: Sequence[int], width: int) -> bytes:
    """Every symbol in ``width`` bits (fixed-length code)."""
    s = np.asarray(symbols, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() >= 2 ** width):
        raise ValueError(f"A symbol does not fit in {width} bits.")
    return pack_bits(s, np.full(s.shape, width))


def unpack_fixed(data: bytes, width: int, count: int) -> np.ndarray:
    """``count`` symbols of ``width`` bits each (int64), as ``pack_fixed`` wrote them."""
    if len(data) * 8 < count * width:
        raise ValueError(f"{len(data)} bytes hold fewer than {count} symbols of {width} bits.")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * width].reshape(count, width)
    return (bits.astype(np.int64) << np.arange(width - 1, -1, -1)).sum(axis=1) if width else np.zeros(count, np.int64)


def encode(symbols: Sequence[int], lengths: Sequence[int]) -> bytes:
    """The symbols in their canonical Huffman codes (``lengths`` from ``code_lengths``)."""
    s = np.asarray(symbols, dtype=np.int64)
    lens = np.asarray(lengths, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() >= len(lens) or (lens[s] == 0).any()):
        raise ValueError("A symbol has no code (its length is 0 or it is outside the alphabet).")
    codes = np.asarray(canonical_codes(lengths), dtype=np.int64)
    return pack_bits(codes[s], lens[s]) if s.size else b""


def encoded_bits(counts: Sequence[int], lengths: Sequence[int]) -> int:
    """Σ count × length: the size of ``encode`` in bits, before padding, without encoding."""
    return int(sum(int(c) * int(n) for c, n in zip(counts, lengths)))


def decode(data: bytes, lengths: Sequence[int], count: int) -> np.ndarray:
    """Read ``count`` symbols back (int64). Raises ValueError when the bits run out or match no code.

    Canonical decoding: read bits one at a time into ``code``; the codes of length n are the consecutive
    integers first[n] .. first[n] + count[n] − 1, so a code is complete when ``code − first[n] < count[n]``.
    """
    canonical_codes(lengths)  # checks the lengths
    by_length = sorted((n, s) for s, n in enumerate(lengths) if n)
    symbols = [s for _, s in by_length]
    num = [0] * (MAX_LENGTH + 1)
    for n, _ in by_length:
        num[n] += 1
    first, offset, code, start = [0] * (MAX_LENGTH + 1), [0] * (MAX_LENGTH + 1), 0, 0
    for n in range(1, MAX_LENGTH + 1):
        first[n], offset[n] = code, start
        code = (code + num[n]) << 1
        start += num[n]
    if count > 8 * len(data):  # every code is at least one bit: checked before ``out`` is allocated
        raise ValueError(f"The Huffman-coded data ends after at most {8 * len(data)} of {count} symbols (a code "
                         "is at least one bit).")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
    out, pos, total = [0] * count, 0, len(bits)
    for i in range(count):
        code, n = 0, 0
        while True:
            if pos >= total:
                raise ValueError(f"The Huffman-coded data ends after {i} of {count} symbols.")
            code = (code << 1) | bits[pos]
            pos += 1
            n += 1
            if code - first[n] < num[n]:
                out[i] = symbols[offset[n] + code - first[n]]
                break
            if n == MAX_LENGTH:
                raise ValueError("The data holds a bit pattern that is no Huffman code of this table.")
    return np.asarray(out, dtype=np.int64)


def entropy_bits(counts: Sequence[int]) -> float:
    """n·H: the Shannon entropy of the counts, in bits per symbol, times the number of symbols (the bound)."""
    total = sum(int(c) for c in counts)
    return -sum(int(c) * math.log2(int(c) / total) for c in counts if c) if total else 0.0


def pack_lengths(lengths: Sequence[int]) -> bytes:
    """Code lengths as 4-bit nibbles, two per byte, the first symbol in the high nibble (0 = unused)."""
    return pack_fixed(lengths, 4)


def unpack_lengths(data: bytes, alphabet: int) -> list[int]:
    return unpack_fixed(data, 4, alphabet).tolist()


__all__ = ["MAX_LENGTH", "canonical_codes", "code_lengths", "decode", "encode", "encoded_bits", "entropy_bits",
           "kraft_sum", "pack_bits", "pack_fixed", "pack_lengths", "unpack_fixed", "unpack_lengths"]
