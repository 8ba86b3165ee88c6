"""The Compare page under AppTest: variants, runs table, charts, editing, the link, the grid, uploads."""
import base64
import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from compress_core import evaluate, load_dataset
from compress_core.experiments import PRESETS, FineTune, Prune, Quantize, Recipe, dumps, run
from ui.topics.compare import MAX_VARIANTS, encode

from .conftest import chart_text, open_app, open_tab

PAGE = "app_pages/compare.py"


def _names(at) -> list[str]:
    return list(at.dataframe[0].value["variant"])


def _link(*variants: tuple[str, tuple]) -> str:
    return encode([{"name": n, "steps": s} for n, s in variants])


def test_default_variants_run_table_and_charts():
    at = open_app(PAGE)
    assert not at.exception
    assert _names(at) == ["prune 90 %", "int8", "prune 90 % + int4"]
    table = at.dataframe[0].value
    assert (table["test accuracy"] > 0.8).all()
    assert table.loc[table["variant"] == "int8", "× smaller"].iloc[0] > 3.5  # 8-bit codes: ~4× smaller than float32
    assert list(table["stored bytes"])[2] < list(table["stored bytes"])[0]  # int4 codes beat float32 values
    titles = [c.proto.spec for c in at.get("plotly_chart")]  # the Runs tab: accuracy vs stored size
    assert len(titles) == 1 and all('"Pareto front"' in t or "Pareto" in t for t in titles[:1])
    assert at.query_params["cmp"]
    # only the variants ran: the caption speaks of no grey point (issue 28, item 8), and of them once the grid runs
    assert not any("Grey points" in c.value for c in at.caption)
    assert any("The coloured points are the variants above" in c.value for c in at.caption)
    open_tab(at, "cmp_view", "Latency and energy")  # the other two charts: accuracy vs latency and vs energy
    assert not at.exception
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_latency", "cmp_energy"]


def test_add_a_preset_variant_and_edit_a_step():
    at = open_app(PAGE)
    at.selectbox(key="cmp_preset").set_value("structured 50 % + int8").run()
    at.button(key="cmp_add_variant").click().run()
    assert not at.exception
    assert _names(at)[-1] == "structured 50 % + int8"
    # the new variant's first step is a structured prune: set its sparsity to 30 %
    sparsity = [w for w in at.number_input if w.key.endswith("_sparsity")][-1]
    sparsity.set_value(0.3).run()
    assert not at.exception
    assert "structured 30%" in at.dataframe[0].value["recipe"].iloc[-1]


def test_a_link_reopens_the_same_variants():
    link = _link(("tiny prune", (Prune(sparsity=0.5, finetune_epochs=0),)),
                 ("w4 only", (Quantize(weight_bits=4, target="weights"),)))
    at = open_app(PAGE, {"cmp": link})
    assert not at.exception
    assert _names(at) == ["tiny prune", "w4 only"]
    table = at.dataframe[0].value
    assert table["integer ms"].isna().iloc[1]  # weights only: no integer-only program


def test_a_damaged_link_says_so_and_shows_the_defaults():
    at = open_app(PAGE, {"cmp": "not-a-comparison"})
    assert not at.exception
    assert any("could not be opened" in w.value for w in at.warning)
    assert _names(at) == ["prune 90 %", "int8", "prune 90 % + int4"]


def test_an_impossible_variant_is_named_and_the_others_still_show():
    # 99 % of the neurons ranked globally leaves a hidden layer empty: no smaller network exists
    link = _link(("cut", (Prune(sparsity=0.99, granularity="neuron", scope="global", finetune_epochs=0),)),
                 ("int8", (Quantize(),)))
    at = open_app(PAGE, {"cmp": link})
    assert not at.exception
    assert any("Variant 1 (cut) cannot run" in e.value and "keep no neuron" in e.value for e in at.error)
    assert _names(at) == ["int8"]


def test_grid_heat_map():
    at = open_tab(open_app(PAGE), "cmp_view", "Sparsity × bit width")
    at.multiselect(key="cmp_grid_sp").set_value([50, 90]).run()
    at.multiselect(key="cmp_grid_bits").set_value([8, 2]).run()
    at.toggle(key="cmp_grid_on").set_value(True).run()
    assert not at.exception
    open_tab(at, "cmp_view", "Runs")
    assert any("Grey points: the 4 other run(s) explored" in c.value for c in at.caption)  # the grid's 2 × 2 runs
    open_tab(at, "cmp_view", "Sparsity × bit width")
    heat = [c for c in at.get("plotly_chart") if "sparsity × bit width" in chart_text(c)]
    assert len(heat) == 1
    z = json.loads(heat[0].proto.spec)["data"][0]["z"]
    if isinstance(z, dict):  # Plotly sends arrays as base64
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(2, 2)
    assert len(z) == 2 and len(z[0]) == 2
    assert z[0][0] > z[1][1]  # 50 % at 8 bits keeps more accuracy than 90 % at 2 bits


def test_upload_recipes_and_bad_uploads_lose_nothing():
    at = open_app(PAGE)
    before = _names(at)
    for content, words in ((b"{not json", "not JSON"), (b"\xff\xfe\x00", "not text"),
                           (json.dumps({"recipes": [{"dataset": "digits", "steps": [{"step": "melt"}]}]}).encode(),
                            "unknown step 'melt'"),
                           (json.dumps([{"dataset": "digits", "steps": [{"step": "prune", "sparsity": 1.5}]}]).encode(),
                            "sparsity"),
                           (json.dumps([{"dataset": "imagenet"}]).encode(), "unknown data set"),
                           (dumps([Recipe("digits", "mlp")] * (MAX_VARIANTS + 1)).encode(), "at most")):
        at.file_uploader(key="cmp_upload").set_value(("r.json", content, "application/json")).run()
        assert not at.exception
        assert any(words in e.value for e in at.error), (words, [e.value for e in at.error])
        assert _names(at) == before  # nothing lost
    good = dumps([Recipe("moons", "mlp", 0, steps=(Prune(sparsity=0.5, finetune_epochs=0),
                                                   FineTune(epochs=1)), name="uploaded")])
    at.file_uploader(key="cmp_upload").set_value(("r.json", good.encode(), "application/json")).run()
    assert not at.exception
    assert _names(at) == ["uploaded"]
    assert at.session_state["dataset"] == "moons"  # the sidebar switched to the recipes' baseline
    assert any("Decision boundaries" == t.label for t in at.tabs)  # 2-D data: a tab of decision boundaries
    open_tab(at, "cmp_view", "Decision boundaries")
    assert not at.exception
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_boundaries"]


def test_a_variant_downloads_as_a_clab_file_that_loads_back():
    from compress_core.export import han_format

    at = open_app(PAGE)
    table = at.dataframe[0].value  # the runs table, in the Runs tab
    open_tab(at, "cmp_view", "Per layer")
    at.selectbox(key="cmp_layers_of").set_value(2).run()  # prune 90 % + int4
    assert not at.exception
    button = next(d for d in at.get("download_button") if d.key == "cmp_dl_clab")
    size = int(table[".clab bytes"].iloc[2])
    assert f"({size:,} bytes)" in button.proto.label
    at.selectbox(key="cmp_layers_of").set_value(0).run()  # prune 90 %: float32 values, no file
    assert not any(d.key == "cmp_dl_clab" for d in at.get("download_button"))
    # the bytes behind the button: the variant's file, which loads back to the accuracy the table shows
    res = run(PRESETS["prune 90 % + int4"]("digits", "mlp"))
    ds = load_dataset("digits")
    assert len(res.file()) == size
    assert evaluate(han_format.load(res.file()), ds.x_test, ds.y_test).accuracy == table[".clab accuracy"].iloc[2]


def test_fields_a_step_does_not_use_are_greyed_out_and_follow_the_mode():
    at = open_app(PAGE, {"cmp": _link(("q", (Quantize(),)))})
    qat_epochs = next(w for w in at.number_input if w.key.endswith("_qat_epochs"))
    assert qat_epochs.disabled  # post-training: no QAT epochs
    mode = next(w for w in at.selectbox if w.key.endswith("_mode"))
    mode.set_value("qat").run()
    assert not at.exception
    assert not next(w for w in at.number_input if w.key.endswith("_qat_epochs")).disabled  # in the same run
    assert "QAT" in at.dataframe[0].value["recipe"].iloc[0]


@given(st.text(min_size=0, max_size=80), st.sampled_from(["", " (copy)", " (control)", " (dense control)"]))
def test_a_variant_name_always_fits_and_keeps_its_suffix(head, suffix):
    from ui.topics.compare import NAME_CHARS, fitted

    name = head + suffix
    out = fitted(name)
    assert len(out) <= NAME_CHARS
    if len(name) <= NAME_CHARS:
        assert out == name
    elif suffix:
        assert out.endswith("…" + suffix)  # the copy or control stays named as such
