"""The Quantization page in Chromium: move the bit-width slider and see the grid and the accuracy change."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    expect_at_least,
    expect_url_param,
    metric_value,
    open_page,
    screenshot,
    wait_for_app,
)


def _grid_title(page) -> str:
    """The grid chart's title plus its "S = …  Z = …" label."""
    plot = charts(page).first
    notes = [t for t in plot.locator(".annotation-text").all_text_contents() if "S =" in t]
    return plot.locator(".gtitle").first.text_content() + " | " + " ".join(notes)


def test_bit_width_slider_updates_grid_and_accuracy(server_url, page):
    open_page(page, server_url + "/quantization?q_bits=8&q_qatcurve=0")  # QAT curve: covered by AppTest
    expect(page.get_by_text("The quantization grid on the data").first).to_be_visible(timeout=90_000)
    expect_at_least(charts(page), 6)
    expect(charts(page).first).to_contain_text("8 bits")
    size = metric_value(page, "Model size")
    size8, title8 = size.inner_text(), _grid_title(page)
    assert "weights" in title8 and "S =" in title8
    # accuracies carry their standard error on digits' 360 test images
    expect(page.get_by_text("Test accuracy ± 0.7 pts (1 s.e., 360 test images)").first).to_be_visible()
    thumb = page.locator(".st-key-q_bits").get_by_role("slider").first
    thumb.focus()
    for _ in range(6):  # 8 -> 2 bits, one key press per step of the select slider
        page.keyboard.press("ArrowLeft")
    expect_url_param(page, "q_bits", "2")
    wait_for_app(page)
    expect(size).not_to_have_text(size8, timeout=30_000)
    expect(charts(page).first).to_contain_text("2 bits", timeout=30_000)
    assert float(size.inner_text().split()[0]) < float(size8.split()[0])
    assert _grid_title(page) != title8  # a new grid: different scale
    expect(metric_value(page, "Quantized accuracy")).to_have_text(re.compile(r"\d.*%$"))
    assert_no_exception(page)
    screenshot(page, "quantization_2bit")
