"""The integer ops of an integer-only program: int8 matrix products into int32, the fixed-point rescale,
max-pool and flatten on codes (Jacob et al. 2018, section 2).

``IntLayer`` is one Linear / Conv layer (its ReLU fused as a clamp) as integer arithmetic; ``integer.py``
builds these from a fake-quantized model and strings them into an ``IntegerProgram``. Every op takes and
returns integer tensors; convolutions and pools work channels-last.

Usage::

    program = to_integer(qmodel)              # compress_core.integer
    layer = program.layer("fc1")              # an IntLayer
    steps = {}
    codes = layer(q_in, steps)                # steps: cols, raw, acc, scaled, high, shifted, plus_zero, out
"""
from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass, field

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


def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` of integer matrices into int32.

    int8 × int8 goes to ``torch._int_mm`` (oneDNN's int8 GEMM on CPU) when it is available and exact
    here; anything else (wider codes, a platform without the kernel) to an int32 matmul.
    """
    if a.dtype == torch.int8 and b.dtype == torch.int8 and a.is_contiguous() and _int_mm_works():
        with contextlib.suppress(RuntimeError):  # a shape or device the kernel does not take: int32 below
            return torch._int_mm(a, b)
    return a.to(torch.int32) @ b.to(torch.int32)


# --- Ops -----------------------------------------------------------------------------------------------

@dataclass(eq=False)
class IntLayer:
    """A Linear / Conv1d / Conv2d layer as integer arithmetic (optionally with its ReLU fused).

    ``weight_t`` is the stored weight matrix (K × out, int8 when the codes fit), conv weights flattened in
    (in_channel, kernel...) order; ``bias`` the int32 q_b = round(b / (S_w·S_x)); ``folded_bias`` adds the
    weight-only zero-point terms; ``M0``/``shift`` one Q31 multiplier per output channel (or one in all).
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
    kernel: str = ""
    _fast: tuple = field(default=(), repr=False)
    _bounds: tuple = field(default=(), repr=False)
    _pre: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        # Each channel's accumulator is shifted left by P = max(L, shift) before the high multiply (TFLite's
        # left shift for M ≥ 1, or the headroom L) and right by n = P − shift after it. x·2^P·M0 = x·(M0·2^P):
        # the left shift folds into the multiplier, costing nothing at run time.
        pre = self.shift.to(torch.int64).clamp(min=self.headroom)
        self._pre = pre
        n = (pre - self.shift).to(torch.int32)  # the total right shift (n + L with headroom, n without)
        half = (torch.ones_like(n) << n) >> 1
        M0L = self.M0.to(torch.int64) << pre
        # fused ReLU route (see rescale_fused): one int64 constant and one shift per channel
        const = self.folded_bias.to(torch.int64) * M0L + (1 << 30) + ((half.to(torch.int64)
                                                                        + (self.y.zero << n.to(torch.int64))) << 31)
        self._fast = (M0L, n, half, (n > 0).to(torch.int32), bool((self.w_zero != 0).any()),
                      const, (n + 31).to(torch.int64))
        self.kernel = kernel_name(self.x.dtype, self.weight_t.dtype)
        self._bounds = (max(self.y.lo, self.y.zero) if self.relu else self.y.lo, self.y.hi, self.y.zero)

    @property
    def lo(self) -> int:
        """Lowest output code: Z_y when the ReLU is fused (real 0), else qmin."""
        return self._bounds[0]

    def columns(self, q: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """The matrix the weights multiply: q itself (linear) or its patches (im2col), and the output grid.

        Convolutions take channels-last input (N, L1[, L2], C): each patch row is (k1[, k2], C) with C
        contiguous, so the im2col copy moves runs of k·C bytes rather than k (the weights were flattened in
        the same order at conversion), and the product (N·L, C_out) is already the channels-last output.
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
        if self._fast[4]:  # asymmetric weights: the term Z_w·Σ q_x depends on the input, at run time
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
        M0L, n, half, neg = self._fast[:4]
        a = acc.to(torch.int64, copy=True)  # never change the caller's tensor
        if steps is not None:
            steps["scaled"] = (a << self._pre).to(torch.int32)
        # SaturatingRoundingDoublingHighMul: gemmlowp's nudge-and-truncate equals floor((a·b + 2^30) / 2^31)
        # for both signs, and M0 ≥ 0 rules out its one saturating case (a = b = INT32_MIN)
        high = a.mul_(M0L).add_(1 << 30).bitwise_right_shift_(31).to(torch.int32)
        if steps is not None:
            steps["high"] = high.clone()
        # RoundingDivideByPOT = (x + 2^(e−1) − [x < 0]) >> e for e ≥ 1 (halves away from zero), x for e = 0
        sign = high.bitwise_right_shift(31).bitwise_and_(neg)  # 1 where high < 0 and the shift is > 0
        rounded = high.add_(half).sub_(sign).bitwise_right_shift_(n)
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
                             "difference for negative values); use requantize.")
        if not self.fused:
            raise ValueError(f"Layer {self.name}: its accumulators are too large for the one-pass rescale's int64 "
                             "terms; use requantize.")
        M0L, const, total_shift = self._fast[0], self._fast[5], self._fast[6]
        t = raw.to(torch.int64, copy=True).mul_(M0L)  # same-dtype in-place ops: mixed int32 × int64 is far slower
        out = t.add_(const).bitwise_right_shift_(total_shift).clamp_(self._bounds[0], self._bounds[1])
        return out.to(self.y.dtype)

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        cols, grid = self.columns(q)
        if steps is None and self.fused:
            out = self.rescale_fused(self.products(cols))
        else:
            if steps is not None:
                steps["cols"] = cols
            out = self.requantize(self.accumulate(cols, steps), steps)
        if self.kind != "linear":  # (N·L, out) -> (N, L1[, L2], out): channels-last, no copy
            out = out.reshape(q.shape[0], *grid, -1)
        return out


@dataclass(eq=False)
class IntMaxPool:
    """Max-pooling of integer codes (q ↦ S(q − Z) is increasing, so the max commutes), channels-last."""

    name: str
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        # an element-wise max over the k1·k2 strided views (each with C contiguous) is far faster than
        # a reduction over unfolded window dimensions
        d = len(self.kernel_size)
        out_len = [(q.shape[1 + i] - self.kernel_size[i]) // self.stride[i] + 1 for i in range(d)]
        out = None
        for offset in itertools.product(*[range(k) for k in self.kernel_size]):
            idx = [slice(None)] + [slice(o, o + self.stride[i] * (out_len[i] - 1) + 1, self.stride[i])
                                   for i, o in enumerate(offset)]
            view = q[tuple(idx)]
            out = view.clone() if out is None else torch.maximum(out, view, out=out)
        return out


@dataclass(eq=False)
class IntChannelsLast:
    """(N, C, L1[, L2]) -> (N, L1[, L2], C): the layout the integer convolutions work in."""

    name: str = "channels-last"

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        return q.movedim(1, -1).contiguous()


@dataclass(eq=False)
class IntFlatten:
    """Flatten to (N, features) in PyTorch's (C, L1[, L2]) order, moving channels back first if needed."""

    name: str
    channels_last: bool = False

    def __call__(self, q: torch.Tensor, steps: dict | None = None) -> torch.Tensor:
        if self.channels_last and q.dim() > 2:
            q = q.movedim(-1, 1)
        return q.reshape(q.shape[0], -1)


def channels_first(q: torch.Tensor) -> torch.Tensor:
    """A channels-last activation (N, L1[, L2], C) in PyTorch's (N, C, L1[, L2]) layout, for display."""
    return q.movedim(-1, 1) if q.dim() > 2 else q
