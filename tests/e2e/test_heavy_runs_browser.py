"""Heavy runs queue on the shared pool and can be cancelled from the page, first-visit curves included."""
from playwright.sync_api import expect

from .conftest import assert_no_exception, wait_for_app


def test_cancel_a_first_visit_curve_and_start_it_again(server_url, page):
    # gradual pruning from θ0 trains the baseline recipe once per point: slow enough to cancel mid-way
    page.goto(server_url + "/pruning?pr_curve_ft=9&pr_gradual=scratch")
    expect(page.get_by_text("while training from θ0:").first).to_be_visible(timeout=300_000)  # the slow one
    page.get_by_role("button", name="Cancel").first.click()
    expect(page.get_by_text("cancelled.").first).to_be_visible(timeout=120_000)
    wait_for_app(page, timeout=600_000)
    assert_no_exception(page)
    expect(page.get_by_text("Weights of fc1").first).to_be_visible()  # the live view is still there
    again = page.get_by_role("button", name="Start it again")
    expect(again.first).to_be_visible()


def test_queue_position_is_shown_while_another_heavy_run_holds_the_worker(server_url, browser, page):
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        busy = other.new_page()
        busy.goto(server_url + "/pruning?pr_curve_ft=10&pr_gradual=finetune&pr_criterion=random")
        expect(busy.get_by_role("button", name="Cancel").first).to_be_visible(timeout=120_000)
        page.goto(server_url + "/quantization?q_mode=qat&q_epochs=7")
        # the single worker is busy with the other session's curves: this QAT waits its turn, and says so
        expect(page.get_by_text("queued for a free worker").first).to_be_visible(timeout=120_000)
        busy.get_by_role("button", name="Cancel").first.click()  # the other student gives up: ours starts
        wait_for_app(page, timeout=600_000)
        expect(page.get_by_text("QAT:").first).to_be_visible(timeout=60_000)
        assert_no_exception(page)
    finally:
        other.close()
