"""What the Language models page and ``bench/bench_llm.py`` show: many variants scored on the same windows.

Each function takes the float model, its data set and one ``Calibration`` (captured once), and returns plain
results: ``scores`` a dict of paired ``Score``s (float first, the reference of every difference), ``alpha_curve``
SmoothQuant's W8A8 bits per character against α, ``layer_objectives`` GPTQ's and AWQ's layer-wise error against
round-to-nearest's, ``smoothing_view`` one layer's activation and weight channel maxima before and after smoothing,
and ``samples`` what each variant writes after a prompt.

Usage::

    calib = calibrate(model, ds)
    res = scores(model, ds, ["rtn_w3_g128", "gptq_w3_g128"], calib)
    res["gptq_w3_g128"].diff, res["gptq_w3_g128"].outcome        # vs float32, paired over the test windows
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..layer_inputs import layers_of, weight_matrix
from ..quant.smoothquant import smooth_scale
from ..quant.weight_only import layer_errors
from ..text import generate
from .variants import Calibration, Score, build, label, score

__all__ = ["ALPHAS", "BENCH_KEYS", "compare", "layer_objectives", "samples", "scores", "smoothing_view",
           "alpha_curve"]

BENCH_KEYS = ("rtn_w4_g128", "gptq_w4_g128", "awq_w4_g128", "rtn_w3_g128", "gptq_w3_g128", "awq_w3_g128",
              "w8a8_per_tensor",
              "w8a8_smoothquant", "magnitude_50", "wanda_50", "sparsegpt_50", "magnitude_2_4", "wanda_2_4", "kv4")
ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))

Report = Callable[[float, str], None]


def _quiet(fraction: float, text: str) -> None:
    return None


def scores(model: nn.Module, dataset, keys: Sequence[str], calib: Calibration | None,
           report: Report = _quiet) -> dict[str, Score]:
    """{"float": its Score, key: Score paired with float, …} on the test windows, in the order given."""
    report(0.0, "scoring float32")
    ref, ref_windows = score(model, dataset, key="float")
    out = {"float": ref}
    variants = [k for k in keys if k != "float"]
    for i, key in enumerate(variants):
        report((i + 0.5) / (len(variants) + 1), f"building {label(key)}")
        out[key] = score(build(model, key, calib), dataset, ref_windows, key)[0]
    report(1.0, "done")
    return out


def compare(a: Score, b: Score) -> str:
    """Which of two variants scored against the same reference is better, by the honest-comparison rule applied to
    their difference ("a" lower, "b" lower, or "no difference"): the two paired differences' standard errors
    combined (a conservative bound: it ignores that both were measured on the same windows)."""
    from ..stats import NOISE_SE

    d = a.bpc - b.bpc
    se = (a.diff_se ** 2 + b.diff_se ** 2) ** 0.5
    if se == 0 or abs(d) <= NOISE_SE * se:
        return "no difference"
    return "a" if d < 0 else "b"


def alpha_curve(model: nn.Module, dataset, calib: Calibration, alphas: Sequence[float] = ALPHAS,
                report: Report = _quiet) -> dict[str, Score]:
    """W8A8 (per-tensor activations) after SmoothQuant at each α, plus plain per-tensor and per-token W8A8."""
    keys = ["w8a8_per_tensor", "w8a8_per_token"] + [f"w8a8_smoothquant_a{a:g}" for a in alphas]
    return scores(model, dataset, keys, calib, report)


def layer_objectives(model: nn.Module, calib: Calibration, bits: int, group: int | str) -> list[dict]:
    """Per layer: ‖XWᵀ − XŴᵀ‖²/N under RTN, GPTQ and AWQ at ``bits`` and ``group`` (``quant.weight_only``)."""
    return layer_errors(model, calib.rows, bits=bits, group_size=group)


def smoothing_view(model: nn.Module, calib: Calibration, layer: str, alpha: float) -> dict:
    """One layer's per-input-channel maxima of |X| and |W| before and after SmoothQuant's scale s at ``alpha``
    (X/s and W·s: their product, the layer's output, is unchanged)."""
    module = dict(layers_of(model))[layer]
    if not isinstance(module, nn.Linear):
        raise ValueError("The smoothing view shows Linear layers.")
    x_max = calib.rows[layer].abs().amax(0)
    w_max = weight_matrix(module).detach().abs().amax(0)
    s = smooth_scale(x_max, w_max, alpha)
    return {"x": x_max.numpy(), "w": w_max.numpy(), "x_smooth": (x_max / s).numpy(), "w_smooth": (w_max * s).numpy(),
            "scale": s.numpy()}


def samples(model: nn.Module, dataset, keys: Sequence[str], calib: Calibration | None, prompt: str, n_chars: int,
            temperature: float, seed: int) -> dict[str, str]:
    """What each variant writes after ``prompt`` with the same seed (the same random draws: where the text
    differs, the model's probabilities did)."""
    out = {}
    with torch.no_grad():
        for key in keys:
            m = model if key == "float" else build(model, key, calib)
            out[key] = generate(m, dataset, prompt, n_chars, temperature, seed)
    return out
