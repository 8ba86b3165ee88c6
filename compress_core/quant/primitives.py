"""The primitives of the affine quantization scheme r = S·(q − Z): ranges, QParams, quantize, fake quantize.

Jacob et al. 2018 ("Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference") and Krishnamoorthi 2018 (the quantization whitepaper) define the scheme: a real value r is
stored as an integer q in [qmin, qmax] with a scale S > 0 and a zero point Z chosen so that real 0 is
exactly representable (q = Z). This module follows PyTorch's observers and fake-quantize kernels bit for
bit (tests/test_quant.py checks against ``torch.ao.quantization`` as the oracle):

- range: [min(min_val, 0), max(max_val, 0)]; asymmetric S = (max − min)/(qmax − qmin),
  Z = clamp(qmin − round(min/S)); symmetric S = max(|min|, |max|)/((qmax − qmin)/2), Z = 0 (signed);
  unsigned symmetric Z = (qmin + qmax) // 2, the down-rounded midpoint PyTorch's observers use for a
  custom range (7 at 4 bits), except at 8 and 16 bits, where PyTorch's quint8 / uint16 observers use
  2^(b−1) (128, 32768); S ≥ float32 eps, so never 0. ``round`` is round-half-to-even everywhere.
- quantize: q = clamp(round(x · (1/S)) + Z, qmin, qmax), with 1/S computed in float32 first, as the
  ATen kernels do (this matters at exact halfway points).
- fake quantize: S·(q − Z); its gradient is the straight-through estimator, passed where the unclamped
  q lies in [qmin, qmax] and zero where the value was clipped.

The model-level API (``QuantConfig``, ``QuantLayer``, ``quantize_model``) lives in ``quant.model``.

Usage::

    qp = compute_qparams(torch.tensor(-1.0), torch.tensor(3.0), bits=8)   # S = 4/255, Z = -64
    q = quantize(x, qp); x_hat = dequantize(q, qp)                         # |x − x_hat| ≤ S/2 in range
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

EPS = torch.finfo(torch.float32).eps  # PyTorch's observers floor the scale at this value
MAX_BITS = 16


def qrange(bits: int, signed: bool = True, narrow_range: bool = False) -> tuple[int, int]:
    """(qmin, qmax) of a ``bits``-bit integer; narrow range drops the lowest code (−127..127 at 8 bits)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"Bit width must be a whole number from 1 to {MAX_BITS}; got {bits!r}.")
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if narrow_range:
        qmin += 1
        if qmax <= qmin:
            raise ValueError(f"Narrow range needs at least 2 bits ({bits} bit leaves a single level).")
    return qmin, qmax


@dataclass(frozen=True, eq=False)
class QParams:
    """Scale and zero point of an affine quantizer, plus how they were defined.

    ``scale`` is a float32 tensor of shape () per tensor or (C,) per channel; ``zero_point`` an int32
    tensor of the same shape; ``axis`` the channel axis of the quantized tensor (None per tensor).
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    bits: int = 8
    signed: bool = True
    symmetric: bool = False
    narrow_range: bool = False
    axis: int | None = None

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.signed, self.narrow_range)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.signed, self.narrow_range)[1]

    @property
    def levels(self) -> int:
        """Number of representable values, qmax − qmin + 1."""
        return self.qmax - self.qmin + 1

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def range_min(self) -> torch.Tensor:
        """Smallest representable real value, S·(qmin − Z)."""
        return self.scale * (self.qmin - self.zero_point).float()

    @property
    def range_max(self) -> torch.Tensor:
        """Largest representable real value, S·(qmax − Z)."""
        return self.scale * (self.qmax - self.zero_point).float()

    def broadcast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero point shaped to broadcast against ``x`` (channels along ``axis``)."""
        s, z = self.scale.to(x.device), self.zero_point.to(x.device)
        if self.axis is None:
            return s, z
        if x.dim() == 0 or x.shape[self.axis] != s.numel():
            raise ValueError(f"Per-channel parameters for {s.numel()} channels along axis {self.axis} "
                             f"do not fit a tensor of shape {tuple(x.shape)}.")
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return s.reshape(shape), z.reshape(shape)

    def to(self, device) -> "QParams":
        return QParams(self.scale.to(device), self.zero_point.to(device), self.bits, self.signed, self.symmetric,
                       self.narrow_range, self.axis)

    def to_dict(self) -> dict:
        return {"scale": self.scale.tolist(), "zero_point": self.zero_point.tolist(), "bits": self.bits,
                "signed": self.signed, "symmetric": self.symmetric, "narrow_range": self.narrow_range,
                "axis": self.axis}


def _as_float32(v) -> torch.Tensor:
    t = v.detach() if isinstance(v, torch.Tensor) else torch.tensor(v)
    return t.to(torch.float32)


def _unsigned_symmetric_zero(bits: int, qmin: int, qmax: int) -> int:
    """PyTorch's unsigned symmetric zero point: 128 for quint8's default range, 2^15 for uint16's, and the
    down-rounded midpoint (qmin + qmax) // 2 for any other range (an observer given quant_min/quant_max).
    (At 8 bits a custom 0..255 range gives 127 in PyTorch; we follow its default quint8 observer.)"""
    if bits in (8, 16) and qmin == 0:
        return 1 << (bits - 1)
    return (qmin + qmax) // 2


def compute_qparams(min_val, max_val, bits: int = 8, *, symmetric: bool = False, signed: bool = True,
                    narrow_range: bool = False, axis: int | None = None) -> QParams:
    """Scale and zero point for the range [min_val, max_val], exactly as PyTorch's observers compute them.

    Args:
        min_val, max_val: floats or tensors; 1-D tensors give per-channel parameters (channel axis
            ``axis``, 0 by default), 0-d tensors or floats give per-tensor parameters.
        bits: 1–16. signed: integer codes centred on 0 (int8) or from 0 (uint8).
        symmetric: Z fixed and the range made symmetric around 0. Z = 0 signed; unsigned, Z = 128 at 8 bits
            and 32768 at 16 (quint8's and uint16's default observers), else (qmin + qmax) // 2 (7 at 4 bits,
            as an observer with ``quant_min=0, quant_max=15``).
        narrow_range: drop the lowest code (qmin = −127 at 8 bits), so a symmetric grid is exactly symmetric.

    Raises ValueError for NaN/inf, min > max, mismatched shapes or an invalid bit width.

    Example::

        compute_qparams(-1.0, 3.0, bits=8)                      # S = 4/255, Z = −128 − round(−63.75) = −64
        compute_qparams(w.amin(1), w.amax(1), 4, symmetric=True) # per output channel
    """
    qmin, qmax = qrange(bits, signed, narrow_range)
    lo, hi = _as_float32(min_val), _as_float32(max_val)
    if lo.shape != hi.shape or lo.dim() > 1:
        raise ValueError(f"min and max must be scalars or 1-D tensors of the same length; got shapes "
                         f"{tuple(lo.shape)} and {tuple(hi.shape)}.")
    if lo.numel() == 0:
        raise ValueError("Cannot compute quantization parameters of an empty range.")
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("The range contains NaN or infinity: clean the tensor (or calibration data) first.")
    if (lo > hi).any():
        raise ValueError("The range minimum is larger than its maximum.")
    if lo.dim() == 1 and axis is None:
        axis = 0
    if lo.dim() == 0:
        axis = None
    lo = torch.minimum(lo, torch.zeros_like(lo))  # the range always includes real 0
    hi = torch.maximum(hi, torch.zeros_like(hi))
    eps = torch.tensor(EPS, dtype=torch.float32, device=lo.device)
    if symmetric:
        amax = torch.maximum(-lo, hi)
        scale = torch.maximum(amax / (float(qmax - qmin) / 2), eps)
        zero = torch.full_like(scale, 0 if signed else _unsigned_symmetric_zero(bits, qmin, qmax), dtype=torch.int32)
    else:
        scale = torch.maximum((hi - lo) / float(qmax - qmin), eps)
        zero = torch.clamp(qmin - torch.round(lo / scale).to(torch.int32), qmin, qmax).to(torch.int32)
    return QParams(scale, zero, bits, signed, symmetric, narrow_range, axis)


def _round_codes(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """round(x · (1/S)) + Z as float, before clamping (1/S in float32 first, as ATen does)."""
    s, z = qp.broadcast(x)
    return torch.round(x * (1.0 / s)) + z


def quantize(x: torch.Tensor, qp: QParams, dtype: torch.dtype = torch.int32) -> torch.Tensor:
    """Integer codes q = clamp(round(x/S) + Z, qmin, qmax) of ``x`` (int32 unless ``dtype`` says otherwise)."""
    x = x.detach().to(torch.float32)
    if torch.isnan(x).any():
        raise ValueError("Cannot quantize NaN values.")
    return torch.clamp(_round_codes(x, qp), qp.qmin, qp.qmax).to(dtype)


def dequantize(q: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Real values S·(q − Z) of integer codes ``q`` (float32)."""
    s, z = qp.broadcast(q)
    return (q.to(torch.int32) - z).to(torch.float32) * s


class _FakeQuantSTE(torch.autograd.Function):
    """Forward S·(clamp(round(x/S)+Z) − Z); backward: straight-through inside the range, 0 where clipped."""

    @staticmethod
    def forward(ctx, x, scale, zero, qmin, qmax):
        inv = 1.0 / scale
        q = torch.round(x * inv) + zero
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return (torch.clamp(q, qmin, qmax) - zero) * scale

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None, None, None


def fake_quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Quantize then dequantize in one float op, with the straight-through gradient (as
    ``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine``)."""
    s, z = qp.broadcast(x)
    z = z.to(x.dtype)
    if torch.is_grad_enabled() and x.requires_grad:
        return _FakeQuantSTE.apply(x, s, z, qp.qmin, qp.qmax)
    # no gradient wanted (evaluation, calibration): the same arithmetic in place on one new tensor, without the
    # clipping mask the backward pass would need; a quarter of a quantized GPT's test pass went to that mask
    out = torch.round(x * (1.0 / s))
    return out.add_(z).clamp_(qp.qmin, qp.qmax).sub_(z).mul_(s)


CLIP_TOLERANCE = 1e-4  # steps: below this, clamping and rounding give the same value to 1/10,000 of a step


def clip_mask(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """True where clamping, not rounding, decides ``x``'s error: x lies more than half a step outside
    the representable range [S·(qmin − Z), S·(qmax − Z)]. (A value just past the end, such as the
    maximum under a symmetric grid with S = max/127.5, rounds onto the last level like any other.)

    Computed in double precision with a tolerance of ``CLIP_TOLERANCE`` steps: S is a float32, so the maximum a
    min-max grid was calibrated on lands at q = qmax + 0.50000763 rather than exactly + 0.5, and min-max must
    never report clipping on its own calibration data."""
    s, z = qp.broadcast(x)
    q = x.detach().double() / s.double() + z.double()
    return (q < qp.qmin - 0.5 - CLIP_TOLERANCE) | (q > qp.qmax + 0.5 + CLIP_TOLERANCE)
