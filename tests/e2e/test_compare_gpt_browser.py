"""The Compare page on a sized GPT in Chromium: the runs read bits per character, the chart minimises them, and the
drop debugger's revert toggle changes the score live."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    choose,
    expect_url_param,
    metric_value,
    open_page,
    open_tab,
    screenshot,
    slider,
    wait_for_app,
)


def test_compare_on_the_gpt_and_the_debugger_toggle(server_url, page):
    open_page(page, server_url + "/compare?dataset=pydoc&model=gpt%3A1x32h2")
    expect(page.get_by_text("magnitude 50 % + fine-tune").first).to_be_visible(timeout=120_000)
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible(timeout=120_000)
    grid = table.locator("table[role=grid]")
    expect(grid).to_have_attribute("aria-rowcount", "4", timeout=120_000)  # the header row and three runs
    expect(grid.locator("th").filter(has_text="bits / char").first).to_be_attached()
    bpc = [float(t) for t in grid.locator("td[aria-colindex='3']").all_text_contents()]
    assert all(1.0 < b < 6.7 for b in bpc), bpc
    size = charts(page).filter(has_text="Bits per character vs size")
    expect(size).to_have_count(1)
    expect(size.get_by_text("Pareto front")).to_be_visible()
    screenshot(page, "compare_gpt")
    open_tab(page, "Latency and energy")
    for axis in ("latency", "energy"):
        expect(charts(page).filter(has_text=f"Bits per character vs {axis}")).to_have_count(1, timeout=60_000)
    open_tab(page, "Per layer")
    layers = page.get_by_test_id("stDataFrame").last.locator("table[role=grid]")
    expect(layers.locator("td[aria-colindex='1']").filter(has_text="embed.tok")).to_have_count(1, timeout=60_000)
    expect(page.get_by_text("does not apply to the GPT").first).to_be_visible()
    screenshot(page, "compare_gpt_layers")
    # the drop debugger on the first variant (W4 weight-only)
    open_tab(page, "Which layer broke it?")
    page.get_by_test_id("stCheckbox").filter(has_text="Run the drop debugger").click()
    wait_for_app(page)
    chart = charts(page).filter(has_text="Which layer broke it")
    expect(chart).to_have_count(1, timeout=120_000)
    expect(metric_value(page, "With 0 layer(s) reverted")).to_have_text(re.compile(r"bits/char$"), timeout=60_000)
    before = metric_value(page, "With 0 layer(s) reverted").inner_text()
    page.get_by_test_id("stCheckbox").filter(has_text=re.compile(r"^block1\.mlp\.fc$")).click()
    wait_for_app(page)
    after = metric_value(page, "With 1 layer(s) reverted")
    expect(after).to_have_text(re.compile(r"bits/char$"), timeout=60_000)
    assert after.inner_text() != before  # putting the MLP's first layer back to float changed the score
    assert_no_exception(page)
    screenshot(page, "compare_gpt_debugger")


def test_the_budget_search_on_a_classifier_variant(server_url, page):
    open_page(page, server_url + "/compare?dataset=digits&model=mlp&cmp_view=Accuracy+budget")
    expect(page.get_by_role("tab", name="Accuracy budget")).to_have_attribute("aria-selected", "true",
                                                                              timeout=120_000)
    choose(page, page.get_by_test_id("stSelectbox").filter(has_text=re.compile(r"^Variant")), "2. int8")
    page.get_by_test_id("stCheckbox").filter(has_text="Search").click()
    wait_for_app(page)
    expect(metric_value(page, "Stored bytes")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("On the test split").first).to_be_visible()
    screenshot(page, "compare_budget")


def test_the_grid_on_the_gpt_reads_bits_per_character(server_url, page):
    open_page(page, server_url + "/compare?dataset=pydoc&model=gpt%3A1x32h2&cmp_view=Sparsity+%C3%97+bit+width"
                                 "&cmp_grid_sp=%5B50%2C70%5D&cmp_grid_bits=%5B8%2C4%2C2%5D&cmp_grid_ep=0&cmp_grid_on=1")
    heat = charts(page).filter(has_text="Bits per character over sparsity")
    expect(heat).to_have_count(1, timeout=180_000)
    expect(heat.get_by_text("bits/char").first).to_be_attached()
    expect(heat.get_by_text("70%")).to_be_attached()  # the link's two sparsities and three widths, not the defaults
    expect(heat.get_by_text("95%")).to_have_count(0)
    screenshot(page, "compare_gpt_grid")


def test_the_gpt_budget_in_bits_per_character(server_url, page):
    """On the GPT the budget is in bits per character: a key press on its slider moves the link, and the search from
    the W4 variant reads bits per character on validation and test."""
    open_page(page, server_url + "/compare?dataset=pydoc&model=gpt%3A1x32h2&cmp_view=Accuracy+budget")
    expect(page.get_by_role("tab", name="Accuracy budget")).to_have_attribute("aria-selected", "true",
                                                                              timeout=120_000)
    thumb = slider(page, "Budget (bits per character)")
    thumb.focus()
    thumb.press("ArrowRight")  # 0.05 → 0.1
    wait_for_app(page)
    expect_url_param(page, "cmp_budget_bits", "0.1")
    page.get_by_test_id("stCheckbox").filter(has_text="Search").click()
    wait_for_app(page)
    expect(metric_value(page, "Test bits / char")).to_have_text(re.compile(r"^\d\.\d{3}$"), timeout=120_000)
    expect(page.get_by_text("budget of 0.1 bits/char as tolerance").first).to_be_visible()
    screenshot(page, "compare_gpt_budget")
