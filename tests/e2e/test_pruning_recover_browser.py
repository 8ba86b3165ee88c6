"""The Pruning page's "Which layer broke it?" and "Meet an accuracy budget" views in Chromium (issue 26): the per-layer
chart and the flipped digits draw, a keep-dense toggle changes the accuracy, the budget search ends in a verdict."""
import re

import pytest
from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    expect_at_least,
    expect_url_param,
    metric_value,
    open_page,
    screenshot,
    slider,
    wait_for_app,
)


def test_which_layer_broke_it_and_a_toggle(server_url, page):
    open_page(page, server_url + "/pruning?dataset=digits&model=mlp&pr_sparsity=95.0&pr_view=Which+layer+broke+it%3F")
    expect(page.get_by_text("Which layer broke it? Error per layer").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("flipped examples", exact=False).first).to_be_visible(timeout=60_000)
    expect_at_least(charts(page), 2)
    dense = metric_value(page, "Accuracy, chosen layers dense")
    expect(dense).to_contain_text("%")
    before = dense.inner_text()
    assert before == metric_value(page, "Accuracy, pruned").inner_text()
    screenshot(page, "pruning_which_layer")
    page.get_by_test_id("stCheckbox").filter(has_text="fc1").click()
    wait_for_app(page)
    expect(dense).not_to_have_text(before, timeout=30_000)
    assert_no_exception(page)
    screenshot(page, "pruning_which_layer_fc1_dense")


@pytest.mark.parametrize("data,model", [("mnist1d", "cnn"), ("moons", "tiny")])
def test_which_layer_on_signals_and_points(server_url, page, data, model):
    open_page(page, server_url + f"/pruning?dataset={data}&model={model}&pr_sparsity=95.0"
                                 "&pr_view=Which+layer+broke+it%3F")
    expect(page.get_by_text("Which layer broke it? Error per layer").first).to_be_visible(timeout=90_000)
    expect_at_least(charts(page), 2)
    assert_no_exception(page)
    screenshot(page, f"pruning_which_layer_{data}")


def test_meet_an_accuracy_budget(server_url, page):
    open_page(page, server_url + "/pruning?dataset=digits&model=mlp&pr_sparsity=95.0"
                                 "&pr_view=Meet+an+accuracy+budget&pr_budget=1.0")
    expect(page.get_by_text("Per-layer rates the search chose").first).to_be_visible(timeout=90_000)
    expect(page.get_by_text("On the test split").first).to_be_visible()
    expect(metric_value(page, "Size found")).to_contain_text("KB")
    assert_no_exception(page)
    screenshot(page, "pruning_budget")


def test_which_layer_on_the_gpt(server_url, page):
    open_page(page, server_url + "/pruning?dataset=pydoc&model=gpt&pr_sparsity=50.0"
                                 "&pr_view=Which+layer+broke+it%3F", timeout=180_000)
    expect(page.get_by_text("Which layer broke it? Error per layer").first).to_be_visible(timeout=120_000)
    expect(page.get_by_text("held-out characters changed their most likely prediction").first).to_be_visible()
    expect(metric_value(page, "Bits / char, chosen layers dense")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "pruning_which_layer_gpt")


def test_the_gpt_budget_in_bits_per_character(server_url, page):
    """On the GPT the budget slider is in bits per character: a key press moves it and the link, and the search
    ends with bits per character against the baseline and the verdict."""
    open_page(page, server_url + "/pruning?dataset=pydoc&model=gpt%3A1x32h2&pr_sparsity=70.0&pr_budget_step=0.2"
                                 "&pr_view=Meet+an+accuracy+budget&pr_budget_bits=0.05", timeout=180_000)
    expect(page.get_by_text("Per-layer rates the search chose").first).to_be_visible(timeout=120_000)
    thumb = slider(page, "Budget: most bits per character to add")
    thumb.focus()
    thumb.press("ArrowRight")  # 0.05 → 0.1
    wait_for_app(page)
    expect_url_param(page, "pr_budget_bits", "0.1")
    expect(page.get_by_text("the budget allows 0.1)").first).to_be_visible(timeout=120_000)
    expect(metric_value(page, "Test bits / char (reported)")).to_have_text(re.compile(r"^\d\.\d{3}$"))
    assert_no_exception(page)
    screenshot(page, "pruning_budget_gpt")
