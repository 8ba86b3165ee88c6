"""The integer-inference figures draw the numbers they are given (no empty charts)."""
import numpy as np

from compress_core.viz import integer as iviz


def test_figures_hold_their_data():
    units = {"float_out": np.array([0.0, 1.0, 2.5]), "real_out": np.array([0.0, 1.02, 2.49])}
    fig = iviz.int_vs_float(units, 0.02, title="t")
    pts = fig.data[-1]
    assert list(pts.x) == [0.0, 1.0, 2.5] and list(pts.y) == [0.0, 1.02, 2.49]
    assert max(pts.marker.color) == np.abs(units["real_out"] - units["float_out"]).max() / 0.02

    fig = iviz.logits_bars(["a", "b"], np.array([1.0, 2.0]), np.array([1.1, 1.9]), np.array([1.0, 2.1]))
    assert len(fig.data) == 3 and [list(d.y) for d in fig.data][2] == [1.0, 2.1]
    assert fig.data[0].marker.line.width == (0, 3)  # class "b" outlined: predicted

    fig = iviz.accuracy_bars({"float": 0.98, "fake_quant": 0.975, "integer": 0.975})
    assert list(fig.data[0].y) == [0.98, 0.975, 0.975] and fig.data[0].text[2] == "97.50%"

    sizes = {"float32": 4000, "int8": 1100, "packed4": 600, "as_converted": 850}
    fig = iviz.memory_bars(sizes, weight_bits=6)
    assert list(fig.data[0].y) == ["float32", "int8", "packed 4-bit", "as converted (6-bit)"]
    assert "3.6× smaller" in fig.data[0].text[1]
    assert len(iviz.memory_bars(sizes, weight_bits=8).data[0].y) == 3

    fig = iviz.multiplier_error(0.0042)
    curve, mark = fig.data[0], fig.data[1]
    assert len(curve.x) > 300 and max(curve.y) <= 2.0 ** -31 and 0 < mark.y[0] <= 2.0 ** -31
    assert "exact" in iviz.multiplier_error(0.25).data[1].name  # 0.25 = 2^30 / 2^31 · 2^-1 exactly

    fig = iviz.rescale_steps([("acc", 1000), ("high", -12), ("q_out", 0)])
    assert list(fig.data[0].text) == ["1,000", "-12", "0"]
