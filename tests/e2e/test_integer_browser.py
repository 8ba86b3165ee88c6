"""The Integer inference page in Chromium: the walk-through renders, and a new example changes its numbers."""
import re
from urllib.parse import urlencode

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    expect_at_least,
    expect_url_param,
    open_page,
    open_tab,
    screenshot,
    wait_for_app,
)

# the page's tabs (int_view) and the walk-through's own (int_walk): only the open one runs
WALK, LEDGER, ONNX = "One layer, step by step", "One output, step by step", "The same network in ONNX Runtime"
ON_THE_LEDGER = "&" + urlencode({"int_view": WALK, "int_walk": LEDGER})


def _ledger(page):
    """The walk-through's table (the one with the accumulator row)."""
    return page.locator("table").filter(has_text="accumulator").first


def _acc(text: str) -> str:
    return re.search(r"acc = .*?= ([\-\d,]+)", text).group(1)


def test_walk_through_follows_the_example(server_url, page):
    open_page(page, server_url + "/integer?dataset=digits&model=mlp&int_example=0&int_layer=fc1" + ON_THE_LEDGER)
    expect(page.get_by_role("tab", name=WALK)).to_have_attribute("aria-selected", "true", timeout=60_000)
    expect(page.get_by_role("tab", name=LEDGER)).to_have_attribute("aria-selected", "true")
    ledger = _ledger(page)
    expect(ledger).to_contain_text("M0·2^−n", timeout=60_000)
    expect(ledger).to_contain_text("clamp")
    before = ledger.inner_text()
    expect_at_least(charts(page), 2)  # this output's layer, integer vs float; how big each number is
    screenshot(page, "integer_walkthrough")

    box = page.get_by_role("spinbutton", name=re.compile(r"Test example"))
    box.fill("5")
    box.press("Enter")
    expect_url_param(page, "int_example", "5")
    # the URL changes early in the rerun; wait for the table itself to be redrawn
    expect(ledger).not_to_have_text(before, timeout=30_000)
    wait_for_app(page)
    assert _acc(ledger.inner_text()) != _acc(before)
    assert_no_exception(page)
    screenshot(page, "integer_example5")
    # the other tabs' charts (6 with the ledger's two; the page drew at least 5 before it had tabs)
    for label, n in (("The example in the three models", 1), ("The whole model, on integers", 2),
                     ("The multiplier explorer", 1)):
        open_tab(page, label)
        expect_at_least(charts(page), n)
        assert_no_exception(page)


def test_cnn_layer_and_bad_setting(server_url, page):
    open_page(page, server_url + "/integer?dataset=digits&model=cnn&int_layer=conv2&int_example=3" + ON_THE_LEDGER)
    expect(_ledger(page)).to_contain_text("previous integer layer", timeout=60_000)
    expect(page.get_by_text(re.compile(r"conv2: output .* \(channel \d+, position \d+\)")).first).to_be_visible()
    screenshot(page, "integer_cnn_conv2")
    # 16-bit weights and activations would overflow the int32 accumulator: a plain message, no exception box
    open_page(page, server_url + "/integer?dataset=digits&model=cnn&int_wbits=16&int_abits=16")
    expect(page.get_by_text(re.compile("accumulator overflow risk")).first).to_be_visible(timeout=60_000)
    assert_no_exception(page)
    screenshot(page, "integer_overflow_error")


def test_onnx_model_downloads_and_runs_in_onnx_runtime(server_url, page):
    import numpy as np
    import onnx
    import onnxruntime

    open_page(page, server_url + "/integer?dataset=digits&model=mlp&" + urlencode({"int_view": ONNX}))
    button = page.get_by_role("button", name=re.compile(r"Download the ONNX model"))
    expect(button).to_be_visible(timeout=90_000)
    expect(page.get_by_test_id("stMetric").filter(has_text="Same prediction")).to_be_visible()
    with page.expect_download() as info:
        button.click()
    data = open(info.value.path(), "rb").read()
    size = int(re.search(r"\(([\d,]+) bytes\)", button.inner_text()).group(1).replace(",", ""))
    assert len(data) == size  # the size on the button is the file's
    onnx.checker.check_model(onnx.load_from_string(data))
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = session.run(None, {name: np.zeros((2, 1, 8, 8), dtype=np.float32)})[0]
    assert logits.shape == (2, 10)
    assert_no_exception(page)
