"""The Deep compression page's weight histogram: pre-binned counts, not raw weights, and one line per centroid."""
import numpy as np
import torch

from compress_core.viz.deep_compression import shared_histogram


def test_shared_histogram_sends_counts_of_the_survivors_and_marks_each_centroid():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(300, 40, generator=g)
    mask = (torch.rand(300, 40, generator=g) > 0.9).float()
    fig = shared_histogram(w, mask, w, [-1.0, 0.0, 1.0], "fc1", bins=50).to_dict()
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert len(bars) == 1 and len(bars[0]["y"]) == 50 and sum(bars[0]["y"]) == int(mask.sum())
    assert len(fig["layout"]["shapes"]) == 3 and fig["data"][1]["x"] == [-1.0, 0.0, 1.0]
    uniform = shared_histogram(w, mask, torch.round(w * 4) / 4, [], "fc1").to_dict()
    after = uniform["data"][1]
    assert after["name"] == "after quantization" and sum(after["y"]) == int(mask.sum())
    assert np.isclose(sum(uniform["data"][0]["y"]), int(mask.sum()))
    empty = shared_histogram(w, torch.zeros_like(w), w, [], "fc2").to_dict()
    assert "no surviving weight" in empty["layout"]["title"]["text"]


def test_accuracy_axis_never_passes_100_percent():
    from compress_core.viz.deep_compression import accuracy_by_stage

    fig = accuracy_by_stage([dict(stage="dense", test_acc=0.99), dict(stage="pruned 1/1", test_acc=0.985)])
    assert fig.layout.yaxis.range[1] <= 1.0


def test_stage_figures_are_valid_plotly_and_hold_the_stages():
    """Built unvalidated (one constructor call each): re-validated here, with the dense line at the dense accuracy."""
    import plotly.graph_objects as go

    from compress_core.viz.deep_compression import accuracy_by_stage, size_by_stage

    stages = [dict(stage="dense", test_acc=0.98, bytes=200_000, ratio=1.0),
              dict(stage="pruned 1/1", test_acc=0.97, bytes=30_000, ratio=6.7),
              dict(stage="Huffman-coded file", test_acc=0.965, bytes=6_000, ratio=33.3)]
    size, acc = (go.Figure(f(stages).to_dict()) for f in (size_by_stage, accuracy_by_stage))
    assert list(size.data[0].y) == [200_000, 30_000, 6_000] and size.data[0].text == ("1.0×", "6.7×", "33×")
    assert size.layout.yaxis.type == "log" and size.layout.margin.autoexpand is False
    assert list(acc.data[0].y) == [0.98, 0.97, 0.965] and acc.layout.shapes[0].y0 == 0.98
    assert acc.layout.annotations[0].text == "dense 98.0%"


def test_stages_chart_is_size_over_accuracy_on_one_row_of_stage_names():
    import plotly.graph_objects as go

    from compress_core.viz.deep_compression import stages_chart

    stages = [dict(stage="dense", test_acc=0.98, bytes=200_000, ratio=1.0),
              dict(stage="Huffman-coded file", test_acc=0.965, bytes=6_000, ratio=33.3)]
    fig = go.Figure(stages_chart(stages).to_dict())
    bars, line = fig.data
    assert bars.type == "bar" and list(bars.y) == [200_000, 6_000] and line.yaxis == "y2"
    assert list(line.y) == [0.98, 0.965] and fig.layout.yaxis2.tickformat == ".0%"
    assert fig.layout.shapes[0].yref == "y2" and fig.layout.shapes[0].y0 == 0.98  # the dense line, on the accuracy
    assert fig.layout.xaxis.ticktext == ("dense", "file") and fig.layout.showlegend is False
    assert any(a.text == "Test accuracy by stage" for a in fig.layout.annotations)
