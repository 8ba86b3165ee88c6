"""The Compare page's Distill step in Chromium: a link with a distilled variant opens with the step's fields, and
one click adds its control (the same student trained as long without the teacher) as a second run."""
import re

from playwright.sync_api import expect

from compress_core.experiments import Distill, Prune
from ui.topics.compare import encode

from .conftest import assert_no_exception, open_page, screenshot, wait_for_app


def test_a_distilled_variant_and_its_control(server_url, page):
    link = encode([{"name": "kd", "steps": (Prune(sparsity=0.8, finetune_epochs=0), Distill(epochs=1))}])
    open_page(page, f"{server_url}/compare?cmp={link}")
    panel = page.get_by_test_id("stExpander").filter(has_text="distill T=4 α=0.9 1 ep")
    expect(panel).to_have_count(1, timeout=90_000)
    panel.get_by_text(re.compile(r"^1\. kd")).click()
    expect(panel.get_by_text("Step 2 · Distill")).to_be_visible()
    expect(panel.get_by_role("combobox", name="teacher")).to_have_value("the float baseline")
    expect(panel.get_by_test_id("stNumberInput").filter(has_text="alpha").locator("input")).to_have_value("0.90")
    panel.get_by_role("button", name="Add its control (no teacher)").click()
    wait_for_app(page)
    grid = page.get_by_test_id("stDataFrame").first.locator("table[role=grid]")
    expect(grid).to_have_attribute("aria-rowcount", "3", timeout=90_000)
    expect(grid.locator("td[aria-colindex='1']")).to_have_text(["kd", "kd (control)"])
    accuracies = [float(t) for t in grid.locator("td[aria-colindex='3']").all_text_contents()]
    assert all(0.5 < a <= 1.0 for a in accuracies), accuracies
    assert_no_exception(page)
    screenshot(page, "compare_distill")


def test_a_fine_tuned_variant_and_its_dense_control(server_url, page):
    """One click adds the dense control of a variant that trains: the float baseline fine-tuned as long, nothing
    compressed, as its own run."""
    link = encode([{"name": "ft", "steps": (Prune(sparsity=0.8, finetune_epochs=2),)}])
    open_page(page, f"{server_url}/compare?cmp={link}")
    panel = page.get_by_test_id("stExpander").filter(has_text="2 ep fine-tune")
    expect(panel).to_have_count(1, timeout=90_000)
    panel.get_by_text(re.compile(r"^1\. ft")).click()
    panel.get_by_role("button", name="Add its dense control (same training)").click()
    wait_for_app(page)
    grid = page.get_by_test_id("stDataFrame").first.locator("table[role=grid]")
    expect(grid).to_have_attribute("aria-rowcount", "3", timeout=90_000)
    expect(grid.locator("td[aria-colindex='1']")).to_have_text(["ft", "ft (dense control)"])
    expect(grid.locator("td[aria-colindex='2']").nth(1)).to_have_text("fine-tune 2 ep")
    assert_no_exception(page)
