"""The Compare page in Chromium: add two variants from presets, run them, read the runs table and the Pareto chart
(the Runs tab), then the latency and energy charts (their own tab)."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    choose,
    expect_at_least,
    expect_url_param,
    open_page,
    screenshot,
    wait_for_app,
)


def _add(page, preset: str) -> None:
    choose(page, page.get_by_test_id("stSelectbox").filter(has_text="Start a new variant from"), preset)
    page.get_by_role("button", name="➕ Add variant").click()
    wait_for_app(page)


def test_add_two_variants_run_them_table_and_pareto(server_url, page):
    open_page(page, server_url + "/compare")
    expect(page.get_by_text("prune 90 % + int4").first).to_be_visible(timeout=90_000)
    _add(page, "structured 50 % + int8")
    _add(page, "int2 QAT")
    # five variants: the three defaults and the two added, each a row of the runs table (drawn on a canvas;
    # its cells are read from the hidden accessible grid Streamlit renders beside it)
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible(timeout=90_000)
    expect(page.get_by_test_id("stExpander").filter(has_text="int2 QAT")).to_have_count(1, timeout=90_000)
    grid = table.locator("table[role=grid]")
    expect(grid).to_have_attribute("aria-rowcount", "6", timeout=90_000)  # the header row and five runs
    names = grid.locator("td[aria-colindex='1']")
    expect(names).to_have_text(["prune 90 %", "int8", "prune 90 % + int4", "structured 50 % + int8", "int2 QAT"])
    accuracies = [float(t) for t in grid.locator("td[aria-colindex='3']").all_text_contents()]
    assert all(0.5 < a <= 1.0 for a in accuracies), accuracies
    # the Runs tab (open by default): accuracy vs stored size with the Pareto front
    expect_at_least(charts(page), 1)
    size = charts(page).filter(has_text="Accuracy vs size")
    expect(size).to_have_count(1)
    expect(size.get_by_text("Pareto front")).to_be_visible()
    expect(size.get_by_text(re.compile(r"^5\. int2 QAT$"))).to_be_visible()
    # the other two trade-off charts are in the "Latency and energy" tab
    page.get_by_role("tab", name="Latency and energy").click()
    wait_for_app(page)
    expect_url_param(page, "cmp_view", "Latency+and+energy")
    expect_at_least(charts(page), 2)
    for axis in ("latency", "energy"):
        chart = charts(page).filter(has_text=f"Accuracy vs {axis}")
        expect(chart).to_have_count(1)
        expect(chart.get_by_text(re.compile(r"^5\. int2 QAT$"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]cmp="))
    # the link reopens the same five variants
    link = page.url
    open_page(page, link)
    expect(page.get_by_test_id("stExpander").filter(has_text="structured 50 % + int8")).to_have_count(1,
                                                                                                      timeout=90_000)
    panels = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"[1-6]\. .+ — "))
    expect(panels).to_have_count(5)
    assert_no_exception(page)
    screenshot(page, "compare")
