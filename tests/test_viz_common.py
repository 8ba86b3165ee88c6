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
