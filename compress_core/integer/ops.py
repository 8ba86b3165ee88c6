"""The integer ops of an integer-only program: int8 matrix products into int32, the fixed-point rescale,
max-pool and flatten on codes (Jacob et al. 2018, section 2).

``IntLayer`` is one Linear / Conv layer (its ReLU fused as a clamp) as integer arithmetic; ``program.py``
builds these from a fake-quantized model and strings them into an ``IntegerProgram``. Every op takes and
returns integer tensors. Each op has two entry points with the same output codes:

- ``op(q, steps)``, the readable one: batch first, convolutions and pools channels-last, every stage of a
  layer recorded in ``steps`` (the walk-through); the program runs it when asked for a trace.
- ``op.batch_last(h)``, the fast one: activations held as (features..., N) -- (C, L1[, L2], N) for
  convolutions and pools, (F, N) for linear layers -- so that im2col copies runs of O2·N bytes (output
  columns times the batch) instead of k·C bytes, the weights multiply from the left in their PyTorch order, the
  per-channel rescale constants are (out, 1) columns, and flatten is free (PyTorch's (C, L1, L2) order is
  already the row order). ``IntLayer.batch_last`` also takes the max-pool that follows it, and pools the
  int32 accumulators before the rescale: the rescale is non-decreasing in the accumulator (M0 ≥ 0), so
  max(f(a), f(b)) = f(max(a, b)) and only one accumulator in k1·k2 is rescaled.

Usage::

    program = to_integer(qmodel)              # compress_core.integer
    layer = program.layer("fc1")              # an IntLayer
    steps = {}
    codes = layer(q_in, steps)                # steps: cols, raw, acc, scaled, high, shifted, plus_zero, out
    program.forward_int(q_in)                 # the fast path: IntLayer.batch_last etc. (same codes)
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field, fields

import torch

from ..quant.primitives import QParams


def store_dtype(lo: int, hi: int) -> torch.dtype:
    for dt in (torch.int8, torch.int16):
        info = torch.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    return torch.int32


def code_offset(qp: QParams) -> int:
    """How much to subtract so the codes fit a signed type: 128 for uint8 (0..255), otherwise 0."""
    return 1 << (qp.bits - 1) if not qp.signed and qp.qmax > 127 else 0


@dataclass(frozen=True)
class Stored:
    """How one activation tensor is held: codes q are stored as q − offset in ``dtype``."""

    qp: QParams
    offset: int
    dtype: torch.dtype
    zero: int  # the stored zero point, Z − offset

    @classmethod
    def of(cls, qp: QParams) -> "Stored":
        off = code_offset(qp)
        return cls(qp, off, store_dtype(qp.qmin - off, qp.qmax - off), int(qp.zero_point.reshape(-1)[0]) - off)

    @property
    def lo(self) -> int:
        return self.qp.qmin - self.offset

    @property
    def hi(self) -> int:
        return self.qp.qmax - self.offset


# --- Integer matrix product ----------------------------------------------------------------------------

_INT_MM_OK: bool | None = None


def _int_mm_works() -> bool:
    """Probe ``torch._int_mm`` once with extreme values: some CPU paths saturate or do not exist."""
    global _INT_MM_OK
    if _INT_MM_OK is None:
        try:
            a = torch.tensor([[-128, 127, -128, 5] * 16] * 32, dtype=torch.int8)
            b = torch.tensor([[-128, -128, 127, -3] * 8] * 64, dtype=torch.int8)
            _INT_MM_OK = bool(torch.equal(torch._int_mm(a, b), a.to(torch.int32) @ b.to(torch.int32)))
        except (RuntimeError, AttributeError):
            _INT_MM_OK = False
    return _INT_MM_OK


def kernel_name(a_dtype: torch.dtype, b_dtype: torch.dtype) -> str:
    """Which kernel ``int_matmul`` uses for these operand types."""
    if a_dtype == torch.int8 and b_dtype == torch.int8 and _int_mm_works():
        return "torch._int_mm (int8×int8→int32)"
    return "int32 matmul"


def _row_major(t: torch.Tensor) -> torch.Tensor:
    """``t`` (2-D) as a row-major matrix with exactly the strides (columns, 1).

    ``torch._int_mm`` returns wrong sums, without an error, on two kinds of operand that other PyTorch ops
    take: an overlapping view (rows sharing memory: an im2col of a one-channel input can be one), and a
    contiguous matrix with one row or one column whose size-1 dimension has another stride (``is_contiguous``
    ignores that stride, the kernel does not: a one-channel 1×1 convolution's (N·L, 1) patches, or its (1, out)
    weights, came out of ``reshape`` / ``t()`` like that and gave sums off by millions).
    """
    t = t.contiguous()
    if t.stride() != (t.shape[1], 1):  # contiguous: the same memory order, so only the strides change
        t = t.as_strided(t.shape, (t.shape[1], 1))
    return t


def int_matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` of integer matrices into int32 (written into ``out`` when given).

    int8 × int8 goes to ``torch._int_mm`` (oneDNN's int8 GEMM on CPU) when it is available and exact
    here, on operands with exactly row-major strides (``_row_major``); anything else (wider codes, a
    platform without the kernel) to an int32 matmul.
    """
    if a.dtype == torch.int8 and b.dtype == torch.int8 and _int_mm_works():
        with contextlib.suppress(RuntimeError):  # a shape or device the kernel does not take: int32 below
            return torch._int_mm(_row_major(a), _row_major(b), out=out)
    if out is None:
        return a.to(torch.int32) @ b.to(torch.int32)
    return torch.mm(a.to(torch.int32), b.to(torch.int32), out=out)


# --- Scratch memory of the fast path -------------------------------------------------------------------

MAX_SCRATCH = 64 << 20  # bytes: a larger temporary is allocated afresh each time rather than kept


class Scratch(threading.local):
    """Temporaries of the fast path (``IntLayer.batch_last``), reused from one forward pass to the next.

    A forward pass at batch 1,024 needs a few MB of temporaries (im2col rows, int32 accumulators, the
    rescale's int64 products). Allocated afresh, large blocks come from the kernel page by page (glibc maps
    blocks above its threshold and gives them back on free), and the page faults measured as much as the
    arithmetic on digits·mlp. Kept per thread (the app serves its sessions from several threads; one thread
    runs one forward pass at a time) and by role rather than by layer or program, so a thread holds about the
    temporaries of the largest forward pass it has run, and gives them back when it ends.
    """

    def __init__(self):
        self.bufs: dict = {}

    def take(self, role: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A contiguous tensor of ``shape`` and ``dtype``, uninitialised, shared by every call with ``role``."""
        key = (role, dtype)
        hit = self.bufs.get(key)
        if hit is not None and hit[0] == shape:  # the usual case: the same batch size as last time
            return hit[1]
        n = math.prod(shape)
        base = hit[2] if hit is not None and hit[2].numel() >= n else torch.empty(n, dtype=dtype)
        out = base[:n].view(shape)
        if n * base.element_size() <= MAX_SCRATCH:
            self.bufs[key] = (shape, out, base)
        return out


# --- Rescale constants ---------------------------------------------------------------------------------

INT64_MIN = -(2 ** 63)


@dataclass(frozen=True)
class Rescale:
    """One layer's per-channel rescale constants, computed once at conversion and shaped to broadcast
    against its accumulators: (out,) for the batch-first path (channels last), (out, 1) for batch-last.

    Each channel's accumulator is shifted left by ``pre`` = P = max(L, shift) before the high multiply
    (TFLite's left shift for M ≥ 1, or the headroom L) and right by n = P − shift after it;
    x·2^P·M0 = x·(M0·2^P), so the left shift is folded into the multiplier ``M0L`` and costs nothing at run
    time. ``half``, ``neg`` are RoundingDivideByPOT's 2^(n−1) and [n > 0]; ``const``, ``total`` and ``tie``
    serve the one-pass rescale (``IntLayer.rescale_one_pass``).
    """

    pre: torch.Tensor  # int64: P
    M0L: torch.Tensor  # int64: M0·2^P
    n: torch.Tensor  # int32: the right shift after the high multiply
    half: torch.Tensor  # int32: 2^(n−1), 0 for n = 0
    neg: torch.Tensor  # int32: 1 where n > 0 (a negative value's rounding then needs − 1)
    folded: torch.Tensor  # int32: the folded bias
    const: torch.Tensor  # int64: folded·M0L + 2^30 + (2^(n−1) + Z_y·2^n)·2^31
    total: torch.Tensor  # int64: 31 + n
    tie: torch.Tensor  # int64: (2^(n−1) + Z_y·2^n)·2^31 (the t below which the high product is < 0), or
    # INT64_MIN where n = 0 (no rounding shift, nothing to correct)

    @classmethod
    def of(cls, M0: torch.Tensor, shift: torch.Tensor, headroom: int, folded: torch.Tensor, zero: int) -> "Rescale":
        shift = shift.to(torch.int64)
        pre = shift.clamp(min=headroom)
        n = pre - shift  # the total right shift (n + L with headroom, n without)
        half = (torch.ones_like(n) << n) >> 1
        M0L = M0.to(torch.int64) << pre
        offset = (half + (zero << n)) << 31
        return cls(pre=pre, M0L=M0L, n=n.to(torch.int32), half=half.to(torch.int32), neg=(n > 0).to(torch.int32),
                   folded=folded.to(torch.int32), const=folded.to(torch.int64) * M0L + (1 << 30) + offset,
                   total=n + 31, tie=torch.where(n > 0, offset, INT64_MIN))

    def rows(self) -> "Rescale":
        """The same constants as (out, 1) columns, for accumulators laid out (out, positions·N)."""
        return Rescale(**{f.name: getattr(self, f.name).reshape(-1, 1) for f in fields(self)})


# --- Ops -----------------------------------------------------------------------------------------------

@dataclass(eq=False)
class IntLayer:
    """A Linear / Conv1d / Conv2d layer as integer arithmetic (optionally with its ReLU fused).

    ``weight_t`` is the stored weight matrix (K × out, int8 when the codes fit), conv weights flattened in
    (kernel..., in_channel) order; ``bias`` the int32 q_b = round(b / (S_w·S_x)); ``folded_bias`` adds the
    weight-only zero-point terms; ``M0``/``shift`` one Q31 multiplier per output channel (or one in all).

    ``layer(q, steps)`` runs it stage by stage on batch-first codes (``steps`` records every stage);
    ``layer.batch_last(h)`` is the fast path on batch-last codes: the same codes, the rescale in one pass
    (``rescale``) where ``one_pass`` says its int64 terms fit.
    """

    name: str
    kind: str  # "linear" | "conv1d" | "conv2d"
    weight_t: torch.Tensor
    weight_codes: torch.Tensor  # original codes, the layer's weight shape (for display)
    w_zero: torch.Tensor  # (out,) stored zero points of the weights
    bias: torch.Tensor  # (out,) int32
    folded_bias: torch.Tensor  # (out,) int32
    M: torch.Tensor  # (out,) float64, the real multipliers (conversion time only)
    M0: torch.Tensor  # (out,) int64
    shift: torch.Tensor  # (out,) int64: < 0 a right shift (M < 1), > 0 a left shift (M ≥ 1)
    x: Stored
    y: Stored
    w_qp: QParams
    relu: bool
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    kernel_size: tuple[int, ...] = ()
    acc_bound: int = 0  # max |acc| over every possible input
    headroom: int = 0  # L: the accumulator is scaled by 2^L before the rescale (fits, as |acc|·2^L < 2^31);
    # 0 is TFLite's rescale bit for bit
    fused: bool = False  # the one-pass ReLU rescale (``rescale_fused``) is safe: its int64 terms stay below 2^62
    one_pass: bool = False  # the one-pass rescale with signed rounding (``rescale_one_pass``) is safe: the same
    # bound, with or without a ReLU (``fused`` implies it)
    kernel: str = ""
    _k: Rescale | None = field(default=None, repr=False)  # constants for (…, out) accumulators
    _rows: tuple = field(default=(), repr=False)  # the batch-last path: weights (out, K), constants (out, 1)
    _bounds: tuple = field(default=(), repr=False)

    def __post_init__(self):
        self.one_pass = self.one_pass or self.fused
        self._k = Rescale.of(self.M0, self.shift, self.headroom, self.folded_bias, self.y.zero)
        self.kernel = kernel_name(self.x.dtype, self.weight_t.dtype)
        self._bounds = (max(self.y.lo, self.y.zero) if self.relu else self.y.lo, self.y.hi, self.y.zero)
        # batch-last weights (out, K): K in PyTorch's (in_channel, kernel...) order, the order in which the
        # batch-last im2col lays out its rows; weight_t's K is (kernel..., in_channel)
        out = self.weight_t.shape[1]
        w = self.weight_t.t().reshape(out, *self.kernel_size, -1)
        w_rows = (w.movedim(-1, 1) if self.kernel_size else w).reshape(out, -1).contiguous()
        asym = bool((self.w_zero != 0).any())
        self._rows = (w_rows, self._k.rows(), self.w_zero.reshape(-1, 1) if asym else None)

    @property
    def lo(self) -> int:
        """Lowest output code: Z_y when the ReLU is fused (real 0), else qmin."""
        return self._bounds[0]

    def columns(self, q: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """The matrix the weights multiply: q itself (linear) or its patches (im2col), and the output grid.

        Convolutions take channels-last input (N, L1[, L2], C): each patch row is (k1[, k2], C) with C
        contiguous (the weights were flattened in the same order at conversion), and the product
        (N·L, C_out) is already the channels-last output.
        """
        if self.kind == "linear":
            return q.contiguous(), ()
        d = len(self.kernel_size)
        pad = [0, 0]
        for p in reversed(self.padding):
            pad += [p, p]
        # zero padding in real space is padding with the zero point in integer space
        q = torch.nn.functional.pad(q, pad, value=self.x.zero) if any(self.padding) else q
        for i in range(d):
            q = q.unfold(1 + i, self.kernel_size[i], self.stride[i])
        # (N, L1[, L2], C, k1[, k2]) -> (N, L1[, L2], k1[, k2], C) -> rows of k1·k2·C
        grid = tuple(q.shape[1:1 + d])
        perm = [0, *range(1, 1 + d), *range(2 + d, 2 + 2 * d), 1 + d]
        cols = q.permute(*perm).reshape(q.shape[0] * math.prod(grid), -1)
        return cols.contiguous(), grid

    def products(self, cols: torch.Tensor) -> torch.Tensor:
        """Σ_k q_x·q_w (stored values) into int32, minus Z_w·Σ_k q_x when the weights are asymmetric."""
        raw = int_matmul(cols, self.weight_t)
        if self._rows[2] is not None:  # asymmetric weights: the term Z_w·Σ q_x depends on the input, at run time
            raw.sub_(self.w_zero * cols.sum(1, keepdim=True, dtype=torch.int32))
        return raw

    def accumulate(self, cols: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        """int32 accumulators Σ (q_x − Z_x)(q_w − Z_w) + q_b; with ``steps``, record the terms."""
        raw = self.products(cols)
        if steps is not None:
            steps["raw"] = raw.clone()
        acc = raw.add_(self.folded_bias)
        if steps is not None:
            steps["acc"] = acc.clone()
        return acc

    def requantize(self, acc: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        """Z_y + M0·2^−n·acc with gemmlowp's rounding, clamped to the output range (at Z_y for a ReLU).

        Bit for bit ``multiply_by_quantized_multiplier(acc·2^L, M0, shift − L)``, which is TFLite's
        ``MultiplyByQuantizedMultiplier(acc, M0, shift)`` for L = 0 (the tests check it against the primitive
        and an independent TFLite-style model), stage by stage; ``steps`` records each stage for the
        walk-through (``scaled`` is the accumulator after its left shift by max(L, shift)).
        """
        return self._requantize(acc, self._k, steps)

    def _requantize(self, acc: torch.Tensor, k: Rescale, steps: dict | None) -> torch.Tensor:
        a = acc.to(torch.int64, copy=True)  # never change the caller's tensor
        if steps is not None:
            steps["scaled"] = (a << k.pre).to(torch.int32)
        # SaturatingRoundingDoublingHighMul: gemmlowp's nudge-and-truncate equals floor((a·b + 2^30) / 2^31)
        # for both signs, and M0 ≥ 0 rules out its one saturating case (a = b = INT32_MIN)
        high = a.mul_(k.M0L).add_(1 << 30).bitwise_right_shift_(31).to(torch.int32)
        if steps is not None:
            steps["high"] = high.clone()
        # RoundingDivideByPOT = (x + 2^(e−1) − [x < 0]) >> e for e ≥ 1 (halves away from zero), x for e = 0
        sign = high.bitwise_right_shift(31).bitwise_and_(k.neg)  # 1 where high < 0 and the shift is > 0
        rounded = high.add_(k.half).sub_(sign).bitwise_right_shift_(k.n)
        if steps is not None:
            steps["shifted"] = rounded.clone()
            steps["plus_zero"] = rounded + self.y.zero
        out = rounded.add_(self.y.zero).clamp_(self.lo, self.y.hi)
        if steps is not None:
            steps["out"] = out.clone()
        return out.to(self.y.dtype)

    def rescale_fused(self, raw: torch.Tensor) -> torch.Tensor:
        """The same output codes as ``requantize(raw + folded_bias)`` for a layer with a fused ReLU, in five
        passes over memory instead of a dozen (the int64 work is what costs time on a CPU).

        Two identities make it one multiply, one add and one shift: (1) floor(floor(y)/m + j/m) =
        floor((y + j)/m) for integers j, m, so the high multiply's floor, the rounding offset 2^(e−1) and the
        zero point Z·2^e merge into a single shift by 31 + e; (2) RoundingDivideByPOT rounds halves away from
        zero where this floor rounds them up — they differ only for negative values, which both leave ≤ 0
        and the ReLU clamps to Z alike. Conversion checked that every int64 term stays below 2^62.
        """
        if not self.relu:
            raise ValueError(f"Layer {self.name}: the fused rescale needs a ReLU (its clamp hides the rounding "
                             "difference for negative values); use requantize or rescale_one_pass.")
        if not self.fused:
            raise ValueError(f"Layer {self.name}: its accumulators are too large for the one-pass rescale's int64 "
                             "terms; use requantize.")
        return self._one_pass(raw, self._k, signed=False)

    def rescale_one_pass(self, raw: torch.Tensor) -> torch.Tensor:
        """``rescale_fused`` for any layer, ReLU or not: the same codes as ``requantize(raw + folded_bias)``.

        Without a ReLU the negative values are kept, so RoundingDivideByPOT's halves away from zero must be
        reproduced: its − [high < 0] term is − 2^31 in the merged numerator t, and high < 0 exactly when t is
        below the channel's ``tie`` constant. One compare and one subtract more than ``rescale_fused``.
        """
        if not self.one_pass:
            raise ValueError(f"Layer {self.name}: its accumulators are too large for the one-pass rescale's int64 "
                             "terms; use requantize.")
        return self._one_pass(raw, self._k, signed=True)

    def rescale(self, raw: torch.Tensor, rows: bool = False, take=None, slot: str = "out") -> torch.Tensor:
        """Output codes from the raw products (without the bias) by the fast path's route: the same codes as
        ``requantize(raw + folded_bias)``.

        One pass (``rescale_fused`` with a ReLU, ``rescale_one_pass`` without) where the int64 terms fit,
        else stage by stage. ``rows``: channels along dim 0, (out, positions·N) as the batch-last path holds
        them, rather than along the last dim. ``take`` (``Scratch.take``) supplies the temporaries and the
        output (under ``slot``); without it they are allocated.
        """
        k = self._rows[1] if rows else self._k
        if self.one_pass:
            return self._one_pass(raw, k, signed=not self.fused, take=take, slot=slot)
        return self._requantize(raw + k.folded, k, None)

    def _one_pass(self, raw: torch.Tensor, k: Rescale, signed: bool, take=None, slot: str = "out") -> torch.Tensor:
        # every op has operands of one dtype: with mixed ones (int32 × int64, int64 + bool) PyTorch first
        # casts a copy of the narrower operand into a temporary of its own
        if take is None:  # (small tensors: one call fewer)
            t = torch.addcmul(k.const, raw.to(torch.int64), k.M0L)
        else:
            t = take("t", raw.shape, torch.int64).copy_(raw).mul_(k.M0L).add_(k.const)
        if signed:  # − 2^31 where t < tie
            mask = take("mask", t.shape, torch.int64) if take is not None else torch.empty_like(t)
            t.sub_(torch.lt(t, k.tie, out=mask).bitwise_left_shift_(31))
        t.bitwise_right_shift_(k.total).clamp_(self._bounds[0], self._bounds[1])
        return t.to(self.y.dtype) if take is None else take(slot, t.shape, self.y.dtype).copy_(t)

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        cols, grid = self.columns(q)
        if steps is None:
            out = self.rescale(self.products(cols))
        else:
            steps["cols"] = cols
            out = self.requantize(self.accumulate(cols, steps), steps)
        if self.kind != "linear":  # (N·L, out) -> (N, L1[, L2], out): channels-last, no copy
            out = out.reshape(q.shape[0], *grid, -1)
        return out

    # --- the fast path: batch-last ---------------------------------------------------------------------

    def columns_batch_last(self, h: torch.Tensor, take=None) -> tuple[torch.Tensor, tuple[int, ...]]:
        """The batch-last im2col: (C, L1[, L2], N) -> (K, O1[·O2]·N) rows in (C, k1[, k2]) order, and the
        output grid. Row (c, i, j) is the input plane c shifted by (i, j): for stride 1 each of its copies
        moves a run of O2·N contiguous bytes. ``take``: where the padded input and the rows go (else new)."""
        if self.kind == "linear":
            return h.contiguous(), ()
        d, n = len(self.kernel_size), h.shape[-1]
        if any(self.padding):  # zero padding in real space is padding with the zero point in integer space
            if take is None:
                h = torch.nn.functional.pad(h, [0, 0, *[p for p in reversed(self.padding) for _ in (0, 1)]],
                                            value=self.x.zero)
            else:
                inner = h.shape[1:-1]
                padded = take("pad", (h.shape[0], *[s + 2 * p for s, p in zip(inner, self.padding)], n), h.dtype)
                padded.fill_(self.x.zero)
                padded[(slice(None), *[slice(p, p + s) for s, p in zip(inner, self.padding)])].copy_(h)
                h = padded
        for i in range(d):
            h = h.unfold(1 + i, self.kernel_size[i], self.stride[i])
        # (C, O1[, O2], N, k1[, k2]) -> (C, k1[, k2], O1[, O2], N), copied once into rows
        grid = tuple(h.shape[1:1 + d])
        h = h.permute(0, *range(d + 2, 2 * d + 2), *range(1, d + 2))
        shape = (self._rows[0].shape[1], math.prod(grid) * n)
        if take is None:
            return h.reshape(shape).contiguous(), grid  # (a view for a one-channel input: rows overlap)
        return take("cols", h.shape, h.dtype).copy_(h).view(shape), grid

    def batch_last(self, h: torch.Tensor, pool: "IntMaxPool | None" = None, scratch: Scratch | None = None,
                   slot: str = "out") -> torch.Tensor:
        """The layer on batch-last codes, (C, L1[, L2], N) or (F, N), with the max-pool that follows it (if
        any) applied to the int32 accumulators: the same codes as ``__call__`` then the pool.

        With ``scratch``, every temporary and the output come from it (the output under ``slot``: the caller
        alternates slots so that a layer never writes over its own input); without, the ops allocate them.
        """
        w_rows, _, w_zero = self._rows
        take = None if scratch is None else scratch.take
        n = h.shape[-1]
        cols, grid = self.columns_batch_last(h, take)
        raw = int_matmul(w_rows, cols, out=None if take is None else take("raw", (w_rows.shape[0], cols.shape[1]),
                                                                           torch.int32))
        if w_zero is not None:  # asymmetric weights: − Z_w·Σ_k q_x, per output position
            raw.sub_(w_zero * cols.sum(0, keepdim=True, dtype=torch.int32))
        if pool is not None and grid:
            raw = pool(raw.view(raw.shape[0], *grid, n), take=take)
            grid = tuple(raw.shape[1:-1])
            raw = raw.view(raw.shape[0], -1)
        out = self.rescale(raw, rows=True, take=take, slot=slot)
        return out.view(out.shape[0], *grid, n) if grid else out


@dataclass(eq=False)
class IntMaxPool:
    """Max-pooling of integer codes (q ↦ S(q − Z) is increasing, so the max commutes) over dims 1..d: the
    spatial dims of both layouts, channels-last (N, L1[, L2], C) and batch-last (C, L1[, L2], N)."""

    name: str
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]

    def __call__(self, q: torch.Tensor, steps: dict | None = None, take=None) -> torch.Tensor:
        # separable: the max over a k1×k2 window is the max over k2 of the maxima over k1. Each pass is an
        # element-wise max of k strided views (each with its last dim contiguous), far faster than a reduction
        # over unfolded window dimensions. ``take`` (``Scratch.take``): where the results go (else new).
        for i, (k, s) in enumerate(zip(self.kernel_size, self.stride)):
            out_len = (q.shape[1 + i] - k) // s + 1
            lead = (slice(None),) * (1 + i)
            views = [q[(*lead, slice(o, o + s * (out_len - 1) + 1, s))] for o in range(k)]
            if k == 1:
                q = views[0].clone() if take is None else take(f"pool{i}", views[0].shape, q.dtype).copy_(views[0])
                continue
            q = torch.maximum(views[0], views[1], out=None if take is None else take(f"pool{i}", views[0].shape,
                                                                                          q.dtype))
            for view in views[2:]:
                torch.maximum(q, view, out=q)
        return q

    def batch_last(self, h: torch.Tensor) -> torch.Tensor:
        return self(h)


@dataclass(eq=False)
class IntChannelsLast:
    """(N, C, L1[, L2]) -> (N, L1[, L2], C): the layout the integer convolutions work in."""

    name: str = "channels-last"

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        return q.movedim(1, -1).contiguous()

    def batch_last(self, h: torch.Tensor) -> torch.Tensor:
        return h  # batch-last codes keep channels first


@dataclass(eq=False)
class IntFlatten:
    """Flatten to (N, features) in PyTorch's (C, L1[, L2]) order, moving channels back first if needed."""

    name: str
    channels_last: bool = False

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        if self.channels_last and q.dim() > 2:
            q = q.movedim(-1, 1)
        return q.reshape(q.shape[0], -1)

    def batch_last(self, h: torch.Tensor) -> torch.Tensor:
        return h.reshape(math.prod(h.shape[:-1]), h.shape[-1])  # (C, L1[, L2], N): rows already in (C, L) order


def channels_first(q: torch.Tensor) -> torch.Tensor:
    """A channels-last activation (N, L1[, L2], C) in PyTorch's (N, C, L1[, L2]) layout, for display."""
    return q.movedim(-1, 1) if q.dim() > 2 else q
