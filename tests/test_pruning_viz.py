"""Every Pruning figure passes Plotly's full validation (the builders skip it for speed) and carries data."""
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from compress_core.data import load_dataset
from compress_core.models import build_model
from compress_core.pruning import nm_prune, prune, threshold
from compress_core.viz import pruning as pviz


@pytest.fixture(scope="module")
def setup():
    model = build_model("mlp", load_dataset("digits"), seed=0)
    return model, prune(model, 0.9)


def figures(model, mask):
    w = model.fc1.weight.detach()
    rows = [dict(mode=m, sparsity=s, test_acc=a) for m in ("oneshot", "oneshot_ft", "iterative")
            for s, a in ((0.0, 0.98), (0.9, 0.8), (0.999, 0.1))]
    lat = [dict(variant="dense", median_ms=1.0, vs_dense=1.0), dict(variant="sparse CSR", median_ms=2.0, vs_dense=2.0),
           dict(variant="structured (shrunk)", median_ms=None, vs_dense=None)]
    return [pviz.weight_histogram(w.numpy(), mask["fc1.weight"].numpy(), threshold(model, mask, "fc1"), "fc1"),
            pviz.weight_histogram(np.zeros(10), np.zeros(10), None, "empty"),
            pviz.neuron_tiles(mask["fc1.weight"].numpy(), (8, 8), count=24, cols=6, title="tiles"),
            pviz.mask_heatmap(mask["fc2.weight"].numpy(), "fc2"),
            pviz.mask_heatmap(torch.ones(1000, 900).numpy(), "big"),
            pviz.layer_bars(mask.layer_sparsity(), {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}),
            pviz.curves_figure(rows, 0.98, 0.9),
            pviz.sensitivity_figure([dict(layer="fc1", sparsity=0.5, test_acc=0.9)], 0.98),
            pviz.timing_figure(lat, 256, 20),
            pviz.size_figure([dict(format="dense float32", bytes=1000, vs_dense=1.0),
                              dict(format="CSR (values + indices)", bytes=300, vs_dense=0.3)]),
            pviz.nm_pattern(model.fc2.weight.detach().numpy(), nm_prune(model)["fc2.weight"].numpy()),
            pviz.gpt_blocks_figure([dict(block="block1", heads=4, kept_heads=2, neurons=384, kept_neurons=384)])]


def test_figures_validate_and_hold_data(setup):
    model, mask = setup
    for fig in figures(model, mask):
        checked = go.Figure(fig.to_dict())  # raises on any invalid property
        # the process-wide default template applies: white outside the app, none inside it (app.py; Streamlit's
        # theme styles the charts), so a figure never carries a stale copy of either
        default = pio.templates[pio.templates.default] if pio.templates.default != "none" else None
        assert checked.data and (checked.layout.template.layout.paper_bgcolor
                                 == (default.layout.paper_bgcolor if default else None))
        assert checked.layout.font.size == 15


def test_gpt_blocks_figure_reads_the_summary():
    fig = pviz.gpt_blocks_figure([dict(block="block1", heads=4, kept_heads=1, neurons=384, kept_neurons=288),
                                  dict(block="block2", heads=4, kept_heads=4, neurons=384, kept_neurons=96)])
    heads, neurons = fig.data
    assert list(heads.y) == [0.25, 1.0] and list(neurons.y) == [0.75, 0.25]
    assert list(heads.text) == ["1 of 4", "4 of 4"] and list(neurons.text) == ["288 of 384", "96 of 384"]


def test_histogram_counts_and_threshold(setup):
    model, mask = setup
    fig = pviz.weight_histogram(model.fc1.weight.detach().numpy(), mask["fc1.weight"].numpy(),
                                threshold(model, mask, "fc1"), "fc1")
    kept, removed = fig.data  # step outlines: the last count repeats to close the step (common.step_area)
    assert sum(kept.y[:-1]) == mask.kept("fc1") and sum(removed.y[:-1]) == mask.pruned("fc1")
    assert kept.stackgroup == removed.stackgroup and len(kept.x) == len(kept.y)
    t = threshold(model, mask, "fc1")
    assert [s["x0"] for s in fig.to_dict()["layout"]["shapes"]] == [-t, t]


def test_curves_marker_and_tiles(setup):
    model, mask = setup
    fig = pviz.curves_figure([dict(mode="oneshot", sparsity=0.9, test_acc=0.5)], 0.98, 0.99).to_dict()
    assert fig["layout"]["shapes"][-1]["x0"] == pytest.approx(1.0)  # 1 % remaining, in data units
    tiles = pviz.neuron_tiles(mask["fc1.weight"].numpy(), (8, 8), count=12, cols=6).to_dict()
    labels = [a["text"] for a in tiles["layout"]["annotations"]]
    assert labels == [f"{int(mask['fc1.weight'][i].sum())}/64" for i in range(12)]


def test_curves_figure_marks_the_control_of_the_fine_tuned_curves():
    from compress_core.viz.pruning import curves_figure

    rows = [dict(mode="oneshot_ft", sparsity=s, test_acc=0.9 - s / 10) for s in (0.5, 0.9)]
    spec = curves_figure(rows, 0.95, 0.9, control_acc=0.96).to_dict()
    go.Figure(spec)
    assert any(sh.get("y0") == 0.96 for sh in spec["layout"]["shapes"])
    assert any("same fine-tuning 96.0%" in a["text"] for a in spec["layout"]["annotations"])
    plain = curves_figure(rows, 0.95).to_dict()["layout"]["annotations"]
    assert not any("same fine-tuning" in a["text"] for a in plain)
