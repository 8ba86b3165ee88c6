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


def test_the_histogram_follows_a_drag_in_the_browser(server_url, page):
    """Issue 9's stretch: during the drag, the browser itself redraws the histogram (no server round trip)."""
    open_page(page, server_url + "/pruning?dataset=digits&model=mlp&pr_layer=fc1")
    page.get_by_text("Follow the drag").click()
    frame = page.frame_locator("iframe").last
    info = frame.locator("#info")
    expect(info).to_contain_text("kept", timeout=60_000)
    slider = frame.locator("#s")
    texts = []
    for value in ("10", "50", "90", "99"):  # each 'input' event, as a drag sends them
        slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)
        expect(frame.locator("#v")).to_have_text(f"{float(value):.1f} %")
        texts.append(info.inner_text())
    kept = [int(t.split("kept ")[1].split(" ")[0].replace(",", "")) for t in texts]
    assert kept == sorted(kept, reverse=True) and kept[0] > kept[-1]
    assert abs(kept[2] - 0.1 * 19_200) <= 20  # 90 % of fc1's 19,200 weights go (float16 ties aside)
    assert frame.locator("rect").count() == 160 and float(frame.locator("#ms").inner_text()) >= 0
    assert_no_exception(page)
