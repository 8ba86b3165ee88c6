"""The Lottery Ticket page in Chromium: a two-round run shows progress, then the curves and the mask images."""
from dataclasses import replace

from playwright.sync_api import expect

from compress_core.lottery import LotteryConfig, cache_paths, ticket_train_config

from .conftest import (
    assert_no_exception,
    charts,
    expect_at_least,
    expect_url_param,
    open_page,
    open_tab,
    screenshot,
    slider,
    wait_for_app,
)


def _fresh(dataset: str, rounds: int = 2, controls: tuple = ("reinit", "random_mask")) -> None:
    """Remove the cached run of the settings the test uses, so the page really trains."""
    recipe = ticket_train_config(dataset, "mlp")
    cfg = LotteryConfig(dataset=dataset, model="mlp", rounds=rounds, rate=0.2, controls=controls,
                        train=replace(recipe, epochs=1), seed=0)
    for p in cache_paths(cfg):
        p.unlink(missing_ok=True)


def _run(page, url: str) -> None:
    open_page(page, url)
    expect(page.get_by_text("Press Run to find a ticket").first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="▶ Run", exact=True).click()
    expect(page.get_by_text("What came out").first).to_be_visible(timeout=50_000)
    wait_for_app(page)
    assert_no_exception(page)


def test_two_rounds_show_curves_and_masks(server_url, page):
    _fresh("digits")
    _run(page, server_url + "/lottery?dataset=digits&model=mlp&lt_rounds=2&lt_epochs=1&lt_seeds=1")
    for text in ("Accuracy as weights are pruned", "connections kept per input", "of the weights left"):
        expect(page.get_by_text(text).first).to_be_visible()
    expect_at_least(charts(page), 6)  # accuracy, early stop, the first layer's two, the round's curves, the paper's
    # the accuracy chart has the ticket and both controls; the mask image is a heatmap
    legend = charts(page).filter(has_text="Accuracy as weights are pruned").first.locator(".legend")
    for name in ("winning ticket", "random re-init", "random mask"):
        expect(legend).to_contain_text(name)
    mask_image = charts(page).filter(has_text="connections kept per input").first
    expect_at_least(mask_image.locator(".hm, image, .heatmaplayer"), 1)
    expect(page.get_by_test_id("stMetric").filter(has_text="Dense accuracy")).to_have_count(1)
    # the verdict gives each difference with its standard error, and says how it is computed
    expect(page.get_by_test_id("stAlert").filter(has_text="points, 1 s.e.").first).to_be_visible()
    expect(page.get_by_text("± is one standard error").first).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Ticket there")).to_contain_text("±")
    # the round slider redraws the mask for round 1
    thumb = slider(page, "Show the mask at round")
    thumb.focus()
    thumb.press("ArrowLeft")
    expect_url_param(page, "lt_round", "1")
    expect(page.get_by_text("Round 1: connections kept per input").first).to_be_visible(timeout=20_000)
    wait_for_app(page)
    assert_no_exception(page)
    # the mask's other views, each in its tab (only the open one is drawn)
    for label, title in (("Every layer", "Weights remaining per layer"), ("Overlap between masks", "masks overlap")):
        open_tab(page, label)
        expect(charts(page).filter(has_text=title).first).to_be_visible(timeout=30_000)
        assert_no_exception(page)
    open_tab(page, "The first layer")
    screenshot(page, "lottery")
