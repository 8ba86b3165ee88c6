"""The inputs each weighted layer sees, as rows of a matrix: what calibration-based methods work from.

GPTQ and SparseGPT (Frantar et al. 2023; Frantar & Alistarh 2023) need a layer's input Gram matrix H = XᵀX,
AWQ (Lin et al. 2024) and SmoothQuant (Xiao et al. 2023) the per-input-channel activation magnitudes, and Wanda
(Sun et al. 2024) the per-input-channel norms ‖X_j‖₂. All of them read one thing: for a layer computing
y = W x (W of shape (out, in)), the matrix X of shape (rows, in) whose rows are the inputs x it saw.

- A ``Linear`` layer's rows are its inputs, every leading dimension flattened (a transformer's tokens are rows).
- A ``Conv1d`` / ``Conv2d`` layer is a matrix product over unfolded patches (im2col): W reshaped to
  (out, in·k…) times each patch. Its rows are those patches, so every method here works on convolutions too,
  with ``weight_matrix`` giving the (out, in·k…) view of the weight.

The inputs are captured once from the float model by forward hooks (no change to the model) and shared by every
method: "calibration activations are captured once per (model, data, n samples)". ``max_rows`` caps the rows kept
per layer (an even subsample, deterministic), so memory stays bounded on long sequences.

Usage::

    inputs = capture_inputs(model, ds.x_train[:256])      # {"fc1": (rows, 64) float32, ...}
    w2d = weight_matrix(model.fc1)                         # (out, in) view, (out, in·k·k) for a conv
    stats = input_stats(inputs["fc1"])                     # Gram matrix, channel norms and max magnitudes
    output_error(w2d, w2d_pruned, stats.gram)              # ‖WX − ŴX‖²/rows: how far the layer's outputs moved
    U, dead = inverse_hessian_factor(stats.gram)           # Cholesky of (H + λI)⁻¹: GPTQ's and SparseGPT's step
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InputStats", "LINEAR_LIKE", "capture_inputs", "input_stats", "inverse_hessian_factor", "layers_of",
           "output_error", "set_weight_matrix", "weight_matrix"]

LINEAR_LIKE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def layers_of(model: nn.Module, names=None) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear/Conv layer in forward-registration order, or of ``names`` only."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, LINEAR_LIKE)]
    if names is None:
        return found
    wanted = set(names)
    missing = wanted - {n for n, _ in found}
    if missing:
        raise ValueError(f"The model has no Linear or Conv layer named {', '.join(sorted(missing))}.")
    return [(n, m) for n, m in found if n in wanted]


def _rows(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer input ``x`` as rows of the matrix product the layer computes."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(2)  # (N, C, 1, L): unfold as a 2-D conv of height 1
        kernel, stride = (1, module.kernel_size[0]), (1, module.stride[0])
        padding, dilation = (0, module.padding[0]), (1, module.dilation[0])
    else:
        kernel, stride, padding, dilation = module.kernel_size, module.stride, module.padding, module.dilation
    if module.groups != 1 or isinstance(padding, str):
        raise ValueError("Grouped convolutions and string padding are not supported by the row view.")
    cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # (N, in·k…, positions)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The layer's weight as the (out, in·k…) matrix that multiplies its rows (a view: no copy)."""
    return module.weight.reshape(module.weight.shape[0], -1)


@torch.no_grad()
def set_weight_matrix(module: nn.Module, w2d: torch.Tensor) -> None:
    """Write a (out, in·k…) matrix back into the layer's weight, in its own shape."""
    module.weight.copy_(w2d.reshape(module.weight.shape).to(module.weight.dtype))


@torch.no_grad()
def capture_inputs(model: nn.Module, x: torch.Tensor, names=None, *, batch_size: int = 256,
                   max_rows: int = 8192) -> dict[str, torch.Tensor]:
    """The rows each Linear/Conv layer of ``model`` sees on the inputs ``x``, float32 on the CPU.

    Args:
        model: any module; it is run in eval mode and left as it was (hooks removed, mode restored).
        x: a batch of model inputs (images, signals, points or token windows).
        names: the layers to capture (default: all of them).
        batch_size: inputs per forward pass.
        max_rows: at most this many rows are kept per layer, taken evenly spaced over all rows seen.

    Raises ValueError for empty inputs.
    """
    if len(x) == 0:
        raise ValueError("Calibration needs at least one example; got none.")
    layers = layers_of(model, names)
    seen: dict[str, list[torch.Tensor]] = {n: [] for n, _ in layers}

    def hook(name, module):
        def fn(_mod, args):
            seen[name].append(_rows(module, args[0].detach().float()).cpu())
        return fn

    handles = [m.register_forward_pre_hook(hook(n, m)) for n, m in layers]
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size].to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = {}
    for name, parts in seen.items():
        rows = torch.cat(parts) if parts else torch.zeros(0, weight_matrix(dict(layers)[name]).shape[1])
        if len(rows) > max_rows:
            rows = rows[torch.linspace(0, len(rows) - 1, max_rows).round().long()]
        out[name] = rows
    return out


@dataclass(frozen=True, eq=False)
class InputStats:
    """What the calibration-based methods read from a layer's input rows X (rows, in).

    ``gram``: XᵀX / rows (the Hessian of the layer-wise squared error up to a factor 2, GPTQ's H);
    ``norm``: ‖X_j‖₂ over rows per input channel (Wanda); ``absmax``: max |X_j| (SmoothQuant);
    ``absmean``: mean |X_j| (AWQ's activation salience); ``rows``: how many rows they came from.
    """

    gram: torch.Tensor
    norm: torch.Tensor
    absmax: torch.Tensor
    absmean: torch.Tensor
    rows: int


def input_stats(rows: torch.Tensor) -> InputStats:
    """The statistics of one layer's input rows (float64 Gram matrix, for the Cholesky factorisations)."""
    if rows.ndim != 2 or len(rows) == 0:
        raise ValueError("Input statistics need a non-empty (rows, channels) matrix.")
    x = rows.double()
    return InputStats(gram=(x.T @ x) / len(x), norm=x.norm(dim=0).float(), absmax=x.abs().amax(0).float(),
                      absmean=x.abs().mean(0).float(), rows=len(x))


def output_error(w: torch.Tensor, w_hat: torch.Tensor, gram: torch.Tensor) -> float:
    """The layer-wise reconstruction error ‖XWᵀ − XŴᵀ‖²_F / rows, from the Gram matrix XᵀX / rows alone.

    The objective SparseGPT and GPTQ minimise layer by layer: with D = W − Ŵ (out, in), the error is
    Σ_rows ‖D x‖² / rows = trace(D G Dᵀ), G = ``input_stats(rows).gram``. Working from G costs O(out·in²)
    whatever the number of rows, and the rows need not be kept. Computed in float64; ``w`` and ``w_hat`` may be
    a layer's own weight shape (conv) or its (out, in·k…) matrix.
    """
    d = (w.detach().double() - w_hat.detach().double()).reshape(w.shape[0], -1)
    g = gram.double()
    if d.shape[1] != g.shape[0]:
        raise ValueError(f"The weights have {d.shape[1]} inputs per row but the Gram matrix is {tuple(g.shape)}.")
    # trace(D G Dᵀ) = Σ (D G) ⊙ D; clamped at 0 against rounding when Ŵ ≈ W (G is positive semi-definite)
    return max(float(((d @ g) * d).sum()), 0.0)


def inverse_hessian_factor(gram: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, dead): the upper Cholesky factor of (H + λI)⁻¹ in float64, with λ = ``damp`` · mean(diag H), and the
    bool vector of input columns that never fired (diag H = 0; their diagonal is set to 1 first, as in the
    authors' code, so that the factorisation exists and they stay uncoupled from the others)."""
    h = gram.detach().to("cpu", torch.float64).clone()
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        raise ValueError(f"The Gram matrix must be square (got shape {tuple(h.shape)}).")
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    h.diagonal().add_(damp * float(torch.diagonal(h).mean()))
    chol, info = torch.linalg.cholesky_ex(h)
    if int(info):
        raise ValueError("The dampened Gram matrix is not positive definite; raise damp (now "
                         f"{damp:g}) or calibrate on more rows.")
    return torch.linalg.cholesky(torch.cholesky_inverse(chol), upper=True), dead
