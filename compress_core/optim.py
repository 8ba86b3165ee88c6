"""Adam and SGD with momentum, stepped through PyTorch's own functional updates (``torch.optim.adam.adam``,
``torch.optim.sgd.sgd``), the ones ``torch.optim.Adam`` and ``torch.optim.SGD`` call.

Why not the classes: ``torch.optim.Optimizer``'s constructor, ``zero_grad`` and ``step`` pass through
``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` — 0.8 s of one core on a 2-core machine, paid
by the first training in every server process (a cold start's baseline among them), and a wrapper on every step
after it. The functional updates do the same arithmetic without it: with the classes' defaults passed here, the
weights after any number of steps are bit for bit the classes' (tests/test_optim.py checks both against them).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd


class Optimizer(ABC):
    """The part of ``torch.optim.Optimizer`` that training here uses: ``lr`` (settable, for schedules),
    ``zero_grad()`` and ``step()``."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("The optimizer got no trainable parameters.")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def zero_grad(self) -> None:
        """Zero the gradients in place (``set_to_none=False``: their tensors stay, so masks can multiply them)."""
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()

    def _with_grad(self) -> list[int]:
        return [i for i, p in enumerate(self.params) if p.grad is not None]

    @abstractmethod
    def step(self) -> None:
        """One update of every parameter that has a gradient."""


class Adam(Optimizer):
    """``torch.optim.Adam(params, lr, weight_decay=...)`` with its other defaults (betas 0.9/0.999, eps 1e-8, L2
    weight decay added to the gradient, no AMSGrad)."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps = betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        # the step count as the class keeps it: a CPU scalar tensor of the default float dtype
        self.steps = [torch.tensor(0.0, dtype=torch.get_default_dtype()) for _ in self.params]

    @torch.no_grad()
    def step(self) -> None:
        idx = self._with_grad()
        if not idx:
            return
        adam([self.params[i] for i in idx], [self.params[i].grad for i in idx], [self.exp_avg[i] for i in idx],
             [self.exp_avg_sq[i] for i in idx], [], [self.steps[i] for i in idx], foreach=None, fused=None,
             has_complex=any(torch.is_complex(self.params[i]) for i in idx), amsgrad=False, beta1=self.betas[0],
             beta2=self.betas[1], lr=self.lr, weight_decay=self.weight_decay, eps=self.eps, maximize=False)


class SGD(Optimizer):
    """``torch.optim.SGD(params, lr, momentum=..., weight_decay=...)`` with no dampening and no Nesterov."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = float(momentum)
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        idx = self._with_grad()
        if not idx:
            return
        bufs = [self.buffers[i] for i in idx]
        sgd([self.params[i] for i in idx], [self.params[i].grad for i in idx], bufs, foreach=None, fused=None,
            weight_decay=self.weight_decay, momentum=self.momentum, lr=self.lr, dampening=0.0, nesterov=False,
            maximize=False)
        if self.momentum:
            for i, buf in zip(idx, bufs):  # the update fills a list slot on its first step
                self.buffers[i] = buf
