"""Two students on one server: sessions with different settings, interleaved, each see only their own numbers.

Every heavy result is cached process-wide and shared (``ui.memo.Memo``), so this is the check that a shared
cache never leaks one session's setting into another's page.
"""
import re

from playwright.sync_api import expect

from .conftest import assert_no_exception, metric_value, open_page, slider, wait_for_app


def _accuracy(page) -> str:
    loc = metric_value(page, "Test accuracy")
    expect(loc).to_contain_text("%")
    return loc.inner_text()


def test_interleaved_sessions_keep_their_own_settings_and_numbers(server_url, browser):
    a_ctx, b_ctx = browser.new_context(viewport={"width": 1280, "height": 900}), browser.new_context(
        viewport={"width": 1280, "height": 900})
    try:
        a, b = a_ctx.new_page(), b_ctx.new_page()
        open_page(a, server_url + "/pruning?pr_curve_ft=1")
        open_page(b, server_url + "/pruning?pr_curve_ft=1&pr_sparsity=50.0")
        a0, b0 = _accuracy(a), _accuracy(b)
        # A moves to 99.9 %: A's numbers change, B's page (a different session) does not
        thumb = slider(a, "Sparsity")
        thumb.focus()
        thumb.press("End")
        wait_for_app(a)
        expect(metric_value(a, "Test accuracy")).not_to_have_text(a0, timeout=30_000)
        a1 = _accuracy(a)
        b.wait_for_timeout(500)
        assert _accuracy(b) == b0 and "pr_sparsity=50.0" in b.url
        # B moves one step; then A reruns by itself (a reload): each still shows its own setting's numbers
        thumb_b = slider(b, "Sparsity")
        thumb_b.focus()
        thumb_b.press("ArrowRight")
        wait_for_app(b)
        expect(b).not_to_have_url(re.compile(r"pr_sparsity=50\.0(&|$)"), timeout=30_000)
        a.reload()
        wait_for_app(a)
        assert "pr_sparsity=99.9" in a.url
        expect(metric_value(a, "Test accuracy")).to_have_text(a1, timeout=30_000)
        assert_no_exception(a)
        assert_no_exception(b)
    finally:
        a_ctx.close()
        b_ctx.close()
