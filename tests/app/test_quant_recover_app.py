"""AppTest: the Quantization page's "Which layer broke it?" and "Meet an accuracy budget" tabs."""
import time

import pytest

from compress_core.baselines import get_baseline
from compress_core.data import load_dataset
from compress_core.quant import quantize_model
from compress_core.quant.report import make_config
from compress_core.recover import DropDebugger
from compress_core.settings import default_train_config

from .conftest import metrics, open_app, open_tab, table_with

PAGE = "app_pages/quantization.py"
WHICH, BUDGET = "Which layer broke it?", "Meet an accuracy budget"
Q3 = {"dataset": "digits", "model": "cnn", "q_bits": "3", "q_qatcurve": "0"}  # W3A8


def _pct(s: str) -> float:
    return float(s.rstrip("%"))


def _library_accuracy(kept: list[str]) -> float:
    """What ``DropDebugger.revert`` gives for the page's default 3-bit setting with ``kept`` in float, on the test
    split: the number the page must show."""
    ds = load_dataset("digits", seed=0)
    b = get_baseline("digits", "cnn", seed=0, train_config=default_train_config("digits", "cnn"))
    cfg = make_config(3, "both", symmetric=True, per_channel=True, method="minmax", keep_act8=True,
                      narrow_range=False, percentile=99.99)
    q = quantize_model(b.model, cfg, ds.x_train[:256])
    return DropDebugger(b.model, q, ds.x_test, ds.y_test).revert(kept).accuracy


@pytest.fixture(scope="module")
def at():
    app = open_app(PAGE, query=Q3)
    assert not app.exception
    open_tab(app, "q_view", WHICH)
    assert not app.exception and not app.error
    return app


def test_tab_shows_layers_flips_and_toggles(at):
    table = table_with(at, "SQNR only this layer (dB)")
    assert list(table["layer"]) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert (table["weight bits"] == 3).all()
    assert any(k.startswith("q_float_") for k in (t.key for t in at.toggle))
    flips = table_with(at, "first divergent layer")
    assert len(flips) > 0 and "true" in flips.columns
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("flipped examples: true class, float and quantized predictions" in s for s in titles)
    assert any("that layer alone" in s for s in titles)


def test_toggle_to_float_gives_the_library_accuracy(at):
    at.toggle(key="q_float_conv1").set_value(True).run()
    assert not at.exception and not at.error
    m = metrics(at)
    assert _pct(m["With the kept layers in float"]) == pytest.approx(100 * _library_accuracy(["conv1"]), abs=0.006)
    assert at.query_params["q_float_conv1"] == "1"
    at.toggle(key="q_float_fc1").set_value(True).run()
    assert _pct(metrics(at)["With the kept layers in float"]) == pytest.approx(
        100 * _library_accuracy(["conv1", "fc1"]), abs=0.006)
    at.radio(key="q_dbg_scale").set_value("relative MSE").run()
    assert not at.exception and not at.error


def test_every_layer_in_float_is_the_float_model(at):
    for u in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        at.toggle(key=f"q_float_{u}").set_value(True)
    at.run()
    m = metrics(at)
    assert m["With the kept layers in float"] == m["Float accuracy (test)"]


def test_budget_search_finishes_with_a_verdict():
    at = open_app(PAGE, query={**Q3, "q_view": BUDGET})
    assert not at.exception
    at.slider(key="q_budget").set_value(1.0).run()
    at.toggle(key="q_budget_run").set_value(True).run()
    deadline = time.monotonic() + 240
    while not any("Verdict on the test split" in s.value for s in list(at.success) + list(at.warning)):
        assert not at.exception and not at.error, at.error
        assert time.monotonic() < deadline, "the budget search did not finish"
        at.run()
    assert "budget 1 points" in next(s.value for s in list(at.success) + list(at.warning) if "Verdict" in s.value)
    settings = table_with(at, "weight bits")
    assert list(settings["layer"]) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert "Size" in metrics(at)


def _wait(at, done, what: str, seconds: float = 240):
    deadline = time.monotonic() + seconds
    while not done(at):
        assert not at.exception and not at.error, at.error
        assert time.monotonic() < deadline, f"{what} did not finish"
        at.run()
    return at


def test_post_training_fixes_show_their_gain_against_plain_ptq():
    at = open_app(PAGE, query=Q3)
    plain = _pct(metrics(at)["Quantized accuracy"])
    at.selectbox(key="q_fix").set_value("cle_bc").run()
    assert not at.exception and not at.error
    m = metrics(at)
    gain = m["Gain vs plain PTQ"]
    assert float(gain.split()[0]) == pytest.approx(_pct(m["Quantized accuracy"]) - plain, abs=0.011)
    # its ± is the standard error paired example by example, from the library's two models on the test split
    from compress_core.recover.equalize import correct_bias, equalize
    from compress_core.stats import compare_paired
    from compress_core.train import evaluate_examples

    ds = load_dataset("digits", seed=0)
    b = get_baseline("digits", "cnn", seed=0, train_config=default_train_config("digits", "cnn"))
    cfg = make_config(3, "both", symmetric=True, per_channel=True, method="minmax", keep_act8=True,
                      narrow_range=False, percentile=99.99)
    calib, eq = ds.x_train[:256], equalize(b.model)
    fixed = correct_bias(quantize_model(eq, cfg, calib), eq, calib)
    c = compare_paired(evaluate_examples(fixed, ds.x_test, ds.y_test)[1].numpy(),
                       evaluate_examples(quantize_model(b.model, cfg, calib), ds.x_test, ds.y_test)[1].numpy())
    assert gain == f"{c.diff:+.2f} ± {c.se:.2f} pts"
    assert at.query_params["q_fix"] == "cle_bc"
    open_tab(at, "q_view", WHICH)  # the debugger compares with the equalized float model: same float accuracy
    assert not at.exception and not at.error
    assert metrics(at)["Float accuracy (test)"] == metrics(at)["Float accuracy"]
    at.selectbox(key="q_fix").set_value("adaround").run()
    _wait(at, lambda a: "Gain vs plain PTQ" in metrics(a) and any("AdaRound** against" in c.value for c in a.caption),
          "AdaRound")
    assert any("AdaRound" in c.value and "points, 1 s.e." in c.value for c in at.caption)


GPT = {"dataset": "pydoc", "model": "gpt", "q_calib": "32", "q_bits": "4"}


def test_gpt_gets_the_layer_table_and_revert_and_plain_words_for_the_rest():
    at = open_app(PAGE, query={**GPT, "q_view": WHICH})
    assert not at.exception and not at.error
    table = table_with(at, "SQNR only this layer (dB)")
    assert len(table) > 4 and any("." in n for n in table["layer"])
    assert metrics(at)["With the kept layers in float"] == metrics(at)["Quantized bits / char (these windows)"]
    for name in table["layer"]:  # every layer back to float: the float GPT's bits per character
        at.toggle(key=f"q_float_{name}").set_value(True)
    at.run()
    assert not at.exception and not at.error
    assert metrics(at)["With the kept layers in float"] == metrics(at)["Float bits / char (these windows)"]
    assert any("Flipped examples are for classifiers" in c.value for c in at.caption)
    assert any("next-character predictions change" in m.value for m in at.markdown)
    at.selectbox(key="q_fix").set_value("adaround").run()
    assert not at.exception and any("for the classifiers" in i.value for i in at.info)



def test_gpt_budget_in_bits_per_character_reads_what_the_library_finds():
    """On the GPT the budget is in bits per character: the slider, the search on the pool, and a verdict and
    metrics equal to ``quant_budget_search``'s own for the page's setting (W4A8, 32 calibration windows)."""
    from compress_core.recover import quant_budget_search

    at = open_app(PAGE, query={**GPT, "q_view": BUDGET})
    assert not at.exception and not at.error
    assert at.slider(key="q_budget_bits").label == "Bits per character you may add"
    at.slider(key="q_budget_bits").set_value(0.08).run()
    at.toggle(key="q_budget_run").set_value(True).run()
    _wait(at, lambda a: any("Verdict on the test split" in s.value for s in list(a.success) + list(a.warning)),
          "the GPT's budget search")
    verdict = next(s.value for s in list(at.success) + list(at.warning) if "Verdict" in s.value)
    assert at.query_params["q_budget_bits"] == "0.08"
    ds = load_dataset("pydoc", seed=0)
    b = get_baseline("pydoc", "gpt", seed=0, train_config=default_train_config("pydoc", "gpt"))
    cfg = make_config(4, "both", symmetric=True, per_channel=True, method="minmax", keep_act8=True,
                      narrow_range=False, percentile=99.99)
    res = quant_budget_search(b.model, ds, cfg, 0.08, unit="bits", calibration_data=ds.x_train[:32])
    assert f"(budget 0.08 bits/char): {res.verdict()}" in verdict
    m = metrics(at)
    assert m["Test bits / char"] == f"{res.test_bpc:.3f}" and m["Validation bits / char"] == f"{res.val_bpc:.3f}"
    assert list(table_with(at, "weight bits")["layer"]) == [n for n, _ in res.settings]
