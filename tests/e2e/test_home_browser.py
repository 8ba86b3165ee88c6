"""The app in a real browser: it starts, finishes its first run without an exception, and shows the home page."""
from playwright.sync_api import expect

from .conftest import assert_no_exception, charts, expect_at_least, expect_url_param, open_page, screenshot


def test_home_loads_in_chromium(server_url, page):
    open_page(page, server_url)
    expect(page.get_by_text("The trained baseline").first).to_be_visible(timeout=60_000)
    expect_at_least(page.get_by_test_id("stMetric"), 7)
    page.get_by_role("tab", name="The data").click()  # the other tabs load the data set and the network
    expect_url_param(page, "home_view", "The+data")
    expect_at_least(charts(page), 1)
    page.get_by_role("tab", name="Training").click()
    expect(page.get_by_text("Training curves").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    assert_no_exception(page)
    screenshot(page, "home")


def test_link_restores_selection(server_url, page):
    open_page(page, server_url + "/?dataset=moons&model=tiny&seed=1&home_view=Training")
    expect(page.get_by_text("Decision boundary on the test points").first).to_be_visible(timeout=60_000)
    expect_url_param(page, "dataset", "moons")
    expect_url_param(page, "model", "tiny")
    assert_no_exception(page)
    screenshot(page, "home_moons")
