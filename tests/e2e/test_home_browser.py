"""The app in a real browser: it starts, finishes its first run without an exception, and shows the home page."""
from .conftest import open_page, screenshot


def test_home_loads_in_chromium(server_url, page):
    open_page(page, server_url)
    page.get_by_text("The trained baseline").first.wait_for()
    page.locator('[data-testid="stMetric"]').nth(6).wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    assert page.get_by_text("Page not found").count() == 0
    shot = screenshot(page, "home")
    assert shot.stat().st_size > 10_000


def test_link_restores_selection(server_url, page):
    open_page(page, server_url + "/?dataset=moons&model=tiny&seed=1")
    page.get_by_text("Decision boundary on the test points").first.wait_for(timeout=60_000)
    assert "dataset=moons" in page.url and "model=tiny" in page.url
    screenshot(page, "home_moons")
