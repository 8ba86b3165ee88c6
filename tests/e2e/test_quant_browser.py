"""The Quantization page in Chromium: move the bit-width slider and see the grid and the accuracy change; every tab
draws its charts."""
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
    wait_for_app,
)


def _grid_title(page) -> str:
    """The grid chart's title plus its "S = …  Z = …" label."""
    plot = charts(page).first
    notes = [t for t in plot.locator(".annotation-text").all_text_contents() if "S =" in t]
    return plot.locator(".gtitle").first.text_content() + " | " + " ".join(notes)


# the page's tabs (q_view; only the open one runs) and how many charts each draws
TABS = (("The grid", 2), ("Why per-channel helps", 1), ("Error per layer", 1), ("Accuracy vs bits and size", 2),
        ("Mixed precision", 1))


def test_bit_width_slider_updates_grid_and_accuracy(server_url, page):
    open_page(page, server_url + "/quantization?q_bits=8&q_qatcurve=0")  # QAT curve: covered by AppTest
    expect(page.get_by_role("tab", name="The grid")).to_have_attribute("aria-selected", "true")  # the default tab
    expect(charts(page).first).to_contain_text("8 bits", timeout=90_000)
    # every tab draws its charts (7 in all; the page drew at least 6 before it had tabs)
    for label, n in TABS[1:] + TABS[:1]:
        open_tab(page, label)
        expect_at_least(charts(page), n, timeout=90_000)
        assert_no_exception(page)
    expect(page).not_to_have_url(re.compile(r"[?&]q_view="))  # back on the default tab
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
