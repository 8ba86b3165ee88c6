"""What a compressed network costs to store and to run once: bytes in a named format, multiply-adds, energy.

**Storage.** Each weighted layer stores its surviving weights as values of ``value_bits`` (32 = float32; b for
b-bit quantization codes or k-means codes) in whichever of three layouts is smallest for its mask:

- *dense*: every position, pruned ones as zeros (no index);
- *bitmask*: the survivors' values + one keep bit per position;
- *CSR*: the survivors' values + the smallest unsigned column index and row pointers
  (``compress_core.pruning.formats.csr_bytes``, conv kernels flattened per filter).

Plus the layer's side information (per-channel scales and zero points, or a k × float32 codebook) and its bias
(float32, or int32 in the integer path: 4 bytes either way). Nothing is rounded down: a layer's code bits are
rounded up to whole bytes.

**Energy per inference** (batch 1), from Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V):
one multiply and one add per surviving weight per output position, in float32 (3.7 + 0.9 pJ) or, when weights
*and* activations are integers, an 8-bit multiply (0.2 pJ) accumulated by a 32-bit integer add (0.1 pJ, same
table: products accumulate in int32); and every stored weight byte read once from DRAM (640 pJ per 32 bits).
``ENERGY_PJ`` holds the table, ``LEFT_OUT`` what the model ignores.

**The GPT** (``models.is_language_model``): every nested Linear (``block1.attn.q`` … ``block1.mlp.fc2``) is costed
as above, with its multiply-adds *per token* (one output position per token); the token and position embeddings
and the LayerNorms are not compressed by any step here and are counted as float32 bytes (rows whose layout says
so); the tied head stores nothing (it reads the token embedding) but costs vocabulary × width multiply-adds per
token. ``GPT_LEFT_OUT`` says what that leaves out (the attention scores).

Usage::

    rows = layer_costs(model, mask, ds.input_shape, value_bits=4, side_bits={"0.weight": 16 * 32})
    total = summarize(rows)    # {"bytes", "macs", "energy_pj", "compute_pj", "memory_pj", "format"}
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..models import is_language_model, summary, weighted_layers
from ..pruning.formats import csr_bytes

__all__ = ["ENERGY_PJ", "ENERGY_SOURCE", "GPT_LEFT_OUT", "LEFT_OUT", "layer_costs", "output_positions", "summarize"]

ENERGY_PJ = {
    "fp32_mult": 3.7, "fp32_add": 0.9,       # 32-bit float multiply / add
    "int8_mult": 0.2, "int8_add": 0.03,      # 8-bit integer multiply / add
    "int32_add": 0.1,                        # 32-bit integer add: the int32 accumulation of int8 products
    "sram_read_32b": 5.0,                    # 32-bit read from an 8 KB SRAM
    "dram_read_32b": 640.0,                  # 32-bit read from DRAM
}
ENERGY_SOURCE = ("M. Horowitz, \"1.1 Computing's energy problem (and what we can do about it)\", ISSCC 2014, "
                 "45 nm process, 0.9 V")
LEFT_OUT = ("activations' memory traffic (only weights are read), index decoding and codebook look-ups, "
            "control, caches and leakage; a modern process (7 nm and below) costs several times less per "
            "operation. Pruned weights are assumed skipped (a sparse engine such as EIE); a dense engine would "
            "still pay for them. Sub-8-bit products are priced as 8-bit ones.")
GPT_LEFT_OUT = ("On the GPT, multiply-adds are per token: the Linear layers' and the tied head's; the attention "
                "scores (q·kᵀ and the weighted sum of values, which grow with the position in the context), the "
                "softmax, GELU and LayerNorm arithmetic are not counted. Embeddings and LayerNorms are stored as "
                "float32 by every recipe.")


def output_positions(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """{layer name: output positions per example} (1 for a Linear layer; H_out·W_out or L_out for a conv), from
    the layer table ``models.summary`` measures (a CPU model: the networks here are). On the GPT every Linear
    has one output position per token: its costs are per token."""
    if is_language_model(model):
        return {name: 1 for name, _ in weighted_layers(model)}
    shapes = {r["name"]: r["output_shape"] for r in summary(model, input_shape)["layers"]}
    return {name: math.prod(shapes[name][1:]) if len(shapes[name]) > 1 else 1 for name, _ in weighted_layers(model)}


def _layouts(mask: torch.Tensor, value_bits: int) -> dict[str, tuple[int, int]]:
    """{layout: (value bytes, index bytes)} of one layer's survivors."""
    n, kept = mask.numel(), int(mask.count_nonzero())
    return {"dense": (math.ceil(n * value_bits / 8), 0),
            "bitmask": (math.ceil(kept * value_bits / 8), math.ceil(n / 8)),
            "CSR": (math.ceil(kept * value_bits / 8), csr_bytes(mask, value_bytes=0))}


def layer_costs(model: nn.Module, mask: Mapping[str, torch.Tensor] | None, input_shape: tuple[int, ...], *,
                value_bits: int = 32, side_bits: Mapping[str, int] | None = None, integer: bool = False
                ) -> list[dict]:
    """One row per weighted layer of ``model`` (a float network: the pruned or shrunk one, before quantization).

    Args:
        mask: {"<layer>.weight": 0/1 tensor}, or None (every weight kept).
        value_bits: bits per stored weight value (32, or the code width of quantization or sharing).
        side_bits: {"<layer>.weight": bits of that layer's side information} (scales, zero points, codebook).
        integer: the products run on integers (weights and activations quantized): int8 MACs in the energy.

    Rows: layer, shape, weights (positions), kept, value_bits, layout, values/index/side/bias bytes, bytes,
    macs, compute_pj, memory_pj, energy_pj.
    """
    positions = output_positions(model, input_shape)
    mac_pj = (ENERGY_PJ["int8_mult"] + ENERGY_PJ["int32_add"]) if integer else \
        (ENERGY_PJ["fp32_mult"] + ENERGY_PJ["fp32_add"])
    rows = []
    for name, m in weighted_layers(model):
        key = f"{name}.weight"
        w = m.weight.detach()
        mk = mask[key].detach().cpu() if mask is not None and key in mask else torch.ones(w.shape)
        layouts = _layouts(mk, value_bits)
        layout = min(layouts, key=lambda k: sum(layouts[k]))  # ties: dense first, then bitmask
        values, index = layouts[layout]
        side = math.ceil(int((side_bits or {}).get(key, 0)) / 8)
        bias = 4 * m.bias.numel() if getattr(m, "bias", None) is not None else 0
        kept = int(mk.count_nonzero())
        total = values + index + side + bias
        macs = kept * positions[name]
        compute, memory = macs * mac_pj, math.ceil(total / 4) * ENERGY_PJ["dram_read_32b"]
        rows.append(dict(layer=name, shape="×".join(map(str, w.shape)), weights=w.numel(), kept=kept,
                         value_bits=value_bits, layout=layout, values_bytes=values, index_bytes=index,
                         side_bytes=side, bias_bytes=bias, bytes=total, macs=macs, compute_pj=compute,
                         memory_pj=memory, energy_pj=compute + memory))
    if is_language_model(model):
        rows += _float_rows(model, mac_pj=ENERGY_PJ["fp32_mult"] + ENERGY_PJ["fp32_add"])
    return rows


def _float_rows(model: nn.Module, mac_pj: float) -> list[dict]:
    """The GPT's parameters outside its Linear layers, stored as float32: the token and position embeddings and
    every LayerNorm (weight and bias), and the tied head (no bytes of its own; vocabulary × width MACs per token,
    in float: the head is never quantized here)."""
    rows = []

    def row(name: str, shape: tuple, weights: int, bias: int, macs: int, what: str) -> dict:
        values = 4 * weights
        total = values + 4 * bias
        compute, memory = macs * mac_pj, math.ceil(total / 4) * ENERGY_PJ["dram_read_32b"]
        return dict(layer=name, shape="×".join(map(str, shape)), weights=weights, kept=weights, value_bits=32,
                    layout=what, values_bytes=values, index_bytes=0, side_bytes=0, bias_bytes=4 * bias, bytes=total,
                    macs=macs, compute_pj=compute, memory_pj=memory, energy_pj=compute + memory, float_only=True)

    for name, m in model.named_modules():
        if isinstance(m, nn.Embedding):
            rows.append(row(name, tuple(m.weight.shape), m.weight.numel(), 0, 0, "float32 (embedding)"))
        elif isinstance(m, nn.LayerNorm):
            rows.append(row(name, tuple(m.weight.shape), m.weight.numel(), m.bias.numel() if m.bias is not None
                            else 0, 0, "float32 (LayerNorm)"))
        elif hasattr(m, "tied_weight"):
            v, w = m.tied_weight.shape
            rows.append(row(name, (v, w), 0, 0, v * w, "tied to embed.tok"))
    return rows


def summarize(rows: list[dict]) -> dict:
    """Totals of ``layer_costs`` rows, and the format's name: the value type and the layouts used (of the
    compressible layers; a GPT's float32 embeddings and LayerNorms are named after them)."""
    squeezed = [r for r in rows if not r.get("float_only")]
    layouts = sorted({r["layout"] for r in squeezed}, key=["dense", "bitmask", "CSR"].index)
    bits = squeezed[0]["value_bits"] if squeezed else 32
    value = "float32" if bits == 32 else f"{bits}-bit codes"
    keys = ("bytes", "macs", "compute_pj", "memory_pj", "energy_pj", "weights", "kept")
    extra = " + float32 embeddings and LayerNorms" if len(squeezed) < len(rows) else ""
    return dict({k: sum(r[k] for r in rows) for k in keys}, format=f"{value}, " + " / ".join(layouts) + extra)
