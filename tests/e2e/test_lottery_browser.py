"""The Lottery Ticket page in Chromium: a two-round run shows progress, then the curves and the mask images."""
from dataclasses import replace

from compress_core.lottery import LotteryConfig, cache_paths, ticket_train_config

from .conftest import assert_no_exception, open_page, screenshot, wait_for_app, wait_for_count


def _fresh(dataset: str, rounds: int = 2, controls: tuple = ("reinit", "random_mask")) -> None:
    """Remove the cached run of the settings the test uses, so the page really trains."""
    recipe = ticket_train_config(dataset, "mlp")
    cfg = LotteryConfig(dataset=dataset, model="mlp", rounds=rounds, rate=0.2, controls=controls,
                        train=replace(recipe, epochs=1), seed=0)
    for p in cache_paths(cfg):
        p.unlink(missing_ok=True)


def _run(page, url: str) -> None:
    open_page(page, url)
    page.get_by_text("Press Run to find a ticket").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="▶ Run", exact=True).click()
    page.get_by_text("What came out").first.wait_for(timeout=50_000)
    wait_for_app(page)
    assert_no_exception(page)


def test_two_rounds_show_curves_and_masks(server_url, page):
    _fresh("digits")
    _run(page, server_url + "/lottery?dataset=digits&model=mlp&lt_rounds=2&lt_epochs=1&lt_seeds=1")
    page.get_by_text("Accuracy as weights are pruned").first.wait_for()
    page.get_by_text("connections kept per input").first.wait_for()
    page.get_by_text("of the weights left").first.wait_for()
    plots = page.locator(".js-plotly-plot")
    wait_for_count(plots, 7)
    # the accuracy chart has the ticket and both controls; the mask image is a heatmap
    acc = plots.filter(has_text="Accuracy as weights are pruned").first
    legend = acc.locator(".legend").text_content()
    assert "winning ticket" in legend and "random re-init" in legend and "random mask" in legend
    mask_image = plots.filter(has_text="connections kept per input").first
    wait_for_count(mask_image.locator(".hm, image, .heatmaplayer"), 1)
    assert page.locator('[data-testid="stMetric"]').filter(has_text="Dense accuracy").count() == 1
    # the round slider redraws the mask for round 1
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Show the mask at round").get_by_role("slider").first
    thumb.focus()
    thumb.press("ArrowLeft")
    wait_for_app(page)
    page.get_by_text("Round 1: connections kept per input").first.wait_for(timeout=20_000)
    assert_no_exception(page)
    assert "lt_round=1" in page.url
    shot = screenshot(page, "lottery")
    assert shot.stat().st_size > 50_000

