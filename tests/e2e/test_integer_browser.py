"""The Integer inference page in Chromium: the walk-through renders, and a new example changes its numbers."""
import re

from .conftest import assert_no_exception, open_page, screenshot, wait_for_app


def _ledger(page) -> str:
    table = page.locator("table").filter(has_text="accumulator").first
    table.wait_for(timeout=60_000)
    return table.inner_text()


def test_walk_through_follows_the_example(server_url, page):
    open_page(page, server_url + "/integer?dataset=digits&model=mlp&int_example=0&int_layer=fc1")
    page.get_by_text("One layer, step by step").first.wait_for(timeout=60_000)
    before = _ledger(page)
    acc_before = re.search(r"acc = .*?= ([\-\d,]+)", before).group(1)
    assert "M0·2^−n" in before and "clamp" in before
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 5", timeout=30_000)
    screenshot(page, "integer_walkthrough")

    box = page.get_by_role("spinbutton", name=re.compile(r"Test example"))
    box.fill("5")
    box.press("Enter")
    wait_for_app(page)
    assert_no_exception(page)
    page.wait_for_function("() => location.search.includes('int_example=5')", timeout=30_000)
    # the URL changes early in the rerun; wait for the table itself to be redrawn
    page.wait_for_function("""(old) => [...document.querySelectorAll('table')].some(
        t => t.innerText.includes('accumulator') && t.innerText !== old)""", arg=before, timeout=30_000)
    wait_for_app(page)
    after = _ledger(page)
    acc_after = re.search(r"acc = .*?= ([\-\d,]+)", after).group(1)
    assert after != before and acc_after != acc_before
    shot = screenshot(page, "integer_example5")
    assert shot.stat().st_size > 50_000


def test_cnn_layer_and_bad_setting(server_url, page):
    open_page(page, server_url + "/integer?dataset=digits&model=cnn&int_layer=conv2&int_example=3")
    assert "previous integer layer" in _ledger(page)
    page.get_by_text(re.compile(r"conv2: output .* \(channel \d+, position \d+\)")).first.wait_for(timeout=30_000)
    screenshot(page, "integer_cnn_conv2")
    # 16-bit weights and activations would overflow the int32 accumulator: a plain message, no exception box
    open_page(page, server_url + "/integer?dataset=digits&model=cnn&int_wbits=16&int_abits=16")
    page.get_by_text(re.compile("accumulator overflow risk")).first.wait_for(timeout=60_000)
    screenshot(page, "integer_overflow_error")
