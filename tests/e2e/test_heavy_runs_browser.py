"""Heavy runs queue on the shared pool and can be cancelled from the page, first-visit curves included."""
import random

from playwright.sync_api import expect

from .conftest import assert_no_exception, open_page, wait_for_app


def test_cancel_a_first_visit_curve_and_start_it_again(server_url, page):
    # gradual pruning from θ0 trains the baseline recipe once per point: slow enough to cancel mid-way
    page.goto(server_url + "/pruning?pr_curve_ft=9&pr_gradual=scratch&pr_view=Accuracy+vs+sparsity")
    expect(page.get_by_text("while training from θ0:").first).to_be_visible(timeout=300_000)  # the slow one
    page.get_by_role("button", name="Cancel").first.click()
    expect(page.get_by_text("cancelled.").first).to_be_visible(timeout=120_000)
    wait_for_app(page, timeout=600_000)
    assert_no_exception(page)
    again = page.get_by_role("button", name="Start it again")
    expect(again.first).to_be_visible()
    # the live view is still there: the metrics above the tabs, and the default tab's histogram
    expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_be_visible()
    page.get_by_role("tab", name="Weights and mask").click()
    wait_for_app(page)
    expect(page.get_by_text("Weights of fc1").first).to_be_visible(timeout=60_000)
    assert_no_exception(page)


def test_queue_position_is_shown_while_another_heavy_run_holds_the_worker(server_url, browser, page):
    """Another student's lottery experiment (minutes long) holds the one worker: a QAT asked for meanwhile waits,
    says so, and runs as soon as that experiment is stopped."""
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        busy = other.new_page()
        # a seed no earlier run used, so no finished rounds wait in the disk cache: the experiment really trains
        seed = random.randint(1000, 9999)
        open_page(busy, server_url + f"/lottery?seed={seed}&lt_rounds=20&lt_seeds=3&lt_epochs=30")
        busy.get_by_role("button", name="▶ Run", exact=True).click()  # exact: "run" is inside "Pruning"
        expect(busy.get_by_role("button", name="■ Stop", exact=True)).to_be_enabled(timeout=60_000)  # running
        page.goto(server_url + "/quantization?q_mode=qat&q_epochs=7&q_qatcurve=0")
        expect(page.get_by_text("queued for a free worker").first).to_be_visible(timeout=120_000)
        busy.get_by_role("button", name="■ Stop", exact=True).click()  # the other student stops: ours starts
        wait_for_app(page, timeout=600_000)
        expect(page.get_by_text("Fair comparison").first).to_be_visible(timeout=300_000)  # QAT, then its control
        assert_no_exception(page)
    finally:
        other.close()
