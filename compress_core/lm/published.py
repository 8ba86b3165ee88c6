"""Published results of the methods on the Language models page, shown beside ours as "published", never as ours.

Each figure was read from the reference code's README named in its citation. They are perplexities of 7-billion-
parameter models on WikiText-2 (lower is better); ours are bits per character of a GPT of a few hundred thousand
parameters on pydoc's help texts. The comparison is of the *ordering* of the methods, not of the digits.
"""
from __future__ import annotations

__all__ = ["PRUNING", "WEIGHT_ONLY"]

# github.com/locuslab/wanda, README, "LLaMA-2 results" (Sun et al. 2024): LLaMA-2-7B, WikiText-2 perplexity.
PRUNING = dict(
    citation="Sun et al. 2024 (Wanda), reference code README: LLaMA-2-7B, WikiText-2 perplexity",
    dense=5.12,
    rows=[("unstructured 50 %", {"magnitude": 14.89, "sparsegpt": 6.51, "wanda": 6.42}),
          ("4:8", {"magnitude": 16.48, "sparsegpt": 8.12, "wanda": 7.97}),
          ("2:4", {"magnitude": 54.59, "sparsegpt": 10.17, "wanda": 11.02})],
)

# github.com/qwopqwop200/GPTQ-for-LLaMa, README at commit 3cf64c6 (its later table; an earlier one showed GPTQ 4-bit
# per channel above RTN), "LLaMA-7B": WikiText-2 perplexity of GPTQ (Frantar et al. 2023) against round-to-nearest.
WEIGHT_ONLY = dict(
    citation="GPTQ (Frantar et al. 2023) as run by GPTQ-for-LLaMa, README at commit 3cf64c6: LLaMA-7B, WikiText-2 "
             "perplexity",
    dense=5.68,
    rows=[("4 bits, per channel", {"rtn": 6.29, "gptq": 6.09}),
          ("4 bits, groups of 128", {"gptq": 5.85}),
          ("3 bits, per channel", {"rtn": 25.54, "gptq": 8.07}),
          ("3 bits, groups of 128", {"gptq": 6.61})],
)
