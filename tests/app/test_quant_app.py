"""AppTest: every control of the Quantization page, links that restore the view, and bad input."""
import json
import re
from types import SimpleNamespace

import pytest

from .conftest import chart_text, gap_points, metrics, open_app, open_tab, table_with

PAGE = "app_pages/quantization.py"
GRID, PER_CHANNEL, ERRORS, CURVES, MIXED = ("The grid", "Why per-channel helps", "Error per layer",
                                           "Accuracy vs bits and size", "Mixed precision")


def _tab(at, label):
    """Open the tab ``label`` of the page's lazy tabs (only the open one runs)."""
    open_tab(at, "q_view", label)
    assert not at.exception, label
    return at


def _pct(s: str) -> float:
    return float(s.rstrip("%"))


def _kb(s: str) -> float:
    return float(s.split()[0])



@pytest.fixture(scope="module")
def at():
    app = open_app(PAGE, query={"q_qatcurve": "0"})  # the QAT curve trains models: tested once, below
    assert not app.exception
    return app


def test_default_view_is_8_bit_and_near_float(at):
    m = metrics(at)
    assert abs(_pct(m["Quantized accuracy"]) - _pct(m["Float accuracy"])) <= 0.5
    assert 3.0 < float(m["Compression"].rstrip("×")) < 4.0  # int8 weights + scales ≈ 4× smaller than float32
    assert len(at.error) == 0
    assert at.query_params["q_bits"] == "8" and at.query_params["q_target"] == "both"
    rep = table_with(_tab(at, ERRORS), "tensor")
    assert set(rep["tensor"]) == {"input", "weight", "output"} and (rep["bits"] == 8).all()
    assert (rep["granularity"][rep["tensor"] == "weight"] == "per channel").all()
    assert any("Published" in i.value for i in at.info)


def test_accuracies_carry_their_standard_error(at):
    # digits: 360 test images; 8 bits is within a few images of float, far inside 2 s.e. (about 1.9 points)
    caption = next(c.value for c in at.caption if c.value.startswith("Current setting"))
    assert "Test accuracy ± 0.7 pts (1 s.e., 360 test images)" in caption
    assert "the change from float is within the noise of this test set (one test image is 0.28 points on digits' " \
           "360 test images)" in caption
    help_ = next(m.help for m in at.metric if m.label == "Quantized accuracy")
    assert "± 0.7 pts (1 s.e., 360 test images)" in help_ and "within noise" in help_
    _tab(at, CURVES)
    curves = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                  if json.loads(c.proto.spec)["layout"].get("title", {}).get("text") == "Test accuracy vs bit width")
    for trace in curves["data"]:
        if trace["name"].startswith("PTQ"):  # ± 1 s.e. on every point: √(p(1 − p)/360)
            assert trace["error_y"]["array"] == pytest.approx([(p * (1 - p) / 360) ** 0.5 for p in trace["y"]])
    assert any("Error bars: ± 1 standard error" in c.value for c in at.caption)


def test_bit_width_slider_changes_size_and_grid(at):
    before = metrics(_tab(at, PER_CHANNEL))
    at.select_slider(key="q_bits").set_value(2).run()
    assert not at.exception and len(at.error) == 0
    after = metrics(at)
    assert _kb(after["Model size"]) < _kb(before["Model size"]) / 2
    assert after["SQNR per tensor"] != before["SQNR per tensor"]  # the grid of the layer shown got coarser
    assert at.query_params["q_bits"] == "2"
    _tab(at, ERRORS)
    rep = table_with(at, "tensor")
    assert (rep["bits"][rep["tensor"] == "weight"] == 2).all()
    at.select_slider(key="q_bits").set_value(16).run()
    assert not at.exception and float(metrics(at)["Compression"].rstrip("×")) < 2.1
    at.select_slider(key="q_bits").set_value(1).run()
    assert not at.exception and any("1 bit" in w.value for w in at.warning)
    at.select_slider(key="q_bits").set_value(8).run()


def test_scheme_granularity_and_calibration_controls():
    at = open_app(PAGE, query={"q_qatcurve": "0", "q_pct": "99.0", "q_calib": "64"})
    assert at.select_slider(key="q_pct").value == 99.0 and at.slider(key="q_calib").value == 64
    _tab(at, ERRORS)
    at.radio(key="q_scheme").set_value("asymmetric").run()
    assert not at.exception
    rep = table_with(at, "tensor")
    assert (rep["scheme"] == "asymmetric").all()
    at.radio(key="q_gran").set_value("per tensor").run()
    assert not at.exception
    rep = table_with(at, "tensor")
    assert (rep["granularity"] == "per tensor").all()
    for method in ("moving_average", "percentile", "kl"):  # every method's maths: tests/test_quant*.py
        at.selectbox(key="q_method").set_value(method).run()
        assert not at.exception and len(at.error) == 0, method
        assert at.query_params["q_method"] == method
    assert at.query_params["q_calib"] == "64" and at.query_params["q_scheme"] == "asymmetric"


def test_what_to_quantize_and_activation_bits(at):
    _tab(at, ERRORS)
    at.radio(key="q_target").set_value("weights").run()
    assert not at.exception
    assert set(table_with(at, "tensor")["tensor"]) == {"weight"}
    at.radio(key="q_target").set_value("activations").run()
    assert not at.exception
    assert set(table_with(at, "tensor")["tensor"]) == {"input", "output"}
    at.radio(key="q_target").set_value("both").run()
    at.select_slider(key="q_bits").set_value(4).run()
    assert (table_with(at, "tensor").query("tensor == 'output'")["bits"] == 8).all()  # W4A8 by default
    at.toggle(key="q_act8").set_value(False).run()
    assert not at.exception
    assert (table_with(at, "tensor").query("tensor == 'output'")["bits"] == 4).all()
    at.toggle(key="q_act8").set_value(True).run()
    at.select_slider(key="q_bits").set_value(8).run()


def test_layer_channel_and_mixed_precision_controls(at):
    at.selectbox(key="q_layer").set_value("fc2").run()
    assert not at.exception and at.query_params["q_layer"] == "fc2"
    _tab(at, GRID)
    at.number_input(key="q_ch_fc2").set_value(3).run()
    assert not at.exception
    assert any("channel 3" in (md.value or "") for md in at.markdown) or at.number_input(key="q_ch_fc2").value == 3
    before = metrics(_tab(at, MIXED))["Mixed-precision size"]
    at.slider(key="q_tol").set_value(10.0).run()
    assert not at.exception
    assert _kb(metrics(at)["Mixed-precision size"]) <= _kb(before)


def test_qat_mode_trains_and_reports():
    # a small model keeps the training short: QAT of the current setting plus the QAT curve
    at = open_app(PAGE, query={"dataset": "moons", "model": "tiny", "q_mode": "qat", "q_bits": "3", "q_epochs": "1"})
    assert not at.exception and len(at.error) == 0
    m = metrics(at)
    assert _pct(m["Quantized accuracy"]) > 80
    _tab(at, CURVES)
    assert not at.error
    assert at.toggle(key="q_qatcurve").value  # the QAT curve is on by default and was trained here
    names = {t.get("name") for c in at.get("plotly_chart") for t in json.loads(c.proto.spec).get("data", [])}
    assert "QAT per channel" in names and "PTQ per tensor" in names
    # QAT's gain over PTQ at each bit width, ± its standard error on moons' 250 test points, called within noise
    # exactly when it is within 2 standard errors
    gains = next(i.value for i in at.info if i.value.startswith("QAT against PTQ per channel at the same bit width"))
    assert "(difference ± 1 s.e., 250 test examples)" in gains
    parts = re.findall(r"(\d+) bits ([+−]\d+\.\d) ± (\d+\.\d) points \((QAT better|QAT worse|within noise)\)", gains)
    assert [int(p[0]) for p in parts] == [2, 3, 4, 6, 8], gains
    for part in parts:
        diff, se, tag = float(part[1].replace("−", "-")), float(part[2]), f"({part[3]})"
        if abs(abs(diff) - 2 * se) > 0.15:  # away from the boundary, where the one-decimal display could mislead
            assert (tag == "(within noise)") == (abs(diff) < 2 * se), part
    if "(within noise)" in gains:
        assert "QAT's gain over PTQ is within the noise of this test set: one test example is 0.40 points on moons' " \
               "250 test examples." in gains
    vs_ptq = next(i.value for i in at.info if i.value.startswith("**QAT against PTQ.**"))  # still above the tabs
    assert "1 s.e., 250 test examples" in vs_ptq and " ± " in vs_ptq
    at.toggle(key="q_lsq").set_value(False).run()
    assert not at.exception


def test_bad_input_gets_plain_messages():
    # unknown values in a link fall back to defaults; an impossible setting explains itself
    at = open_app(PAGE, query={"q_bits": "99", "q_method": "magic", "q_calib": "-5", "q_qatcurve": "0"})
    assert not at.exception
    assert at.select_slider(key="q_bits").value == 8 and at.selectbox(key="q_method").value == "minmax"
    at.toggle(key="q_narrow").set_value(True).run()
    at.select_slider(key="q_bits").set_value(1).run()
    assert not at.exception
    assert any("Narrow range needs at least 2 bits" in e.value for e in at.error)


def test_two_dimensional_data_shows_both_decision_boundaries():
    at = open_app(PAGE, query={"dataset": "moons", "model": "tiny", "q_bits": "2", "q_qatcurve": "0"})
    assert not at.exception and len(at.error) == 0
    charts = {}  # every chart of every tab (the open tab's, and the static ones below the tabs), by its element id
    for label in (GRID, PER_CHANNEL, ERRORS, CURVES, MIXED):
        _tab(at, label)
        assert len(at.error) == 0, label
        shown = {c.proto.id: json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")
                 for c in at.get("plotly_chart")}
        if label == ERRORS:  # both decision boundaries, next to the error chart
            assert "Float model" in shown.values() and any(t.startswith("Quantized (") for t in shown.values())
        charts |= shown
    assert len(charts) >= 8  # grid over staircase, channels, errors, 2 boundaries, 2 curves, heatmap, published


def test_output_channel_lives_in_the_url():
    at = open_app(PAGE, {"q_layer": "fc2", "q_ch_fc2": "7"})
    assert not at.exception and at.number_input(key="q_ch_fc2").value == 7
    at.number_input(key="q_ch_fc2").set_value(9).run()
    assert at.query_params["q_ch_fc2"] == "9"
    bad = open_app(PAGE, {"q_layer": "fc2", "q_ch_fc2": "5000"})  # out of range: back to the widest channel
    assert not bad.exception and bad.number_input(key="q_ch_fc2").value != 5000


def test_the_grid_chart_is_built_once_per_result_layer_and_channel():
    """A bit width or channel seen before, by any session, reuses its figure (shared, never changed); a different
    setting, layer or channel gets its own, and the chart on screen reads the channel shown."""
    from ui.topics import quant as uq

    at = open_app(PAGE, {"q_layer": "fc2", "q_ch_fc2": "7"})
    assert not at.exception
    before = dict(uq._GRIDS.data)
    again = open_app(PAGE, {"q_layer": "fc2", "q_ch_fc2": "7"})  # another session, the same setting
    assert not again.exception and dict(uq._GRIDS.data) == before  # nothing rebuilt
    (rkey, layer, channel), fig = next((k, v) for k, v in before.items() if k[1:] == ("fc2", 7))
    assert "channel 7" in fig.layout.title.text
    spec = json.loads(next(c.proto.spec for c in again.get("plotly_chart") if "channel 7" in chart_text(c)))
    assert spec["layout"]["title"]["text"] == fig.layout.title.text
    again.number_input(key="q_ch_fc2").set_value(9).run()
    assert (rkey, "fc2", 9) in uq._GRIDS.data
    again.select_slider(key="q_bits").set_value(4).run()
    assert not again.exception and len({k[0] for k in uq._GRIDS.data}) >= 2  # the new bit width: a new result
    ptq, qat = (SimpleNamespace(calib=256, mode=m, epochs=2, lsq=False, fix="none", fixed=False)
                for m in ("ptq", "qat"))
    cle = SimpleNamespace(calib=256, mode="ptq", epochs=2, lsq=False, fix="cle_bc", fixed=True)
    cfg = uq.make_config(bits=8)
    assert uq.result_key(("k",), cfg, ptq) != uq.result_key(("k",), cfg, qat)  # QAT's result is another model
    assert uq.result_key(("k",), cfg, ptq) != uq.result_key(("k",), cfg, cle)  # so is a fixed PTQ
    assert uq.result_key(("k",), cfg, ptq) != uq.result_key(("k",), uq.make_config(bits=4), ptq)


def test_qat_shows_its_training_curve_and_the_float_model_with_the_same_extra_training():
    at = open_app(PAGE, {"dataset": "moons", "model": "tiny", "q_mode": "qat", "q_epochs": "2", "q_qatcurve": "0"})
    assert not at.exception and not at.error
    fair = next(i.value for i in at.info if "Fair comparison" in i.value)
    q = float(metrics(at)["Quantized accuracy"].rstrip("%"))
    dense = float(fair.split("scores **")[1].split("%")[0])
    assert gap_points(fair) == pytest.approx(q - dense, abs=0.011)
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert "QAT fine-tuning, 2 epochs" in titles


def test_one_click_to_the_data_set_where_the_lesson_shows():
    at = open_app(PAGE)
    assert any("MNIST-1D's CNN" in i.value for i in at.info)
    at.button(key="q_lesson").click().run()
    assert not at.exception
    assert at.sidebar.selectbox(key="dataset").value == "mnist1d"
    assert at.sidebar.selectbox(key="model_pick").value == "cnn"
    assert at.query_params["dataset"] == "mnist1d" and at.query_params["model"] == "cnn"
    assert not any(b.key == "q_lesson" for b in at.button)  # already there: no button


def test_qat_curve_has_its_float_control():
    at = _tab(open_app(PAGE, {"dataset": "moons", "model": "tiny"}), CURVES)
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"].get("title", {}).get("text") == "Test accuracy vs bit width")
    assert any("QAT's fine-tuning" in a["text"] for a in spec["layout"]["annotations"])
