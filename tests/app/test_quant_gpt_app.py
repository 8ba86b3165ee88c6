"""AppTest: the Quantization page on the GPT — bits per character with their standard errors, nested layers in the
layer picker, every control moved once, every tab drawn, QAT compared in bits per character."""
import json

import pytest

from .conftest import metrics, open_app, open_tab, table_with

PAGE = "app_pages/quantization.py"
GPT = {"dataset": "pydoc", "model": "gpt", "q_calib": "32"}  # 32 windows (2,048 characters) calibrate quickly
TABS = ("The grid", "Why per-channel helps", "Error per layer", "Accuracy vs bits and size", "Mixed precision")


def _tab(at, label):
    open_tab(at, "q_view", label)
    assert not at.exception, label
    assert not at.error, [e.value for e in at.error]
    return at


def _titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]



@pytest.fixture(scope="module")
def at():
    app = open_app(PAGE, GPT)
    assert not app.exception and not app.error
    return app


def test_the_gpt_is_quantized_not_refused_and_reads_in_bits_per_character(at):
    assert not any("works on the classifiers" in i.value for i in at.info)
    m = metrics(at)
    fl, q = float(m["Float bits / char"]), float(m["Quantized bits / char"])
    assert 1.0 < fl < 3.0 and abs(q - fl) < 0.1  # W8A8: near float
    assert 3.0 < float(m["Compression"].rstrip("×")) < 4.0
    caption = next(c.value for c in at.caption if c.value.startswith("Current setting"))
    assert "test windows (± 1 s.e.)" in caption and "paired window by window" in caption
    assert "stay float32" in caption
    layers = at.selectbox(key="q_layer").options
    assert layers[:3] == ["block1.attn.q", "block1.attn.k", "block1.attn.v"] and "block2.mlp.fc2" in layers


def test_every_tab_draws_on_the_gpt(at):
    for label in TABS:
        _tab(at, label)
        titles = _titles(at)
        assert titles, label
    _tab(at, "Error per layer")
    rep = table_with(at, "tensor")
    assert set(rep["tensor"]) == {"input", "weight"} and "block2.mlp.fc2" in set(rep["layer"])
    _tab(at, "Accuracy vs bits and size")
    assert "Bits per character vs bit width" in _titles(at)
    _tab(at, "Mixed precision")
    assert "Validation bits/char change, one layer quantized (+ = worse)" in _titles(at)
    assert any(m.label == "Mixed-precision bits / char (test)" for m in at.metric)
    at.slider(key="q_tol_bpc").set_value(0.2).run()
    assert not at.exception and not at.error and at.query_params["q_tol_bpc"] == "0.2"
    assert not any(c.key in ("q_db_float", "q_db_quant") for c in at.get("plotly_chart"))  # no 2-D boundaries
    _tab(at, "The grid")


def test_every_control_moved_once_on_the_gpt(at):
    before = metrics(at)["Quantized bits / char"]
    at.select_slider(key="q_bits").set_value(2).run()
    assert not at.exception and not at.error
    assert float(metrics(at)["Quantized bits / char"]) > float(before)  # 2-bit weights cost bits per character
    moves = [("radio", "q_scheme", "asymmetric"), ("radio", "q_gran", "per tensor"),
             ("selectbox", "q_method", "percentile"), ("radio", "q_target", "weights"),
             ("radio", "q_target", "activations"), ("radio", "q_target", "both"), ("toggle", "q_act8", False),
             ("toggle", "q_act_sym", True), ("toggle", "q_narrow", True), ("slider", "q_calib", 16),
             ("select_slider", "q_pct", 99.9), ("toggle", "q_lsq", False), ("slider", "q_epochs", 2),
             ("selectbox", "q_layer", "block2.mlp.fc2"), ("selectbox", "q_method", "minmax"),
             ("radio", "q_gran", "per channel")]
    for kind, key, value in moves:
        getattr(at, kind)(key=key).set_value(value).run()
        assert not at.exception, key
        assert not at.error, (key, [e.value for e in at.error])
    at.number_input(key="q_ch_block2.mlp.fc2").set_value(3).run()
    assert not at.exception and "channel 3" in " ".join(_titles(at))


def test_qat_fine_tunes_the_gpt_and_compares_in_bits_per_character():
    """On a small sized GPT (1 block, 32 wide: its baseline, QAT and control train in seconds), one epoch of QAT:
    the fair comparison and QAT against PTQ read in bits per character, paired over the test windows."""
    at = open_app(PAGE, {**GPT, "model": "gpt:1x32h2", "q_mode": "qat", "q_epochs": "1", "q_bits": "2",
                         "q_target": "weights"})
    assert not at.exception and not at.error, [e.value for e in at.error]
    fair = next(i.value for i in at.info if "Fair comparison" in i.value)
    vs_ptq = next(i.value for i in at.info if "QAT against PTQ" in i.value)
    assert "bits per character" in fair and "paired window by window" in fair
    assert "bits per character" in vs_ptq
    q = float(metrics(at)["Quantized bits / char"])
    assert f"the QAT model {q:.3f}" in fair
    assert "QAT fine-tuning, 1 epochs" in _titles(at)
    caption = next(c.value for c in at.caption if c.value.startswith("Current setting"))
    assert "QAT (fine-tune)" in caption


def test_the_integer_inference_page_still_refuses_the_gpt_clearly():
    at = open_app("app_pages/integer.py", GPT)
    assert not at.exception
    assert any("Integer inference" in i.value and "works on the classifiers" in i.value for i in at.info)


def test_the_gpt_calibrates_on_64_windows_unless_the_link_says_otherwise():
    at = open_app(PAGE, {"dataset": "pydoc", "model": "gpt"})
    assert not at.exception and not at.error
    assert at.slider(key="q_calib").value == 64
    assert "64 windows are 4,096 positions" in at.slider(key="q_calib").help
    assert "calibration on 64 examples" in next(c.value for c in at.caption if c.value.startswith("Current setting"))
