"""The one mosaic builder behind the tile figures: tiles where it says, NaN (blank) everywhere else."""
import numpy as np

from compress_core.viz.common import image_grid, tile_mosaic


def test_tile_mosaic_places_every_tile():
    tiles = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    m, corners = tile_mosaic(tiles, cols=2, gap=1, label_rows=2, row_gap=0)
    assert m.shape == (3 * (2 + 2), 2 * (3 + 1)) and corners[3] == (1 * 4 + 2, 4)
    for t, (top, left) in zip(tiles, corners):
        assert np.array_equal(m[top:top + 2, left:left + 3], t)
    assert np.isnan(m).sum() == m.size - tiles.size
    trimmed, _ = tile_mosaic(tiles, cols=2, trim=True)
    assert trimmed.shape == (3 * 3 - 1, 2 * 4 - 1) and not np.isnan(trimmed[-1, :3]).any()


def test_image_grid_labels_each_tile():
    fig = image_grid(np.ones((3, 4, 4)), ["a", "b", "c"], cols=2)
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c"]
    assert np.nansum(np.array(fig.data[0].z, dtype=float)) == 3 * 16


def test_data_samples_per_kind():
    from compress_core.data import load_dataset
    from compress_core.viz.common import data_samples

    for name, title in (("digits", "Two training images"), ("mnist1d", "40 time steps"), ("moons", "points")):
        ds = load_dataset(name)
        fig = data_samples(ds.x_train.numpy(), ds.y_train.numpy(), ds.kind, list(ds.class_names))
        assert title in fig.layout.title.text


def test_nice_ticks_are_round_and_cover_the_range():
    from compress_core.viz.common import nice_ticks

    assert list(nice_ticks(2947)) == [0, 500, 1000, 1500, 2000, 2500]
    assert list(nice_ticks(4.5)) == [0, 1, 2, 3, 4]
    assert list(nice_ticks(0)) == [0]
    for top in (0.37, 7, 123, 98_765):
        t = nice_ticks(top)
        assert t[0] == 0 and t[-1] <= top and t[-1] + (t[1] - t[0]) > top and 3 <= len(t) <= 11


def test_stack_places_two_figures_over_one_x_axis_in_exact_pixels():
    """Panels exactly as tall as asked (the figure's height is margins + panels + gap), each figure's traces,
    notes and shapes on its own panel, one legend at the foot, the lower figure's title written over it."""
    import plotly.graph_objects as go
    import pytest

    from compress_core.viz.common import stack, style

    def fig(name, title, note_y):
        f = go.Figure(data=[dict(type="scatter", x=[0, 1], y=[0, 1], name=name)], layout=dict(
            annotations=[dict(text=name, x=0.5, y=note_y, xref="paper", yref="paper", showarrow=False),
                         dict(text=f"{name} at 1", x=1, y=1, showarrow=False)],
            shapes=[dict(type="rect", xref="x", yref="paper", x0=0, x1=0.5, y0=0, y1=1)]), _validate=False)
        return style(f, title, height=400, left=70, right=50 if name == "a" else 90, bottom=120, top=70, fixed=True)

    out = stack(fig("a", "Top", 0.5), fig("b", "Bottom", 0.25), heights=(300, 200), gap=50, bottom_margin=100)
    spec = out.to_dict()
    go.Figure(spec)  # valid
    lay = spec["layout"]
    assert lay["height"] == 70 + 300 + 50 + 200 + 100
    assert lay["margin"] == dict(l=70, r=90, t=70, b=100, autoexpand=False)
    (t0, t1), (b0, b1) = lay["yaxis"]["domain"], lay["yaxis2"]["domain"]
    assert (t1 - t0) * 550 == pytest.approx(300) and (b1 - b0) * 550 == pytest.approx(200) and b0 == 0 and t1 == 1
    assert [t.get("yaxis", "y") for t in spec["data"]] == ["y", "y2"] and lay["xaxis"]["anchor"] == "y2"
    notes = {n["text"]: n for n in lay["annotations"]}
    assert notes["a"]["y"] == pytest.approx(t0 + 0.5 * (t1 - t0)) and notes["b"]["y"] == pytest.approx(b1 / 4)
    assert notes["a at 1"].get("yref", "y") == "y" and notes["b at 1"]["yref"] == "y2"
    assert notes["Bottom"]["y"] == b1 and lay["title"]["text"] == "Top"
    rects = lay["shapes"]
    assert (rects[0]["y0"], rects[0]["y1"]) == (t0, t1) and (rects[1]["y0"], rects[1]["y1"]) == (b0, b1)
    assert lay["legend"]["yref"] == "container" and lay["showlegend"] is True
    assert stack(fig("a", "Top", 0.5), fig("b", None, 0.5), (300, 200), legend=False).layout.showlegend is False


def test_stack_refuses_a_figure_with_two_y_axes():
    import plotly.graph_objects as go
    import pytest

    from compress_core.viz.common import stack

    two = go.Figure(data=[dict(type="scatter", y=[1]), dict(type="scatter", y=[2], yaxis="y2")],
                    layout=dict(margin=dict(l=1, r=1, t=1, b=1)))
    with pytest.raises(ValueError, match="one pair of axes"):
        stack(two, two, (100, 100))
