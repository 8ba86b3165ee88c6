"""What an integer program holds and does, as plain data: per-layer summary, memory, walk-through.

These functions turn an ``integer.IntegerProgram`` into tables and numbers the page (or a notebook) can
show: the per-layer dtypes, S, Z, M = S_w·S_x/S_y and its M0·2^−n form (Jacob et al. 2018, eq. 5–6),
bytes at float32 / int8 / packed 4-bit, a step-by-step trace of one layer on one example next to the float
computation, and the multiplier explorer. Nothing here runs the integer program with floats: floats only
appear when reporting what the integers stand for.

Usage::

    program = to_integer(qmodel)
    pd.DataFrame(layer_summary(program))
    model_bytes(program)["int8"]
    walk = walk_through(program, qmodel, ds.x_test[0], "fc1")
    walk.units["out_code"][:5], walk.units["float_out"][:5]
    t = trace_unit(walk, qmodel, walk.largest_unit)     # every number of one output, integer and float side
    t.acc == t.sum + t.bias_code                        # True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..quant import QuantLayer, quantize
from ..train import evaluate
from .fixed_point import multiplier_value, multiply_by_quantized_multiplier, quantize_multiplier
from .ops import IntLayer, channels_first, code_offset
from .program import IntegerProgram

DTYPE = {torch.int8: "int8", torch.int16: "int16", torch.int32: "int32"}


def _span(t: torch.Tensor, fmt: str) -> str:
    t = t.reshape(-1)
    lo, hi = t.min().item(), t.max().item()
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)} … {format(hi, fmt)}"


def _code_type(st) -> str:
    qp = st.qp
    name = f"{'int' if qp.signed else 'uint'}{qp.bits}"
    return name if st.offset == 0 else f"{name} (stored −{st.offset} as {DTYPE[st.dtype]})"


def layer_bytes(layer: IntLayer) -> dict[str, int]:
    """Storage of one layer: weights at 32 / 8 / 4 bits and at its own bit width, int32 bias, rescale params.

    The rescale parameters are, per output channel, M0 (int32) and n (one byte), plus a weight zero point
    (one byte) when the weights are asymmetric, and the input and output zero points (one byte each).
    """
    n_w = layer.weight_codes.numel()
    out = layer.bias.numel()
    params = out * 5 + (out if bool((layer.w_zero != 0).any()) else 0) + 2
    bias = 4 * out
    return {"weights": n_w, "biases": out, "float32": 4 * (n_w + out), "int8": n_w + bias + params,
            "packed4": math.ceil(n_w / 2) + bias + params,
            "as_converted": math.ceil(n_w * layer.w_qp.bits / 8) + bias + params}


def model_bytes(program: IntegerProgram) -> dict[str, int]:
    """Whole-model bytes: ``float32``, ``int8``, ``packed4`` (two 4-bit weights per byte), ``as_converted``."""
    rows = [layer_bytes(op) for op in program.layers]
    return {k: sum(r[k] for r in rows) for k in rows[0]}


def layer_summary(program: IntegerProgram) -> list[dict]:
    """One row per weighted layer: dtypes, S, Z, M, M0, n, clamp, kernel, accumulator headroom, bytes."""
    rows = []
    for op in program.layers:
        qp = op.w_qp
        b = layer_bytes(op)
        rows.append({
            "layer": op.name, "op": op.kind + (" + ReLU (clamp)" if op.relu else ""),
            "input": _code_type(op.x), "weights": f"{'int' if qp.signed else 'uint'}{qp.bits}"
            + (" per channel" if qp.per_channel else ""), "accumulator": "int32", "bias": "int32",
            "output": _code_type(op.y),
            "S_in": float(op.x.qp.scale), "Z_in": int(op.x.qp.zero_point),
            "S_w": _span(qp.scale.double(), ".3g"), "Z_w": _span(qp.zero_point, "d"),
            "S_out": float(op.y.qp.scale), "Z_out": int(op.y.qp.zero_point),
            "M": _span(op.M, ".4g"), "M0": _span(op.M0, "d"), "n": _span(-op.shift, "d"),
            "clamp": f"[{op.lo + op.y.offset}, {op.y.hi + op.y.offset}]",
            "kernel": op.kernel, "max |acc| / 2^31": op.acc_bound / 2 ** 31,
            "bytes float32": b["float32"], "bytes int8": b["int8"], "bytes packed 4-bit": b["packed4"],
        })
    return rows


def explain_multiplier(M: float, acc: int | None = None) -> dict:
    """The multiplier explorer: M as M0·2^−n (M0 in Q31) and how close that is.

    Args:
        M: the real multiplier (0 < M < 1 for almost every layer rescale; M ≥ 1 gives a left shift).
        acc: optionally an int32 accumulator to rescale both ways (float product vs integer result).

    Returns:
        dict with M0, shift, n, the represented value, its absolute and relative error, M0 in hex and
        as a fraction of 2^31, and with ``acc``: ``float_result`` = acc·M and ``int_result`` (None when M ≥ 1
        and acc·2^shift leaves int32, which TFLite leaves undefined and the converter refuses).
    """
    M0, shift = quantize_multiplier(M)
    value = multiplier_value(M0, shift)
    out = {"M": M, "M0": M0, "shift": shift, "n": -shift, "M0_fraction": M0 / 2 ** 31, "M0_hex": f"0x{M0:08X}",
           "value": value, "abs_error": value - M, "rel_error": (value - M) / M}
    if acc is not None:
        out["float_result"] = acc * M
        try:
            out["int_result"] = int(multiply_by_quantized_multiplier(torch.tensor([int(acc)]), M0, shift)[0])
        except ValueError:  # the left shift of M ≥ 1 overflows int32
            out["int_result"] = None
    return out


@dataclass(frozen=True, eq=False)
class LayerWalk:
    """One layer on one example, every step as numbers. ``units`` maps a column to one value per output
    unit (channel-major for convolutions: unit = channel · positions + position)."""

    layer: IntLayer
    x_real: np.ndarray  # the real input the layer sees, S_x·(q_x − Z_x), in the layer's input shape
    q_in: np.ndarray  # its integer codes
    cols: np.ndarray  # stored input rows the weights multiply (one per output position)
    units: dict[str, np.ndarray]
    positions: int  # output positions per channel (1 for a linear layer)
    w_float: np.ndarray  # (out, K) the float weights, flattened in the same (k..., C_in) order as ``cols``

    @property
    def largest_unit(self) -> int:
        """The output unit with the largest float value (where the walk-through starts)."""
        return int(np.argmax(self.units["float_out"]))

    def unit_terms(self, unit: int) -> dict:
        """The dot product behind output ``unit``: each (q_x − Z_x)(q_w − Z_w) term and the sums."""
        op = self.layer
        c, p = divmod(int(unit), self.positions)
        qx = self.cols[p].astype(np.int64) + op.x.offset  # codes
        w = op.weight_t[:, c].to(torch.int64).numpy()
        wz = int(op.w_zero[c])
        qw = w + code_offset(op.w_qp)
        zx = op.x.zero + op.x.offset
        zw = int(op.w_qp.zero_point.reshape(-1)[c if op.w_qp.per_channel else 0])
        prod = (qx - zx) * (qw - zw)
        x_real = (qx - zx) * float(op.x.qp.scale)  # padding holds Z_x: real 0
        return {"channel": c, "position": p, "q_x": qx, "q_w": qw, "Z_x": zx, "Z_w": zw, "products": prod,
                "sum": int(prod.sum()), "bias": int(op.bias[c]), "acc": int(prod.sum()) + int(op.bias[c]),
                "w_zero_stored": wz, "x_real": x_real, "w_float": self.w_float[c],
                "float_products": x_real * self.w_float[c]}


@dataclass(frozen=True, eq=False)
class UnitTrace:
    """One output of one layer on one example, every number of Jacob et al. 2018's integer recipe next to the
    float computation of the same output on the same real input.

    Integer side: the codes' scales and zero points, the int32 sum of (q_x − Z_x)(q_w − Z_w), the int32 bias
    q_b = round(b / (S_w·S_x)), the accumulator, M ≈ M0·2^−n, the headroom shift L, the high multiply, the
    rounding shift, + Z_out, the clamp. Float side: Σ x·w, + b, and the same value in output steps.
    """

    unit: int
    channel: int
    position: int
    layer: str
    kind: str  # "linear" | "conv1d" | "conv2d"
    x_bits: int
    S_x: float
    Z_x: int
    S_w: float  # this channel's weight scale
    Z_w: int
    S_y: float
    Z_y: int
    n_terms: int
    sum: int  # Σ (q_x − Z_x)(q_w − Z_w), int32
    bias_real: float  # b of the float layer
    bias_code: int  # q_b, int32
    acc: int  # sum + q_b
    M: float
    M0: int
    n: int
    L: int  # headroom: acc·2^L before the multiply (folded into M0 at conversion)
    acc_bound: int  # the largest |acc| any input could give this layer
    scaled: int  # acc·2^L
    high: int  # round(acc·2^L · M0 / 2^31)
    shifted: int  # round(high / 2^(n + L)), halves away from zero
    plus_zero: int  # shifted + Z_out
    lo: int  # the clamp, in codes
    hi: int
    relu: bool
    out: int  # q_out
    real_out: float  # S_out·(q_out − Z_out)
    fq_code: int  # the fake-quant layer's code of the same output
    dot: float  # Σ x·w in float
    pre: float  # Σ x·w + b in float (before a ReLU)
    y_float: float  # the float layer's output (after its ReLU)
    diff: float  # real_out − y_float
    top: dict  # the ten largest |products|: term, q_x, q_w, product, float x·w

    @property
    def pre_steps(self) -> float:
        """The float pre-activation in output steps, y / S_out."""
        return self.pre / self.S_y

    @property
    def pre_scaled(self) -> float:
        """(y / S_out)·2^(n+L): what ``high`` stands for."""
        return self.pre / self.S_y * 2.0 ** (self.n + self.L)

    @property
    def pre_rounded(self) -> float:
        """round(y / S_out): what ``shifted`` stands for."""
        return float(np.round(self.pre / self.S_y))

    @property
    def diff_steps(self) -> float:
        return self.diff / self.S_y


def trace_unit(walk: LayerWalk, qmodel: nn.Module, unit: int, top: int = 10) -> UnitTrace:
    """Every number behind output ``unit`` of ``walk`` (``walk_through``), for the page's step-by-step table.

    ``qmodel`` is the fake-quantized model the program was converted from (its float bias is b).
    """
    op, u = walk.layer, walk.units
    t = walk.unit_terms(unit)
    c = t["channel"]
    m = dict(qmodel.named_children())[op.name]
    acc, L = int(u["acc"][unit]), op.headroom
    prods = t["products"]
    order = np.argsort(-np.abs(prods))[:top]
    dot = float(t["float_products"].sum())
    b_real = float(m.bias.detach()[c]) if m.bias is not None else 0.0
    return UnitTrace(
        unit=int(unit), channel=c, position=t["position"], layer=op.name, kind=op.kind, x_bits=op.x.qp.bits,
        S_x=float(op.x.qp.scale), Z_x=int(op.x.qp.zero_point),
        S_w=float(op.w_qp.scale.reshape(-1)[c if op.w_qp.per_channel else 0]), Z_w=t["Z_w"],
        S_y=float(op.y.qp.scale), Z_y=int(op.y.qp.zero_point), n_terms=len(prods), sum=t["sum"],
        bias_real=b_real, bias_code=t["bias"], acc=acc, M=float(u["M"][unit]), M0=int(u["M0"][unit]),
        n=int(u["n"][unit]), L=L, acc_bound=op.acc_bound, scaled=acc << L,
        **{k: int(u[col][unit]) for k, col in (("high", "high"), ("shifted", "shifted"), ("plus_zero", "plus_zero"),
                                                ("out", "out_code"), ("fq_code", "fq_code"))},
        lo=op.lo + op.y.offset, hi=op.y.hi + op.y.offset, relu=op.relu, real_out=float(u["real_out"][unit]),
        dot=dot, pre=dot + b_real, y_float=float(u["float_out"][unit]), diff=float(u["diff"][unit]),
        top={"term": order, "q_x": t["q_x"][order], "q_w": t["q_w"][order], "(q_x−Z_x)(q_w−Z_w)": prods[order],
             "float x·w": t["float_products"][order]})


@torch.no_grad()
def example_logits(float_model: nn.Module, qmodel: nn.Module, program: IntegerProgram,
                   x: torch.Tensor) -> dict[str, np.ndarray]:
    """Logits of one example (shape of one input) in the float, fake-quant and integer models, and each model's
    predicted class (the integer one from its codes)."""
    codes = program(x[None])
    out = {"float": float_model(x[None]).numpy()[0], "fake_quant": qmodel(x[None]).numpy()[0],
           "integer": program.dequantize(codes).numpy()[0]}
    out["predicted"] = np.array([int(np.argmax(v)) for v in (out["float"], out["fake_quant"], codes.numpy()[0])])
    return out


def download_record(config: Mapping, mode: str, calibration_examples: int, compare: Mapping, sizes: Mapping,
                    summary: list[dict]) -> dict:
    """The page's JSON download: the setting, the accuracies and logit agreement, bytes and the layer table."""
    return {"config": dict(config), "mode": mode, "calibration_examples": int(calibration_examples),
            "accuracy": {k: compare[k] for k in ("float", "fake_quant", "integer")},
            "logits_identical_fraction": compare["frac_logits_equal"], "max_step_difference": compare["max_step_diff"],
            "bytes": dict(sizes), "layers": summary}


def _float_layer(m: QuantLayer, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    y = m.linear_op(x, weight, m.bias)
    return torch.relu(y) if m.relu else y


@torch.no_grad()
def walk_through(program: IntegerProgram, qmodel: nn.Module, x: torch.Tensor, layer: str) -> LayerWalk:
    """Run ``program`` on one example ``x`` (shape of one input) up to ``layer`` and record every step.

    The float columns apply the same layer in float to the same real input S_x(q_x − Z_x): ``float_out``
    with the float weights, ``fq_code`` the fake-quantized layer's output code (what the integer result
    should match within one step).
    """
    op = program.layer(layer)
    q = program.quantize_input(x.reshape(1, *x.shape).cpu())
    for o in program.ops:
        if o is op:
            break
        q = o(q)
    steps: dict = {}
    out = op(q, steps)
    m = dict(qmodel.named_children())[layer]
    q = channels_first(q)  # PyTorch's layout, for the float layer and for display
    x_real = program.dequantize(q, op.x)
    y_float = _float_layer(m, x_real.to(m.weight.device), m.weight).cpu()
    y_fq = m(x_real.to(m.weight.device)).cpu()  # the fake-quant layer on the same input (+ its ReLU module)
    y_fq = quantize(torch.relu(y_fq) if op.relu else y_fq, op.y.qp)
    channels = op.bias.numel()
    positions = max(1, out[0].numel() // channels)

    def per_unit(t: torch.Tensor) -> np.ndarray:  # (positions, channels) -> channel-major flat
        return t.reshape(positions, channels).t().reshape(-1).numpy()

    def per_channel(t: torch.Tensor) -> np.ndarray:
        return t.reshape(-1, 1).expand(channels, positions).reshape(-1).numpy()

    out_code = per_unit(steps["out"]) + op.y.offset
    units = {
        "raw": per_unit(steps["raw"]), "acc": per_unit(steps["acc"]), "bias": per_channel(op.bias),
        "M": per_channel(op.M), "M0": per_channel(op.M0), "n": per_channel(-op.shift),
        "high": per_unit(steps["high"]), "shifted": per_unit(steps["shifted"]),
        "plus_zero": per_unit(steps["plus_zero"]) + op.y.offset, "out_code": out_code,
        "real_out": (out_code - (op.y.zero + op.y.offset)) * float(op.y.qp.scale),
        "float_out": y_float.reshape(-1).numpy(), "fq_code": y_fq.reshape(-1).numpy(),
    }
    units["diff"] = units["real_out"] - units["float_out"]
    w_float = m.weight.detach().cpu().movedim(1, -1).reshape(channels, -1).numpy()
    return LayerWalk(op, x_real[0].numpy(), (q[0].to(torch.int32) + op.x.offset).numpy(),
                     steps["cols"].numpy(), units, positions, w_float)


@torch.no_grad()
def compare_models(float_model: nn.Module, qmodel: nn.Module, program: IntegerProgram,
                   x: torch.Tensor, y: torch.Tensor) -> dict:
    """Accuracy of the float, fake-quant and integer-only models on (x, y), and how far the integer logits
    are from the fake-quant ones, in quantization steps."""

    y = y.cpu()
    ci = program(x.cpu()).to(torch.int32)  # each model runs once: codes and accuracy from the same pass
    fq_logits = qmodel.eval()(x.to(next(qmodel.parameters()).device)).cpu()
    cf = (quantize(fq_logits, program.output.qp) - program.output.offset).to(torch.int32)
    diff = (ci - cf).abs()

    def accuracy(logits: torch.Tensor) -> float:  # as ``evaluate`` counts it: correct / total
        return int((logits.argmax(1) == y).sum()) / len(y)

    return {"float": evaluate(float_model, x, y).accuracy, "fake_quant": accuracy(fq_logits),
            "integer": accuracy(ci), "max_step_diff": int(diff.max()),
            "frac_logits_equal": float((diff == 0).float().mean()),
            "frac_within_1": float((diff <= 1).float().mean()),
            "pred_agree_fq": float((ci.argmax(1) == cf.argmax(1)).float().mean())}
