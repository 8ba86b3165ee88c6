"""The Quantization page in Chromium: move the bit-width slider and see the grid and the accuracy change."""
from .conftest import assert_no_exception, screenshot, wait_for_app, wait_for_count


def _metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def _grid_title(page) -> str:
    """The grid chart's title plus its "S = …  Z = …" label."""
    plot = page.locator(".js-plotly-plot").first
    notes = [t for t in plot.locator(".annotation-text").all_text_contents() if "S =" in t]
    return plot.locator(".gtitle").first.text_content() + " | " + " ".join(notes)


def test_bit_width_slider_updates_grid_and_accuracy(server_url, page):
    page.goto(server_url + "/quantization?q_bits=8&q_qatcurve=0")  # QAT curve: covered by AppTest
    wait_for_app(page)
    page.get_by_text("The quantization grid on the data").first.wait_for(timeout=90_000)
    assert_no_exception(page)
    wait_for_count(page.locator(".js-plotly-plot"), 6)
    size8, title8 = _metric(page, "Model size"), _grid_title(page)
    assert "weights" in title8 and "S =" in title8 and "8 bits" in title8
    thumb = page.locator(".st-key-q_bits").get_by_role("slider").first
    thumb.focus()
    for _ in range(6):  # 8 -> 2 bits, one key press per step of the select slider
        page.keyboard.press("ArrowLeft")
    wait_for_app(page)
    page.wait_for_function("() => new URL(location.href).searchParams.get('q_bits') === '2'", timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    size2, title2 = _metric(page, "Model size"), _grid_title(page)
    assert float(size2.split()[0]) < float(size8.split()[0])
    assert title2 != title8  # a new grid: different scale
    acc2 = _metric(page, "Quantized accuracy")
    assert acc2.endswith("%")
    shot = screenshot(page, "quantization_2bit")
    assert shot.stat().st_size > 50_000
