"""The start page's numbers and its explainer: the baseline's figures, read without PyTorch when the cache holds them.

The page itself (app_pages/home.py) is prose, tabs and links; this module holds what it computes and explains.
"""
from __future__ import annotations

from compress_core.settings import BaselineConfig, cached_record
from ui.explain import explainer
from ui.sidebar import Selection


def baseline_numbers(sel: Selection) -> tuple[dict, dict]:
    """(test metrics, training history) of the selection's baseline: from the cache's record when it holds this
    baseline (no PyTorch), else from the baseline itself (loaded, or trained with progress the first time)."""
    record = None if sel.weights else cached_record(BaselineConfig(sel.dataset, sel.model, sel.seed, sel.train))
    if record is not None:
        return record["test_metrics"], record["history"]
    from ui.loaders import baseline

    b = baseline(sel)
    return {"accuracy": b.test_metrics.accuracy, "loss": b.test_metrics.loss}, b.history.to_dict()


def why_compress() -> None:
    """Why compress at all: memory, hardware, time, training."""
    explainer("Why compress at all?", (
        "- **Memory and bandwidth:** a float32 weight costs 4 bytes; fetching it from DRAM costs far more energy "
        "than the arithmetic on it (Horowitz, ISSCC 2014).\n"
        "- **Hardware cost:** 8-bit integer multipliers are much smaller and cheaper than 32-bit float ones.\n"
        "- **Time:** fewer or narrower operations mean lower latency — when the hardware can use them.\n"
        "- **Training cost:** lottery tickets ask whether we could train the small network in the first place."))
