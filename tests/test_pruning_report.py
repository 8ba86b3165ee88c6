"""PruneReport: the numbers the Pruning page shows, checked against size_report and prune on real models."""
import pytest

from compress_core.pruning import PruneSettings, prune, prune_with, size_report
from compress_core.pruning.report import (
    PUBLISHED_LAYER_SPARSITY,
    best_format,
    layer_threshold,
    prune_report,
    structured_comparison,
)


def test_structured_comparison_cuts_the_same_fraction_of_neurons(digits_mlp):
    b, _ = digits_mlp
    model = b.model
    s = PruneSettings(sparsity=0.5, seed=3)
    mask, label = structured_comparison(model, s)
    ref = prune(model, 0.5, criterion="magnitude", granularity="neuron", seed=3)
    assert all(bool((mask[k] == ref[k]).all()) for k in ref) and label == ", 50.0% of neurons cut"
    assert structured_comparison(model, PruneSettings(sparsity=0.5, granularity="neuron")) == (None, "")


def test_best_format_skips_masked_pytorch_and_other_masks(digits_mlp):
    b, _ = digits_mlp
    model = b.model
    mask = prune(model, 0.95)
    sizes = size_report(model, mask, structured_mask=prune(model, 0.95, granularity="neuron"), structured_label=", x")
    best = best_format(sizes)
    honest = [r for r in sizes if r["same_mask"] and not r["format"].startswith(("masked", "PyTorch"))]
    assert best in honest and best["bytes"] == min(r["bytes"] for r in honest)
    assert not best["format"].startswith("structured")  # the structured row is another mask's


def test_report_carries_every_number_the_page_shows(digits_mlp):
    b, ds = digits_mlp
    model, base = b.model, b.test_metrics
    s = PruneSettings(sparsity=0.9, output_scale=0.5)
    out = prune_with(model, ds, s)
    r = prune_report(model, out, s, base)
    assert r.accuracy == out.metrics.accuracy and r.base_accuracy == base.accuracy
    assert r.accuracy_delta_pts == pytest.approx(100 * (out.metrics.accuracy - base.accuracy))
    assert r.loss_delta == pytest.approx(out.metrics.loss - base.loss)
    assert (r.kept, r.total, r.sparsity) == (out.mask.kept(), out.mask.total(), out.mask.sparsity())
    dense = sum(p.numel() for p in model.parameters()) * 4
    assert r.dense_bytes == dense and r.dense_kb == dense / 1024
    assert r.best_kb == r.best["bytes"] / 1024 and r.best_change == pytest.approx(r.best["bytes"] / dense - 1)
    assert r.best_change < 0  # at 90 % a sparse format beats dense float32
    assert r.structured_mask is not None and r.has_structured_row
    summary = r.summary(s, out.mask)
    assert summary["settings"] == s.to_dict() and summary["test_accuracy"] == r.accuracy
    assert [row["layer"] for row in summary["layers"]] == ["fc1", "fc2", "fc3"]
    summary["sizes"][0]["bytes"] = -1  # the download is a copy: the (cached) report is not changed
    assert r.sizes[0]["bytes"] == dense


def test_threshold_only_for_magnitude_weights(digits_mlp):
    b, _ = digits_mlp
    model = b.model
    mask = prune(model, 0.5)
    t = layer_threshold(model, mask, "fc1", PruneSettings(sparsity=0.5))
    w = dict(model.named_parameters())["fc1.weight"].detach().abs()
    assert t == pytest.approx(float(w[mask["fc1.weight"] == 0].max()))
    assert layer_threshold(model, mask, "fc1", PruneSettings(criterion="random")) is None
    assert layer_threshold(model, mask, "fc1", PruneSettings(granularity="neuron")) is None


def test_published_han_sparsity_is_the_kept_fraction_complement():
    kept = {k: round(1 - v, 2) for k, v in PUBLISHED_LAYER_SPARSITY["mlp"].items()}
    assert kept == {"fc1": 0.08, "fc2": 0.09, "fc3": 0.26}  # Han et al. 2015: 8 % / 9 % / 26 % kept


def test_neuron_pruning_counts_what_the_shrunk_network_keeps(digits_mlp):
    """Issue 10: at 91 % of the neurons, "Weights kept 5,428" stood beside "Smallest honest size 8.2 KB", though
    5,428 float32 weights need 21 KB: the count included the connections of removed neurons."""
    from compress_core.models import weighted_layers
    from compress_core.pruning import shrink

    b, ds = digits_mlp
    model, base = b.model, b.test_metrics
    s = PruneSettings(sparsity=0.91, granularity="neuron")
    out = prune_with(model, ds, s)
    rep = prune_report(model, out, s, base)
    small = shrink(model, out.mask)
    assert rep.kept == sum(m.weight.numel() for _, m in weighted_layers(small)) < out.mask.kept()
    assert rep.best["bytes"] >= 4 * rep.kept  # the smallest honest size holds at least the kept float32 weights
    assert rep.removed_fraction == pytest.approx(1 - rep.kept / rep.total)
    assert rep.removed_fraction > out.mask.sparsity()
    assert "smaller dense network" in rep.kept_note
    w = PruneSettings(sparsity=0.91)  # single weights: the mask's own count
    rep_w = prune_report(model, prune_with(model, ds, w), w, base)
    assert rep_w.kept == prune(model, 0.91).kept() and "biases excluded" in rep_w.kept_note


def test_extra_training_control_is_the_dense_model_trained_like_the_pruned_one(digits_mlp):
    """Issue 10: a fine-tuned result is compared with the dense model given the same extra training."""
    import copy

    from compress_core.pruning import extra_training_control
    from compress_core.train import evaluate, train

    b, ds = digits_mlp
    model = b.model
    assert extra_training_control(model, ds, PruneSettings(sparsity=0.9)) is None  # no fine-tuning, no control
    s = PruneSettings(sparsity=0.9, schedule="iterative", rounds=2, finetune_epochs=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = extra_training_control(model, ds, s)
    assert all((before[k] == v).all() for k, v in model.state_dict().items())  # the model is only read
    net = copy.deepcopy(model)
    for i in range(len(s.targets())):  # one fine-tuning run per schedule step, seed + i, as run_schedule does
        train(net, ds, s.finetune(64), seed=s.seed + i)
    assert got == evaluate(net.eval(), ds.x_test, ds.y_test)
