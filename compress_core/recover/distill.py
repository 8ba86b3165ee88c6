"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

A compressed student learns from the float teacher's softened outputs as well as from the labels:

    loss = α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)) + (1 − α) · CE(z_s, y)

with z_t the teacher's logits, z_s the student's, T the temperature and α the weight of the soft targets. The
gradient of the soft term scales as 1/T², so multiplying it by T² keeps its share of the gradient the same whatever
T is (the paper, §2). The KL divergence is summed over the classes (dimension 1) and averaged over everything else:
the examples, and a language model's positions.

Training reuses ``compress_core.train.train`` (the same seeded batch order, masks held at zero): with α = 0 the loss
is the cross-entropy and the run is plain fine-tuning, bit for bit. That is the fair control for a distilled
student: the same student trained as long without the teacher (``Distill.control()`` in the recipes).

Usage::

    teacher = get_baseline("digits", "cnn").model
    distill(student, teacher, ds, TrainConfig(epochs=2, lr=1e-3), temperature=4.0, alpha=0.9, mask=mask)
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset
from ..train import History, TrainConfig, train

__all__ = ["distill", "distillation_loss", "soft_target_loss"]


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(z_t/T) ‖ softmax(z_s/T)), summed over the classes (dimension 1), averaged over the rest."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y) (Hinton et al. 2015).

    Args:
        student_logits, teacher_logits: (N, classes) or a language model's (N, vocabulary, positions).
        targets: the labels, (N,) or (N, positions).
        temperature: T > 0; above 1 it softens both distributions, showing the teacher's "dark knowledge".
        alpha: α in [0, 1], the weight of the soft targets; 0 is plain cross-entropy.
    """
    soft = soft_target_loss(student_logits, teacher_logits.detach(), temperature)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * F.cross_entropy(student_logits, targets)


def distill(student: nn.Module, teacher: nn.Module, dataset: Dataset, config: TrainConfig, *, temperature: float,
            alpha: float, seed: int = 0, mask: Mapping[str, torch.Tensor] | None = None,
            device: torch.device | None = None) -> History:
    """Train ``student`` in place on ``dataset`` with the distillation loss against ``teacher`` (not changed; it
    runs in eval mode without gradients). ``mask`` keeps pruned weights at zero, as in ``train``; ``student`` may be
    a fake-quantized network (``quant.QuantLayer``s), which then trains through the straight-through estimator.

    Raises ValueError for a temperature that is not positive or an α outside [0, 1]."""
    if not temperature > 0:
        raise ValueError(f"The temperature must be above 0 (got {temperature!r}).")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"α must be from 0 to 1 (got {alpha!r}).")
    device = device or next((p.device for p in student.parameters()), torch.device("cpu"))
    teacher = teacher.to(device).eval()

    def loss_fn(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z_t = teacher(x)
        return distillation_loss(out, z_t, y, temperature, alpha)

    return train(student, dataset, config, seed=seed, mask=mask, device=device, loss_fn=loss_fn)
