"""The Quantization page's "Which layer broke it?" tab in Chromium: the per-layer chart and the flipped examples
draw; a "keep in float" switch changes the accuracy and the link."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    expect_at_least,
    expect_url_param,
    metric_value,
    open_page,
    open_tab,
    screenshot,
    slider,
    wait_for_app,
)

TAB = "Which layer broke it?"


def _switch(page, layer: str):
    return page.locator(f".st-key-q_float_{layer} input").first


def test_float_toggle_changes_accuracy_and_flips_draw_as_images(server_url, page):
    open_page(page, server_url + "/quantization?dataset=digits&model=cnn&q_bits=3&q_qatcurve=0")
    open_tab(page, TAB)
    expect_at_least(charts(page), 2, timeout=90_000)  # the per-layer chart and the flipped images
    expect(charts(page).first).to_contain_text("that layer alone")
    expect(charts(page).nth(1)).to_contain_text("flipped examples")
    expect(charts(page).nth(1)).to_contain_text("quantized")
    kept = metric_value(page, "With the kept layers in float")
    quantized = metric_value(page, "Quantized accuracy (test)")
    expect(kept).to_have_text(quantized.inner_text())  # nothing kept in float yet
    screenshot(page, "quantization_which_layer_digits")
    before = kept.inner_text()
    page.locator(".st-key-q_float_conv1 label").first.click()
    expect_url_param(page, "q_float_conv1", "1")
    wait_for_app(page)
    expect(_switch(page, "conv1")).to_be_checked(timeout=60_000)
    for layer in ("conv2", "fc1", "fc2", "fc3"):  # every layer in float: the float model's accuracy
        page.locator(f".st-key-q_float_{layer} label").first.click()
        wait_for_app(page)
    expect(kept).to_have_text(metric_value(page, "Float accuracy (test)").inner_text(), timeout=30_000)
    assert kept.inner_text() != before or before == metric_value(page, "Float accuracy (test)").inner_text()
    assert_no_exception(page)
    screenshot(page, "quantization_which_layer_all_float", full=False)


def test_flips_draw_as_signals_and_points(server_url, page):
    open_page(page, server_url + "/quantization?dataset=mnist1d&model=cnn&q_bits=3&q_qatcurve=0")
    open_tab(page, TAB)
    expect_at_least(charts(page), 2, timeout=90_000)
    expect(charts(page).nth(1)).to_contain_text("flipped examples")
    expect(metric_value(page, "With the kept layers in float")).to_have_text(re.compile(r"\d.*%$"))
    screenshot(page, "quantization_which_layer_mnist1d")
    open_page(page, server_url + "/quantization?dataset=moons&model=mlp&q_bits=2&q_qatcurve=0&q_view=" + TAB)
    wait_for_app(page)
    expect_at_least(charts(page), 1, timeout=90_000)
    screenshot(page, "quantization_which_layer_moons")


def test_budget_search_runs_and_a_fix_shows_its_gain(server_url, page):
    open_page(page, server_url + "/quantization?dataset=digits&model=cnn&q_bits=3&q_qatcurve=0&q_fix=cle_bc")
    expect(page.get_by_test_id("stMetric").filter(has_text="Gain vs plain PTQ")).to_be_visible(
        timeout=90_000)
    open_tab(page, "Meet an accuracy budget")
    page.locator(".st-key-q_budget_run label").first.click()
    expect_url_param(page, "q_budget_run", "1")
    expect(page.get_by_text("Verdict on the test split").first).to_be_visible(timeout=120_000)
    wait_for_app(page)
    expect(metric_value(page, "Size")).to_have_text(re.compile(r"KB$"))
    assert_no_exception(page)
    screenshot(page, "quantization_budget_digits")


def test_gpt_layer_table_and_a_float_switch(server_url, page):
    open_page(page, server_url + "/quantization?dataset=pydoc&model=gpt&q_calib=32&q_bits=3", timeout=180_000)
    open_tab(page, TAB)
    expect_at_least(charts(page), 1, timeout=120_000)
    kept = metric_value(page, "With the kept layers in float")
    expect(kept).to_have_text(metric_value(page, "Quantized bits / char (these windows)").inner_text())
    page.locator(".st-key-q_float_block1_attn_q label, [class*='st-key-q_float_block1'] label").first.click()
    wait_for_app(page)
    expect(page.get_by_text("Flipped examples are for classifiers").first).to_be_visible()
    expect(page.get_by_text("next-character predictions change").first).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "quantization_which_layer_gpt")


def test_gpt_budget_in_bits_per_character(server_url, page):
    """On the GPT the budget slider is in bits per character: a key press moves it (and the link), the search runs
    on the pool and reads out bits per character against float, with the verdict."""
    open_page(page, server_url + "/quantization?dataset=pydoc&model=gpt&q_calib=32&q_bits=4&q_budget_bits=0.05",
              timeout=180_000)
    open_tab(page, "Meet an accuracy budget")
    thumb = slider(page, "Bits per character you may add")
    thumb.focus()
    thumb.press("ArrowRight")  # 0.05 → 0.06
    wait_for_app(page)
    expect_url_param(page, "q_budget_bits", "0.06")
    page.locator(".st-key-q_budget_run label").first.click()
    expect_url_param(page, "q_budget_run", "1")
    expect(page.get_by_text("Verdict on the test split").first).to_be_visible(timeout=180_000)
    wait_for_app(page)
    expect(page.get_by_text("(budget 0.06 bits/char)").first).to_be_visible()
    expect(metric_value(page, "Test bits / char")).to_have_text(re.compile(r"^\d\.\d{3}$"))
    expect(metric_value(page, "Size")).to_have_text(re.compile(r"KB$"))
    screenshot(page, "quantization_budget_gpt")


def test_the_gpt_budget_search_can_be_cancelled_and_started_again(server_url, page):
    """The GPT's budget search (a minute at 3 bits and 0.01 bits per character) runs on the heavy-run pool: its
    Cancel button stops it, the page says so and offers to start it again, and the page above stays live."""
    page.goto(server_url + "/quantization?dataset=pydoc&model=gpt&q_calib=32&q_bits=3&q_budget_bits=0.01"
                           "&q_budget_run=1&q_view=Meet+an+accuracy+budget")
    cancel = page.get_by_role("button", name="Cancel")
    expect(cancel.first).to_be_visible(timeout=180_000)
    cancel.first.click()
    expect(page.get_by_text("Accuracy-budget search: cancelled.").first).to_be_visible(timeout=120_000)
    wait_for_app(page)
    expect(page.get_by_role("button", name="Start it again").first).to_be_visible()
    expect(metric_value(page, "Quantized bits / char")).to_have_text(re.compile(r"^\d\.\d{3}$"))
    assert_no_exception(page)
