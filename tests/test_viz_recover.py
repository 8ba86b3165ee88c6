"""The recovery figures (compress_core.viz.recover) on real debugger and budget results, for every kind of data."""
import math

import numpy as np
import pytest
import torch

from compress_core.data import load_dataset
from compress_core.models import build_model
from compress_core.pruning import apply_mask, prune
from compress_core.recover import DropDebugger
from compress_core.viz import recover as viz_recover


def _flips(name: str, model: str):
    ds = load_dataset(name)
    net = build_model(model, ds, seed=0).eval()
    pruned = apply_mask(net, prune(net, 0.9))
    dbg = DropDebugger(net, pruned, ds.x_test, ds.y_test)
    return ds, dbg


@pytest.mark.parametrize("name,model", [("digits", "mlp"), ("mnist1d", "mlp"), ("moons", "tiny")])
def test_layer_and_flip_figures_for_each_kind_of_data(name, model):
    ds, dbg = _flips(name, model)
    rows, flips = dbg.layers(), dbg.flips()
    fig = viz_recover.layer_drop_figure(rows)
    only, acc, cost = fig.data
    assert list(only.x) == [r["layer"] for r in rows] == list(cost.x)
    assert list(cost.y) == [r["only_change_pts"] for r in rows]
    for bar, key in ((only, "only_layer_sqnr_db"), (acc, "accumulated_sqnr_db")):
        for v, r in zip(bar.y, rows):
            want = viz_recover.SQNR_CAP if math.isinf(r[key]) else max(-20.0, r[key])
            assert v == pytest.approx(want)
    assert flips, "a random network pruned to 90 % flips some test examples"
    x = ds.x_test.numpy()
    fig = viz_recover.flipped_examples_figure(x, ds.kind, flips, list(ds.class_names), limit=6, x_all=x,
                                              y_all=ds.y_test.numpy(), compressed="pruned", reference="dense")
    shown = flips[:6]
    if ds.kind == "image":  # one mosaic, a label per tile naming the true class and both predictions
        assert len(fig.data) == 1 and len(fig.layout.annotations) == len(shown)
        first = shown[0]
        assert f"true {ds.class_names[first['label']]}" in fig.layout.annotations[0].text
        assert f"pruned {ds.class_names[first['variant_pred']]}" in fig.layout.annotations[0].text
    elif ds.kind == "sequence":  # one curve per example: the example's own signal
        assert len(fig.data) == len(shown)
        assert np.allclose(fig.data[0].y, x[shown[0]["index"], 0])
    else:  # points: every test point by class, the flipped ones on top
        assert fig.data[-1].name == "flipped" and len(fig.data[-1].x) == len(flips)  # every flipped point


def test_no_flip_and_text_are_said_in_words():
    ds, dbg = _flips("digits", "mlp")
    fig = viz_recover.flipped_examples_figure(ds.x_test.numpy(), "image", [], list(ds.class_names))
    assert "No example flipped" in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="classifiers"):
        viz_recover.flipped_examples_figure(ds.x_test.numpy(), "text", dbg.flips(), list(ds.class_names))


def test_language_cost_is_bits_added_and_budget_bars():
    rows = [{"layer": "a", "only_layer_sqnr_db": math.inf, "accumulated_sqnr_db": 3.0, "only_bits": 2.0,
             "only_change_pts": 0.0},
            {"layer": "b", "only_layer_sqnr_db": 12.0, "accumulated_sqnr_db": 1.0, "only_bits": 2.5,
             "only_change_pts": -1.0}]
    fig = viz_recover.layer_drop_figure(rows, language=True, float_bits=1.9)
    assert list(fig.data[2].y) == pytest.approx([0.1, 0.6]) and fig.data[0].text[0] == "no error"
    fig = viz_recover.budget_rates_figure({"fc1": 0.45, "fc2": 0.35}, 0.95)
    assert list(fig.data[0].y) == [0.45, 0.35] and list(fig.data[0].text) == ["45%", "35%"]
    assert fig.layout.shapes[0].y0 == 0.95
    assert fig.data[1].name == "uniform start: 95%" and not fig.layout.annotations  # in the legend, not on a bar
    fig = viz_recover.budget_rates_figure({"fc1": 32, "fc2": 4}, 3, unit="bits")
    assert list(fig.data[0].text) == ["float", "4 bits"]


def test_changed_characters_of_a_language_model_and_their_highlighting():
    from compress_core.gpt import build_gpt
    from compress_core.recover.text_flips import changed_characters

    torch.manual_seed(0)
    gpt = build_gpt(vocab=11, context=8, layers=1, width=16, heads=2).eval()
    x = torch.randint(0, 11, (5, 8))
    y = torch.roll(x, -1, 1)
    variant = apply_mask(gpt, prune(gpt, 0.8)).eval()
    ch = changed_characters(gpt, variant, x, y)
    pf, pv = gpt(x).argmax(1).flatten(), variant(x).argmax(1).flatten()
    assert ch["n"] == 40 and ch["float_pred"] == pf.tolist() and ch["variant_pred"] == pv.tolist()
    assert ch["changed"] == int((pf != pv).sum()) > 0
    assert ch["broke"] == int(((pf == y.flatten()) & (pv != y.flatten())).sum())
    assert changed_characters(gpt, gpt, x, y)["changed"] == 0
    vocab = list("<>&abcdefgh")  # characters HTML must escape
    page = viz_recover.changed_characters_html(ch, vocab, compressed="pruned", reference="dense")
    assert page.count("<span title=") == ch["changed"] and "<<" not in page
    with pytest.raises(ValueError, match="windows"):
        changed_characters(gpt, variant, x.flatten(), y.flatten())
