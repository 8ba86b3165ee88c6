"""A small pre-LN transformer block for the LLM-quantization tests (independent of the project's GPT model).

Layer names follow a GPT's: ``attn.q``, ``attn.k``, ``attn.v``, ``attn.proj``, ``mlp.fc``, ``mlp.fc2``, with
``ln1``/``ln2`` in front of attention and MLP, and the attention module applies ``kv_hook(k, v)`` when set.
``outliers`` makes a few LayerNorm channels large (γ ≫ 1), as the activation outliers of real LLMs.
"""
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.proj = (nn.Linear(d, d) for _ in range(4))
        self.kv_hook = None

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (m(x).reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for m in (self.q, self.k, self.v))
        if self.kv_hook is not None:
            k, v = self.kv_hook(k, v)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.fc, self.act, self.fc2 = nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc(x)))


class Block(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4, hidden: int = 128):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), Attention(d, heads)
        self.ln2, self.mlp = nn.LayerNorm(d), MLP(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


FOLD = {"ln1": ["attn.q", "attn.k", "attn.v"], "ln2": ["mlp.fc"]}  # the layers each LayerNorm feeds
# plus AWQ's v → proj fold: attention mixes v over tokens only, so v's output channel j is proj's input channel j
FOLD_V = {**FOLD, "attn.v": ["attn.proj"]}


def make_block(seed: int = 0, d: int = 32, outliers: tuple[int, ...] = (3, 17), gain: float = 25.0) -> Block:
    torch.manual_seed(seed)
    block = Block(d).eval()
    with torch.no_grad():
        for ln in (block.ln1, block.ln2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_(0, 0.1)
            ln.weight[list(outliers)] *= gain
    return block


def block_inputs(seed: int = 1, n: int = 8, t: int = 16, d: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, d, generator=g)
