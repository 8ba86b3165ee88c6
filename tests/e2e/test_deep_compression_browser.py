"""The Deep compression page in Chromium: run the pipeline, see the stage table (the file last), the charts and the
compressed file's download."""
from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    expect_at_least,
    metric_value,
    open_page,
    open_tab,
    screenshot,
)


def _kb(page, label: str) -> float:
    return float(metric_value(page, label).inner_text().split()[0])


def test_pipeline_stage_table_and_charts(server_url, page):
    open_page(page, server_url + "/deep-compression?dc_sparsity=90.0&dc_rounds=2&dc_epochs=1&dc_bits=4&dc_cepochs=1")
    # the page's tabs (dc_view; only the open one runs): the stages first
    expect(page.get_by_role("tab", name="Stage by stage")).to_have_attribute("aria-selected", "true", timeout=60_000)
    expect(page.get_by_role("tab", name="Han's formula vs measured")).to_be_visible()
    expect(page.get_by_test_id("stTable").first).to_contain_text("Huffman-coded file")  # the stage table
    expect_at_least(charts(page), 1)  # size over accuracy by stage: one chart
    # every chart, each in its tab
    for label, titles in (("Shared values of one layer", ("16 shared values",)),
                          ("Han's formula vs measured", ("formula vs measured",)),
                          ("The file: relative indices and Huffman coding", ("Where the file's",)),
                          ("Stage by stage", ("Stored size by stage", "Test accuracy by stage"))):
        open_tab(page, label)
        for title in titles:
            expect(charts(page).filter(has_text=title).first, f"a chart titled {title!r}").to_be_visible(
                timeout=60_000)
        assert_no_exception(page)
    # the size chart's bar labels: one per stage (dense, 2 pruning rounds, k-means, tuned centroids, the file)
    bars = charts(page).filter(has_text="Stored size by stage").locator(".bartext")
    expect(bars).to_have_count(6)
    expect(bars.first).to_have_text("1.0×")  # each bar says its ratio to dense (the sizes are in the table)
    final = float(bars.last.text_content().rstrip("×"))  # whole numbers from 10× up
    assert abs(final - _kb(page, "Dense size") / _kb(page, "File size")) < (0.51 if final >= 10 else 0.1)
    assert _kb(page, "File size") < _kb(page, "Dense size") / 8
    download = page.get_by_role("button", name="Download the compressed file")
    expect(download).to_be_visible()
    size = int(download.inner_text().split("(")[1].split()[0].replace(",", ""))
    assert abs(size / 1024 - _kb(page, "File size")) < 0.01  # the button's length is the size shown
    assert_no_exception(page)
    screenshot(page, "deep_compression")
