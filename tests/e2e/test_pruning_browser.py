"""The Pruning page in Chromium: dragging the sparsity slider updates the histogram and the accuracy metric."""
from .conftest import assert_no_exception, open_page, screenshot, wait_for_app


def metric_value(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def histogram_legend(page) -> str:
    return page.locator(".js-plotly-plot").first.locator(".legend").text_content()


def test_sparsity_slider_updates_histogram_and_accuracy(server_url, page):
    open_page(page, server_url + "/pruning?pr_curve_ft=1")  # 1 fine-tuning epoch per curve point: a faster first run
    page.get_by_text("Weights of fc1").first.wait_for(timeout=60_000)
    acc0, legend0 = metric_value(page, "Test accuracy"), histogram_legend(page)
    assert "removed" in legend0
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Sparsity").get_by_role("slider").first
    thumb.focus()
    thumb.press("End")  # 99.9 %
    wait_for_app(page)
    assert_no_exception(page)
    page.wait_for_function("""([prev]) => {
        const m = [...document.querySelectorAll('[data-testid="stMetric"]')].find(e => e.innerText.includes('Test accuracy'));
        return m && !m.innerText.includes(prev); }""", arg=[acc0], timeout=30_000)
    assert metric_value(page, "Test accuracy") != acc0
    assert histogram_legend(page) != legend0
    assert "page=" not in page.url and "pr_sparsity=99.9" in page.url
    shot = screenshot(page, "pruning")
    assert shot.stat().st_size > 50_000

