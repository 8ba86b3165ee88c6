"""The Pruning page in Chromium: dragging the sparsity slider updates the histogram and the accuracy metric."""
from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    expect_url_param,
    metric_value,
    open_page,
    screenshot,
    slider,
    wait_for_app,
)


def test_sparsity_slider_updates_histogram_and_accuracy(server_url, page):
    # 1 fine-tuning epoch per curve point: a faster first run
    open_page(page, server_url + "/pruning?pr_curve_ft=1")
    expect(page.get_by_text("Weights of fc1").first).to_be_visible(timeout=60_000)
    accuracy = metric_value(page, "Test accuracy")
    expect(accuracy).to_contain_text("%")
    legend = charts(page).first.locator(".legend")
    expect(legend).to_contain_text("removed")
    acc0, legend0 = accuracy.inner_text(), legend.text_content()
    thumb = slider(page, "Sparsity")
    thumb.focus()
    thumb.press("End")  # 99.9 %
    wait_for_app(page)
    expect(accuracy).not_to_have_text(acc0, timeout=30_000)
    expect(legend).not_to_have_text(legend0, timeout=30_000)
    expect_url_param(page, "pr_sparsity", "99.9")
    assert "page=" not in page.url
    assert_no_exception(page)
    screenshot(page, "pruning")
