"""The Lesson page's plan: its steps in order (title, the data set and model each runs on, the topic page that goes
further, the prediction asked before the reveal) and the pruning taxonomy's branches, each a page and the widget
values that open it on that choice.

Plain data, no Streamlit: the page, ``ui.topics.lesson`` and the tests read it. The numbers each step shows come from
``compress_core.lesson``; its words and figures from ``ui.topics.lesson``.

Usage::

    step = STEPS[i - 1]                                    # step i of len(STEPS)
    page, settings = TAXONOMY["scope"]["global"]          # ("pruning", {"pr_scope": "global"})
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of the lesson: where it runs, the topic page that goes further, and its prediction (if any)."""

    key: str
    title: str
    dataset: str
    model: str
    page: str  # app_pages/<page>.py
    predict: str = ""  # the question the class answers before the reveal ("" = none)


STEPS: tuple[Step, ...] = (
    Step("why", "What pruning is, and why", "digits", "mlp", "pruning"),
    Step("taxonomy", "How one prunes: the taxonomy", "digits", "mlp", "pruning"),
    Step("retrain", "Does retraining matter?", "digits", "mlp", "pruning",
         "Test accuracy at 98 % sparsity *without* fine-tuning?"),
    Step("unstructured", "Unstructured pruning: smaller, not faster", "digits", "mlp", "pruning"),
    Step("structured", "Structured pruning: a smaller dense network", "digits", "mlp", "pruning"),
    Step("lottery", "The lottery ticket hypothesis", "mnist1d", "mlp", "lottery",
         "Does the random re-initialization train as well as the ticket?"),
    Step("quant", "Quantization: fewer bits", "mnist1d", "cnn", "quantization",
         "Test accuracy of post-training quantization at 2 bits?"),
    Step("llm", "Language models: 3-bit weights, rounded or solved", "pydoc", "gpt", "language_models",
         "At 3 bits, does GPTQ lose less than rounding each weight to the nearest level?"),
)

# Step 2's figure: a tree of choices; each leaf opens the Pruning or Lottery page set to that choice
# (page, {widget key: value}).
TAXONOMY: dict[str, dict[str, tuple[str, dict]]] = {
    "what": {"weights (unstructured)": ("pruning", {"pr_granularity": "weight"}),
             "neurons / channels (structured)": ("pruning", {"pr_granularity": "neuron"}),
             "N:M groups (2:4)": ("pruning", {"pr_granularity": "nm"})},
    "how": {"magnitude": ("pruning", {"pr_criterion": "magnitude"}),
            "random": ("pruning", {"pr_criterion": "random"}),
            "sensitivity (per layer)": ("pruning", {"pr_criterion": "magnitude"})},
    "when": {"after training (one-shot)": ("pruning", {"pr_schedule": "one-shot"}),
             "during training (iterative, gradual)": ("pruning", {"pr_schedule": "iterative"}),
             "at initialization (lottery tickets)": ("lottery", {})},
    "scope": {"per layer": ("pruning", {"pr_scope": "layer"}),
              "global": ("pruning", {"pr_scope": "global"})},
}


def step_named(key: str) -> Step:
    """The step named ``key``."""
    return next(s for s in STEPS if s.key == key)
