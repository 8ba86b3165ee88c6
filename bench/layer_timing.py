"""What bench_llm_quant.py and bench_llm_pruning.py share: a best-of-n timer and the issue's yardstick layer (a
128×512 weight and 4,096 correlated input rows)."""
from __future__ import annotations

import time

import torch


def best_ms(fn, repeat: int = 7) -> float:
    """The fastest of ``repeat`` calls of ``fn`` (after one warm-up call), in milliseconds."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000, 2)


def yardstick_layer(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (4096, 512) correlated input rows, w (128, 512) weight), seeded."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4096, 512, generator=g) @ (torch.eye(512) + 0.05 * torch.randn(512, 512, generator=g))
    return x, torch.randn(128, 512, generator=g)
