"""The Language models page on the tiny GPT: every view runs, its controls change what is computed, its numbers are
the library's, and a classifier selection offers the switch instead of failing."""
import json

import pytest

from compress_core import lm
from compress_core.baselines import get_baseline
from compress_core.data import load_dataset

from .conftest import chart_text, metrics, open_app, open_tab

PAGE = "app_pages/language_models.py"
GPT = {"dataset": "pydoc", "model": "gpt"}


@pytest.fixture(scope="module")
def gpt():
    """The default GPT baseline (trained once into the test cache, about a minute) and its data set."""
    return get_baseline("pydoc", "gpt"), load_dataset("pydoc")


def _bars(at, key: str) -> dict[str, float]:
    """{variant label: bits per character above float32} of the bar chart with widget key ``key``."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id)
    bar = json.loads(chart.proto.spec)["data"][0]
    return dict(zip(bar["x"], bar["y"]))


def test_a_classifier_selection_offers_the_language_model():
    at = open_app(PAGE)
    assert not at.exception
    assert any("needs a language model" in i.value for i in at.info)
    at.button(key="lm_switch").click().run()
    assert not at.exception
    assert at.session_state["dataset"] == "pydoc" and at.session_state["model"] == "gpt"


def test_float_metrics_are_the_libraries(gpt):
    b, ds = gpt
    at = open_app(PAGE, GPT)
    assert not at.exception and not at.error
    ref = lm.score(b.model, ds)[0]
    m = next(x for x in at.metric if x.label == "Float bits / char")
    assert (m.value, m.delta) == (f"{ref.bpc:.3f}", f"± {ref.se:.3f}")
    assert any(f"{sum(p.numel() for p in b.model.parameters()):,} parameters" in c.value for c in at.caption)
    assert metrics(at)["Next character right"] == f"{b.test_metrics.accuracy:.1%}"


def test_outliers_view_names_the_largest_channels(gpt):
    at = open_tab(open_app(PAGE, GPT), "lm_view", "Outliers")
    assert not at.exception
    layers = at.selectbox(key="lm_layer").options
    assert "block1.attn.q" in layers and "block1.mlp.fc2" in layers
    at.selectbox(key="lm_layer").set_value("block1.mlp.fc2").run()
    assert not at.exception
    assert any("block1.mlp.fc2: input channels" in chart_text(c) for c in at.get("plotly_chart"))
    assert any("W8A8 per token" in m.value and "W8A8 per tensor" in m.value for m in at.markdown)


def test_weight_view_follows_bits_and_group_and_matches_the_library(gpt):
    b, ds = gpt
    at = open_tab(open_app(PAGE, {**GPT, "lm_bits": "3", "lm_group": "128"}), "lm_view", "Weights: RTN, GPTQ, AWQ")
    assert not at.exception and not at.error
    bars = _bars(at, "lm_wq_fig")
    assert set(bars) == {"RTN W3 g128", "GPTQ W3 g128", "AWQ W3 g128"}
    calib = lm.calibrate(b.model.eval(), ds, seed=0)
    ref = lm.scores(b.model.eval(), ds, ("gptq_w3_g128",), calib)
    assert bars["GPTQ W3 g128"] == pytest.approx(ref["gptq_w3_g128"].diff, abs=1e-9)
    assert any(f"float32: {ref['float'].bpc:.3f} bits/char" in chart_text(c) for c in at.get("plotly_chart"))
    assert any("at or below RTN's on" in c.value for c in at.caption)
    at.select_slider(key="lm_bits").set_value(4).run()
    at.radio(key="lm_group").set_value("ch").run()
    assert not at.exception
    assert set(_bars(at, "lm_wq_fig")) == {"RTN W4 per channel", "GPTQ W4 per channel", "AWQ W4 per channel"}


def test_smoothquant_alpha_moves_the_marker(gpt):
    at = open_tab(open_app(PAGE, GPT), "lm_view", "SmoothQuant")
    assert not at.exception
    at.select_slider(key="lm_alpha").set_value(0.8).run()
    assert not at.exception
    assert any("α = 0.8" in chart_text(c) for c in at.get("plotly_chart"))
    assert any("SmoothQuant α=0.8 + W8A8" in m.value for m in at.markdown)


def test_pruning_and_kv_views(gpt):
    at = open_tab(open_app(PAGE, {**GPT, "lm_prune": "2_4"}), "lm_view", "Pruning: Wanda, SparseGPT")
    assert not at.exception
    bars = _bars(at, "lm_prune_fig")
    assert set(bars) == {"Magnitude 2:4", "Wanda 2:4", "SparseGPT 2:4"}
    assert any("Published, not measured here" in c.value for c in at.caption)
    at = open_tab(at, "lm_view", "KV cache")
    assert not at.exception
    kv = _bars(at, "lm_kv_fig")
    assert kv["KV cache 2-bit"] > kv["KV cache 8-bit"]  # 2-bit keys and values cost more than 8-bit ones


def test_generate_is_seeded_and_shows_both_models():
    at = open_tab(open_app(PAGE, {**GPT, "lm_chars": "40", "lm_gen": "rtn_w2_g128"}), "lm_view", "Generate")
    assert not at.exception
    texts = [c.value for c in at.code]
    assert len(texts) == 2 and all(t.startswith("The return value of ") for t in texts)
    again = open_tab(open_app(PAGE, {**GPT, "lm_chars": "40", "lm_gen": "rtn_w2_g128"}), "lm_view", "Generate")
    assert [c.value for c in again.code] == texts  # the same seed writes the same text
