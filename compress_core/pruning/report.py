"""What one pruning setting costs, as numbers ready to show: accuracy and loss against the baseline,
weights kept, and the honest size of every storage format with the smallest one picked out.

``size_report`` counts the bytes of each format; ``prune_report`` adds what a fair comparison with
structured pruning needs: when the mask is not a neuron mask, the structured rows remove the *same
fraction of neurons* (ranked by L1 norm, Li et al. 2017) instead, so both kinds of pruning are compared
at one setting.

Usage::

    out = prune_with(baseline.model, ds, s)
    r = prune_report(baseline.model, out, s, baseline.test_metrics)
    r.best["format"], r.best_kb, r.accuracy_delta_pts
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..models import is_language_model, weighted_layers
from ..train import Metrics
from .formats import size_report
from .masks import Mask, prune, threshold
from .outcome import PruneOutcome, PruneSettings
from .structured import shrink

# Han et al. 2015 (Learning both Weights and Connections): LeNet-300-100 on MNIST keeps 8 % / 9 % / 26 % of
# fc1 / fc2 / fc3 -- shown beside our per-layer sparsity for its shape (our "mlp" has the same three layers),
# never as a measurement.
PUBLISHED_LAYER_SPARSITY: dict[str, dict[str, float]] = {"mlp": {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}}

# formats that do not store only the survivors (or are an in-memory layout): never "the smallest honest size"
_NOT_A_STORAGE_FORMAT = ("masked", "PyTorch")


def structured_comparison(model: nn.Module, settings: PruneSettings) -> tuple[Mask | None, str]:
    """The neuron mask the structured size and latency rows use, and its label.

    ``(None, "")`` when ``settings`` already prune neurons: the structured rows then use the mask itself.
    Otherwise the same fraction of neurons is removed with the same criterion and seed.
    """
    if settings.granularity == "neuron" or is_language_model(model):  # (the GPT has no structured row)
        return None, ""
    mask = prune(model, settings.sparsity, criterion=settings.criterion, granularity="neuron", seed=settings.seed)
    return mask, f", {settings.sparsity:.1%} of neurons cut"


def best_format(sizes: list[dict]) -> dict:
    """The smallest row of ``size_report`` that really stores this mask (not masked dense, not PyTorch's
    in-memory layout, not a structured row built from another mask)."""
    return min((r for r in sizes if r["same_mask"] and not r["format"].startswith(_NOT_A_STORAGE_FORMAT)),
               key=lambda r: r["bytes"])


def layer_threshold(model: nn.Module, mask: Mask, layer: str, settings: PruneSettings) -> float | None:
    """The magnitude cut of ``layer`` when there is a clean one (magnitude pruning of single weights);
    None otherwise (random, neuron and N:M pruning do not cut at one threshold)."""
    if settings.criterion == "magnitude" and settings.granularity == "weight":
        return threshold(model, mask, layer)
    return None


@dataclass(frozen=True)
class PruneReport:
    """Every number the Pruning page shows about one setting (besides curves and timings)."""

    accuracy: float  # test accuracy of the pruned (and fine-tuned) model
    base_accuracy: float  # the dense baseline's
    loss: float
    base_loss: float
    kept: int  # weights of Linear/Conv layers kept (biases excluded); neurons: the shrunk network's weights
    total: int
    kept_note: str  # how ``kept`` was counted, for the page
    sparsity: float  # fraction of those weights removed
    sizes: tuple[dict, ...]  # rows of ``size_report``: format, bytes, vs_dense, detail, same_mask
    best: dict  # the smallest honest storage format of this mask (a row of ``sizes``)
    dense_bytes: int  # dense float32, every parameter
    structured_mask: Mask | None  # the neuron mask of the structured rows (None: the mask itself)
    structured_label: str

    @property
    def removed_fraction(self) -> float:
        """1 − kept/total: with neuron pruning more than the mask's own sparsity (connections of removed
        neurons go too)."""
        return 1 - self.kept / self.total if self.total else 0.0

    @property
    def accuracy_delta_pts(self) -> float:
        return 100 * (self.accuracy - self.base_accuracy)

    @property
    def loss_delta(self) -> float:
        return self.loss - self.base_loss

    @property
    def best_kb(self) -> float:
        return self.best["bytes"] / 1024

    @property
    def best_change(self) -> float:
        """Relative size of the best format against dense float32 (−0.8 = 80 % smaller)."""
        return self.best["vs_dense"] - 1

    @property
    def dense_kb(self) -> float:
        return self.dense_bytes / 1024

    @property
    def has_structured_row(self) -> bool:
        """False when some hidden layer would keep no neuron: no smaller network exists."""
        return any(r["format"].startswith("structured") for r in self.sizes)

    def summary(self, settings: PruneSettings, mask: Mask) -> dict:
        """The downloadable mask summary: settings, per-layer counts, sizes and test accuracy."""
        return {"settings": settings.to_dict(), "layers": mask.summary(), "sizes": [dict(r) for r in self.sizes],
                "test_accuracy": self.accuracy}


def prune_report(model: nn.Module, outcome: PruneOutcome, settings: PruneSettings, base: Metrics) -> PruneReport:
    """Sizes, the smallest honest format and the deltas against ``base`` for ``outcome`` of ``settings``.

    ``model`` is the dense baseline (never modified); ``base`` its test metrics.
    """
    mask = outcome.mask
    kept, note = mask.kept(), "Counted over the weights of every Linear/Conv layer (biases excluded)."
    if settings.granularity in ("neuron", "head"):
        try:  # a removed neuron takes its outgoing connections along: count what the smaller network keeps
            kept = sum(m.weight.numel() for _, m in weighted_layers(shrink(model, mask)))
            note = ("The weights of the smaller dense network left once the removed neurons/channels are cut out, "
                    "with their incoming and outgoing connections (biases excluded).")
            if is_language_model(model):
                note = (f"The weights of the blocks' Linear layers left once the removed {settings.granularity}s are "
                        "cut out with their rows and columns (biases, embeddings and LayerNorms excluded).")
        except ValueError:  # some hidden layer keeps no neuron: no smaller network, count the mask
            note += " No smaller network exists at this setting (a hidden layer keeps no neuron)."
    struct_mask, struct_label = structured_comparison(model, settings)
    sizes = size_report(model, mask, structured_mask=struct_mask, structured_label=struct_label)
    dense = next(r for r in sizes if r["format"] == "dense float32")
    return PruneReport(accuracy=outcome.metrics.accuracy, base_accuracy=base.accuracy, loss=outcome.metrics.loss,
                       base_loss=base.loss, kept=kept, total=mask.total(), kept_note=note,
                       sparsity=mask.sparsity(),
                       sizes=tuple(sizes), best=best_format(sizes), dense_bytes=dense["bytes"],
                       structured_mask=struct_mask, structured_label=struct_label)
