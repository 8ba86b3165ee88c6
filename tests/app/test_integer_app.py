"""AppTest: the Integer inference page — whole-model numbers, the walk-through, the explorer, bad settings."""
import re

from .conftest import metrics, open_app, open_tab

PAGE = "app_pages/integer.py"
WHOLE, WALK, EXPLORER, LAYERS, ONNX = ("The whole model, on integers", "One layer, step by step",
                                       "The multiplier explorer", "Every layer of the integer program",
                                       "The same network in ONNX Runtime")
UNIT = "One output, step by step"  # the walk-through's nested tab (int_walk) with the ledger
ON_THE_LEDGER = {"int_view": WALK, "int_walk": UNIT}  # the URL of the step-by-step tab


def _open_ledger(at):
    """Open the walk-through's step-by-step tab (the layer select, the unit, the ledger)."""
    open_tab(at, "int_view", WALK)
    return open_tab(at, "int_walk", UNIT)


def _ledger(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("| step |"))


def _pts(s: str) -> float:
    return float(s.rstrip("%"))


def test_page_renders_and_integer_matches_fake_quant():
    at = open_app(PAGE)
    assert not at.exception and not at.error
    m = metrics(at)
    assert abs(_pts(m["Integer-only acc."]) - _pts(m["Fake-quant acc."])) <= 0.2 + 1e-9
    assert _pts(m["Integer-only acc."]) > 90 and _pts(m["Same logits"]) > 95
    open_tab(at, "int_view", WALK)  # the example's tab: the class each model predicts
    assert not at.exception and not at.error
    m = metrics(at)
    assert m["Float"] == m["Integer"]
    open_tab(at, "int_walk", UNIT)
    assert not at.exception and not at.error
    ledger = _ledger(at)
    for step in ("1 · input", "4 · accumulator", "5 · multiplier", "8 · shift", "10 · clamp", "11 · real value"):
        assert step in ledger
    assert re.search(r"M0·2\^−n = [\d,]+/2\^31", ledger)
    open_tab(at, "int_view", LAYERS)
    assert not at.exception and not at.error
    table = next(d for d in at.dataframe if "layer" in d.value).value
    assert list(table["layer"]) == ["fc1", "fc2", "fc3"] and set(table["accumulator"]) == {"int32"}
    assert len(at.get("download_button")) >= 2


def test_changing_example_layer_and_unit_changes_the_numbers():
    at = _open_ledger(open_app(PAGE))
    before = _ledger(at)
    at.number_input(key="int_example").set_value(7).run()
    assert not at.exception
    after = _ledger(at)
    assert after != before and at.query_params["int_example"] == "7"
    at.selectbox(key="int_layer").set_value("fc2").run()
    assert not at.exception and "fc2: output neuron" in " ".join(h.value for h in at.subheader)
    at.number_input(key="int_unit_fc2").set_value(3).run()
    assert "output neuron 3 " in " ".join(h.value for h in at.subheader)
    assert _ledger(at) != after


def test_an_example_is_computed_once_per_program_and_each_session_sees_its_own():
    """The example's logits and charts are shared per (program, example): a second session on the same example
    rebuilds nothing; another example gets its own entry, and its chart says which example it is."""
    import json

    from ui.topics import integer as ui_int

    at = open_tab(open_app(PAGE, {"int_example": "5"}), "int_view", WALK)
    assert not at.exception and metrics(at)["Float"]
    before = dict(ui_int._EXAMPLES.data)
    assert any(k[1] == 5 for k in before)
    other = open_tab(open_app(PAGE, {"int_example": "5"}), "int_view", WALK)  # another session, the same example
    assert not other.exception and dict(ui_int._EXAMPLES.data) == before
    other.number_input(key="int_example").set_value(6).run()
    assert any(k[1] == 6 for k in ui_int._EXAMPLES.data)
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in other.get("plotly_chart")]
    shown = [json.loads(c.proto.spec) for c in other.get("plotly_chart")]
    assert any("test #6" in json.dumps(c) for c in shown) and not any("test #5" in json.dumps(c) for c in shown)
    assert any(t.startswith("Logits of this example") for t in titles)
    seen = [json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]  # the first session: still #5
    assert any("test #5" in c for c in seen)


def test_multiplier_explorer_and_its_bad_input():
    at = _open_ledger(open_app(PAGE))  # the walk-through gives the explorer its "layer's M" button
    open_tab(at, "int_view", EXPLORER)
    assert not at.exception and not at.error
    at.text_input(key="int_M").set_value("0.25").run()
    text = " ".join(m.value for m in at.markdown)
    assert "**1,073,741,824**" in text and "**n** = **1**" in text  # 0.25 = 2^30/2^31 · 2^-1
    at.text_input(key="int_M").set_value("banana").run()
    assert not at.exception and "is not a number" in at.error[0].value
    at.text_input(key="int_M").set_value("-2").run()
    assert not at.exception and "not a usable multiplier" in at.error[0].value
    at.text_input(key="int_M").set_value("1.5").run()  # M ≥ 1: TFLite's left shift
    text = " ".join(m.value for m in at.markdown)
    assert not at.error and "**shift** = **1**" in text and "integer rescale: **18,518**" in text  # 12345·1.5
    at.button(key="int_M_use").click().run()
    assert not at.exception and not at.error and float(at.text_input(key="int_M").value) < 1


def test_cnn_and_overflowing_setting():
    at = open_app(PAGE, {"model": "cnn", "int_layer": "conv2", "int_example": "4", **ON_THE_LEDGER})
    assert not at.exception and not at.error
    assert "conv2: output" in " ".join(h.value for h in at.subheader)
    at = open_app(PAGE, {"int_wbits": "16", "int_abits": "16"})
    assert not at.exception
    assert "accumulator overflow risk" in at.error[0].value and "Layer fc1" in at.error[0].value


def test_headroom_refinement_is_an_option_and_tflite_is_the_default():
    at = _open_ledger(open_app(PAGE))
    assert "L = 0: TFLite's rescale" in _ledger(at) and "bit for bit" in " ".join(c.value for c in at.caption)
    at.checkbox(key="int_headroom").check().run()
    assert not at.exception and not at.error and at.query_params["int_headroom"] == "1"
    assert re.search(r"acc·2\^L = -?[\d,]+·2\^\d+", _ledger(at))
    open_tab(at, "int_view", WHOLE)
    assert not at.exception and not at.error
    assert abs(_pts(metrics(at)["Integer-only acc."]) - _pts(metrics(at)["Fake-quant acc."])) <= 0.5


def test_a_refused_setting_keeps_the_walk_through_and_the_explorer():
    """Issue 10: after 16/16 bits (refused) and back, the page came back at test #0 / fc1 and the explorer
    said '"" is not a number'; the broken state went into the link."""
    at = open_tab(open_app(PAGE, {"int_example": "2", "int_layer": "fc3", "int_M": "0.125"}), "int_view", EXPLORER)
    at.number_input(key="int_acc").set_value(777).run()
    before = _ledger(_open_ledger(at))  # the explorer's values are kept while its tab is closed
    at.select_slider(key="int_wbits").set_value(16).run()
    at.select_slider(key="int_abits").set_value(16).run()
    assert not at.exception and "accumulator overflow risk" in at.error[0].value
    at.select_slider(key="int_abits").set_value(8).run()
    at.select_slider(key="int_wbits").set_value(8).run()
    assert not at.exception and not at.error
    assert at.number_input(key="int_example").value == 2 and at.selectbox(key="int_layer").value == "fc3"
    assert _ledger(at) == before
    assert at.query_params["int_example"] == "2" and at.query_params["int_layer"] == "fc3"
    assert at.query_params["int_M"] == "0.125"
    open_tab(at, "int_view", EXPLORER)
    assert not at.exception and not at.error
    assert at.text_input(key="int_M").value == "0.125" and at.number_input(key="int_acc").value == 777
    assert at.query_params["int_M"] == "0.125"
    open_tab(at, "int_view", WALK)  # and back: the walk-through kept its values while the explorer was open
    assert at.number_input(key="int_example").value == 2 and at.selectbox(key="int_layer").value == "fc3"
    assert _ledger(at) == before


def test_qat_mode_shows_the_float_model_with_the_same_extra_training():
    at = open_app(PAGE, {"dataset": "moons", "model": "tiny", "int_mode": "qat"})
    assert not at.exception and not at.error
    assert any("Fair comparison" in i.value and "fine-tuned the same way" in i.value for i in at.info)


def test_onnx_runtime_section_agrees_with_our_program_and_offers_the_file():
    at = open_tab(open_app(PAGE), "int_view", ONNX)
    assert not at.exception and not at.error
    m = metrics(at)
    assert _pts(m["ONNX Runtime int8 acc."]) > 90 and float(m["Same prediction"].rstrip("%")) >= 99.5
    assert int(m["Largest logit difference"].split()[0]) <= 2
    times = at.dataframe[-1].value
    assert list(times["runtime"][:4]) == ["torch float", "our integer program", "ONNX Runtime float",
                                          "ONNX Runtime int8"]
    assert set(times["batch"]) == {1024, 1} and (times["median ms"] > 0).all()
    assert (times.loc[times["runtime"] == "torch float", "× torch float"] == 1.0).all()
    assert any("ONNX model" in d.label for d in at.get("download_button"))


def test_onnx_runtime_runs_wide_and_narrow_codes_too():
    """16-bit weights are held in int16 (opset 21), 2-bit ones in int8 with our narrower range."""
    for w, a in ((16, 8), (2, 4)):
        at = open_app(PAGE, {"int_wbits": str(w), "int_abits": str(a), "int_view": ONNX})
        assert not at.exception and not at.error
        m = metrics(at)
        assert float(m["Same prediction"].rstrip("%")) >= 99.0 and int(m["Largest logit difference"].split()[0]) <= 2
