"""The guided lesson's numbers: each step's result, computed by the topic modules (nothing re-implemented here).

The Lesson page walks a class through compression in eight steps, each on the data set and model where its effect
shows (the page's plan, its steps and the pages they open, is ``ui.topics.lesson_plan``). This module holds what the
steps measure, as pure functions of a baseline and its data set:

1. ``cost``: what the network costs — parameters, bytes, multiply-adds (``experiments.accounting``) and measured
   time per inference (``pruning.formats.time_call``).
2. (the taxonomy of pruning methods: words and a figure only, nothing measured)
3. ``retraining``: accuracy against sparsity with and without fine-tuning (``pruning.accuracy_curves``).
4. and 5. ``speed``: unstructured vs structured pruning, measured (``pruning.latency_report``).
6. ``lottery_config``: the lesson's lottery-ticket run (``lottery.run_lottery`` gives its masks and verdict).
7. ``quantization``: post-training vs quantization-aware accuracy against bit width (``quant.bits_sweep``).
8. ``language_model``: a tiny GPT's 3-bit weights by rounding, GPTQ and AWQ, and the text each writes (``lm``).

Usage::

    b, ds = get_baseline("digits", "mlp"), load_dataset("digits")
    cost(b, ds)["macs"], retraining(b, ds)[0]
"""
from __future__ import annotations

import torch

from . import lm
from .baselines import Baseline
from .data import Dataset
from .experiments.accounting import layer_costs, summarize
from .lottery.report import settings_config
from .pruning import accuracy_curves, latency_report, prune_to
from .pruning.formats import LATENCY_REPEATS, time_call
from .quant import QuantConfig, bits_sweep
from .train import TrainConfig

__all__ = ["LLM_KEYS", "LLM_TEXT", "LOTTERY_ROUNDS", "QUANT_BITS", "RETRAIN_GRID", "SPEED_BATCH", "SPEED_REPEATS",
           "cost", "language_model", "lottery_config", "quantization", "retraining", "speed"]

RETRAIN_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
LOTTERY_ROUNDS = 6
QUANT_BITS = (1, 2, 3, 4, 6, 8)
SPEED_BATCH, SPEED_REPEATS = 256, 20  # steps 4 and 5 time a batch: per example, the overheads of a call spread out
LLM_KEYS = ("rtn_w3_g128", "gptq_w3_g128", "awq_w3_g128")  # step 8's variants, each against float32
LLM_TEXT = ("float", "rtn_w2_g128", "gptq_w2_g128")  # and the text at 2 bits, where rounding breaks down


@torch.no_grad()
def cost(baseline: Baseline, dataset: Dataset, batch: int = 256) -> dict:
    """What the dense network costs: parameters, float32 bytes, multiply-adds per inference, measured time per
    inference (batch 1) and per example in a batch, and how long it took to train."""
    model = baseline.model.eval()
    totals = summarize(layer_costs(model, None, dataset.input_shape))
    x1 = dataset.x_test[:1]
    xb = dataset.x_test[:batch]
    one = time_call(lambda: model(x1), repeats=LATENCY_REPEATS)["median_ms"]  # measured as Compare measures it
    many = time_call(lambda: model(xb), repeats=SPEED_REPEATS)["median_ms"] / len(xb)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "bytes": params * 4, "macs": totals["macs"], "ms_one": one, "ms_per_example": many,
            "train_seconds": baseline.history.seconds, "train_steps": baseline.history.iterations,
            "energy_uj": totals["energy_pj"] / 1e6}


def retraining(baseline: Baseline, dataset: Dataset, epochs: int = 2, progress=None) -> list[dict]:
    """Accuracy against sparsity, pruned once without and with ``epochs`` of fine-tuning (the Pruning page's
    curves, per layer, output layer at half the rate)."""
    return accuracy_curves(baseline.model, dataset, RETRAIN_GRID, finetune=TrainConfig(epochs=epochs, lr=0.03,
                           optimizer="sgd"), modes=("oneshot", "oneshot_ft"), output_scale=0.5, progress=progress)


def speed(baseline: Baseline, dataset: Dataset, sparsity: float, structured: bool,
          batch: int = SPEED_BATCH) -> list[dict]:
    """Measured latency of the network pruned to ``sparsity``: unstructured (dense, masked, sparse CSR) or, with
    ``structured``, the shrunk network of the same neuron fraction; each row with its test accuracy."""
    model = baseline.model
    mask = prune_to(model, sparsity, granularity="neuron" if structured else "weight", output_scale=0.5)
    rows = latency_report(model, mask, dataset.input_shape, batch=batch, repeats=SPEED_REPEATS, dataset=dataset)
    keep = ("dense", "structured (shrunk)") if structured else ("dense", "masked dense", "sparse CSR")
    return [r for r in rows if r["variant"] in keep]


def lottery_config(seed: int = 0):
    """The lesson's lottery run: MNIST-1D's MLP (where tickets beat re-initialization), 20 % per round."""
    return settings_config("mnist1d", "mlp", seed, rounds=LOTTERY_ROUNDS, rate_percent=20.0,
                           controls=("reinit", "random_mask"))


def quantization(baseline: Baseline, dataset: Dataset, qat_epochs: int = 3, progress=None) -> dict[str, list[dict]]:
    """Test accuracy against weight bit width (activations at 8 bits), post-training (per channel) and
    quantization-aware (``qat_epochs`` of fine-tuning, straight-through estimator)."""
    cfg = QuantConfig(weight_bits=8, act_bits=8)
    say = progress or (lambda f: None)
    ptq = bits_sweep(baseline.model, dataset, cfg, QUANT_BITS, act_bits=8, callback=lambda f: say(f / 2))
    qat = bits_sweep(baseline.model, dataset, cfg, QUANT_BITS[1:], act_bits=8, lsq=False,
                     qat=TrainConfig(epochs=qat_epochs, lr=baseline.config.train.lr / 2,
                                     batch_size=baseline.config.train.batch_size),
                     callback=lambda f: say(0.5 + f / 2))
    return {"PTQ (post-training)": ptq, "QAT (straight-through)": qat}


def language_model(baseline: Baseline, dataset: Dataset, seed: int = 0, prompt: str = "The return value of ",
                   n_chars: int = 160, progress=None) -> dict:
    """Step 8: the GPT's 3-bit weights (groups of 128) by rounding, GPTQ and AWQ, scored against float32 on the
    held-out text, and what the float model and the 2-bit RTN and GPTQ models write after ``prompt`` (seeded)."""
    model = baseline.model.eval()
    calib = lm.calibrate(model, dataset, seed=seed)
    return {"scores": lm.scores(model, dataset, LLM_KEYS, calib, progress or (lambda f, t: None)),
            "texts": lm.samples(model, dataset, LLM_TEXT, calib, prompt, n_chars, 0.8, seed), "prompt": prompt}
