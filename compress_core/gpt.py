"""A tiny GPT: a decoder-only transformer that predicts the next character, in plain PyTorch.

The GPT-2 architecture (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"), written as
Karpathy's nanoGPT writes it (github.com/karpathy/nanoGPT, ``model.py``), at a size a laptop CPU trains in a minute:
token and learned position embeddings, ``layers`` pre-LayerNorm blocks of causal multi-head self-attention and a
4× GELU MLP, each added to the residual stream, a final LayerNorm, and an output head that shares the token
embedding's weights (weight tying, Press & Wolf 2017). No dropout: training here is short and deterministic.

Two choices serve the rest of the lab rather than nanoGPT:

- The model is an ``nn.Sequential`` of named children (``embed``, ``block1`` … ``blockL``, ``ln_f``, ``head``), as
  every model in ``compress_core.models`` is, and the query, key, value and output projections are separate
  ``nn.Linear`` layers (``block1.attn.q``, ``.k``, ``.v``, ``.proj``; ``block1.mlp.fc``, ``.fc2``) where nanoGPT fuses
  the first three: code that walks ``named_modules()`` for Linear layers (pruning, quantization, GPTQ-style
  per-layer methods) sees each of them. The tied head is not a Linear and owns no parameter: it reads the embedding's
  weight, so the tie survives ``deepcopy``, ``state_dict`` and ``load_state_dict``.
- The logits come out as (batch, vocabulary, time): the class dimension second, where ``F.cross_entropy`` and
  ``argmax(1)`` look for it, so training and evaluation written for classifiers score every next character unchanged.

An attention module's ``heads`` may be fewer than width / head dim: ``pruning.gpt_structured`` cuts whole heads out
(their rows of q, k, v and columns of proj), so the head dim is read from the query's size, never from the width.

Each attention module has a ``kv_hook`` (None by default): a callable ``(k, v) -> (k, v)`` on the keys and values,
each (batch, heads, time, head dim), applied before attention; KV-cache quantization plugs in there.

Usage::

    model = build_model("gpt", load_dataset("pydoc"))   # or a spec: "gpt:4x128h4" (layers x width, heads)
    model(x).shape                                     # (B, 97, 64) logits for (B, 64) token ids
    model.block1.attn.kv_hook = lambda k, v: (k.half().float(), v.half().float())
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Block", "CausalSelfAttention", "Embed", "MLP", "TiedHead", "build_gpt"]


class Embed(nn.Module):
    """Token embedding plus a learned position embedding: (B, T) int64 ids -> (B, T, width)."""

    input_dtype = torch.long  # what the model reads (``models.summary`` feeds it zeros of this type)

    def __init__(self, vocab: int, context: int, width: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.pos.num_embeddings:
            raise ValueError(f"This GPT reads at most {self.pos.num_embeddings} tokens at once (got {t}).")
        return self.tok(idx) + self.pos(torch.arange(t, device=idx.device))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions ≤ t only.

    softmax(q kᵀ / √d_head + mask) v per head, with −∞ above the diagonal of the mask: what
    ``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` computes, written out so the scores can be seen.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"The width ({width}) must be a multiple of the number of heads ({heads}).")
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)
        self.proj = nn.Linear(width, width)
        # (k, v) -> (k, v) on the (B, heads, T, head dim) keys and values before attention, e.g. a KV-cache quantizer
        self.kv_hook: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.heads
        q, k, v = self.q(x), self.k(x), self.v(x)
        c = q.shape[-1]  # heads × head dim: the width, or less once heads are cut out (pruning.gpt_structured)

        def heads(z: torch.Tensor) -> torch.Tensor:  # (B, T, c) -> (B, heads, T, c / heads)
            return z.view(b, t, h, c // h).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        if self.kv_hook is not None:
            k, v = self.kv_hook(k, v)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // h))
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # what position t must not see
        att = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)  # heads side by side again
        return self.proj(y)


class MLP(nn.Module):
    """width -> 4·width -> GELU -> width."""

    def __init__(self, width: int):
        super().__init__()
        self.fc, self.act, self.fc2 = nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc(x)))


class Block(nn.Module):
    """A pre-LN transformer block: x + attn(ln1(x)), then + mlp(ln2(·))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(width), CausalSelfAttention(width, heads)
        self.ln2, self.mlp = nn.LayerNorm(width), MLP(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TiedHead(nn.Module):
    """Logits from the token embedding's own weight (no parameter of its own): (B, T, width) -> (B, V, T).

    The embedding is held outside the module tree (not a child), so ``named_modules``, ``parameters`` and
    ``state_dict`` see it once, under ``embed.tok``; ``deepcopy`` copies the model's ``__dict__``s with one memo, so
    the copy's head reads the copy's embedding.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        object.__setattr__(self, "_embedding", embedding)  # bypasses nn.Module's registration on purpose

    @property
    def tied_weight(self) -> torch.Tensor:
        return self._embedding.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self._embedding.weight).transpose(1, 2)

    def extra_repr(self) -> str:
        v, w = self._embedding.weight.shape
        return f"in_features={w}, out_features={v}, tied to the token embedding"


def _init(model: nn.Sequential, layers: int) -> None:
    """nanoGPT's initialisation: N(0, 0.02) weights and embeddings, zero biases, and the projections into the
    residual stream scaled by 1/√(2·layers) (GPT-2: the stream's variance then does not grow with depth)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            std = 0.02 / math.sqrt(2 * layers) if name.endswith((".proj", ".fc2")) else 0.02
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def build_gpt(vocab: int, context: int, layers: int, width: int, heads: int) -> nn.Sequential:
    """A freshly initialised GPT (from the global generator: seed it first, as ``models.build_model`` does)."""
    embed = Embed(vocab, context, width)
    children = [("embed", embed)]
    children += [(f"block{i}", Block(width, heads)) for i in range(1, layers + 1)]
    children += [("ln_f", nn.LayerNorm(width)), ("head", TiedHead(embed.tok))]
    model = nn.Sequential(OrderedDict(children))
    _init(model, layers)
    return model
