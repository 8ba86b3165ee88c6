"""The Pruning page in Chromium: dragging the sparsity slider updates the histogram and the accuracy metric; the
page's lazy tabs open from the link and by a click."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    choose,
    expect_url_param,
    metric_value,
    open_page,
    screenshot,
    slider,
    wait_for_app,
)


def test_sparsity_slider_updates_histogram_and_accuracy(server_url, page):
    open_page(page, server_url + "/pruning")
    expect(page.get_by_role("tab", name="Weights and mask")).to_have_attribute("aria-selected", "true")  # default
    expect(page.get_by_text("Weights of fc1").first).to_be_visible(timeout=60_000)
    accuracy = metric_value(page, "Test accuracy")
    expect(accuracy).to_contain_text("%")
    legend = charts(page).first.locator(".legend")
    expect(legend).to_contain_text("removed")
    acc0, legend0 = accuracy.inner_text(), legend.text_content()
    thumb = slider(page, "Sparsity")
    thumb.focus()
    thumb.press("End")  # 99.9 %
    wait_for_app(page)
    expect(accuracy).not_to_have_text(acc0, timeout=30_000)
    expect(legend).not_to_have_text(legend0, timeout=30_000)
    expect_url_param(page, "pr_sparsity", "99.9")
    assert "page=" not in page.url
    assert_no_exception(page)
    screenshot(page, "pruning")


def test_the_histogram_follows_a_drag_in_the_browser(server_url, page):
    """Issue 9's stretch: during the drag, the browser itself redraws the histogram (no server round trip)."""
    open_page(page, server_url + "/pruning?dataset=digits&model=mlp&pr_layer=fc1")
    page.get_by_text("Follow the drag").click()
    frame = page.frame_locator("iframe").last
    info = frame.locator("#info")
    expect(info).to_contain_text("kept", timeout=60_000)
    slider = frame.locator("#s")
    texts = []
    for value in ("10", "50", "90", "99"):  # each 'input' event, as a drag sends them
        slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)
        expect(frame.locator("#v")).to_have_text(f"{float(value):.1f} %")
        texts.append(info.inner_text())
    kept = [int(t.split("kept ")[1].split(" ")[0].replace(",", "")) for t in texts]
    assert kept == sorted(kept, reverse=True) and kept[0] > kept[-1]
    assert abs(kept[2] - 0.1 * 19_200) <= 20  # 90 % of fc1's 19,200 weights go (float16 ties aside)
    assert frame.locator("rect").count() == 160 and float(frame.locator("#ms").inner_text()) >= 0
    assert_no_exception(page)


def test_tabs_open_from_the_link_and_by_a_click(server_url, page):
    """Only the open tab runs: the link names it (?pr_view=label), a click opens another and writes it there."""
    open_page(page, server_url + "/pruning?pr_view=Does+it+get+faster%3F")
    expect(page.get_by_role("tab", name="Does it get faster?")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("button", name="Download mask summary (JSON)")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Weights of fc1")).to_have_count(0)  # the closed tab did not run
    page.get_by_role("tab", name="Per layer").click()
    wait_for_app(page)
    expect_url_param(page, "pr_view", "Per+layer")
    expect(charts(page).filter(has_text="Sparsity per layer").first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Download mask summary (JSON)")).to_have_count(0)
    page.reload()  # the link keeps the open tab
    wait_for_app(page)
    expect(page.get_by_role("tab", name="Per layer")).to_have_attribute("aria-selected", "true")
    expect(charts(page).filter(has_text="Sparsity per layer").first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Weights and mask").click()  # back to the default: it leaves the link
    wait_for_app(page)
    expect(page).not_to_have_url(re.compile(r"[?&]pr_view="))
    expect(page.get_by_text("Weights of fc1").first).to_be_visible(timeout=60_000)
    assert_no_exception(page)


def test_the_drag_view_follows_the_chosen_layer(server_url, page):
    """The layer selector lives in the page's live fragment and the drag view outside it: choosing another layer
    reruns the page once, so the drag view's label and weights follow (it kept the old layer before)."""
    open_page(page, server_url + "/pruning?dataset=digits&model=mlp&pr_layer=fc1")
    expect(page.get_by_text("Follow the drag: fc1's weights")).to_be_visible(timeout=60_000)
    choose(page, page.locator(".st-key-pr_layer"), "fc2")
    expect(page.get_by_text("Weights of fc2").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Follow the drag: fc2's weights")).to_be_visible(timeout=30_000)
    expect_url_param(page, "pr_layer", "fc2")
    assert_no_exception(page)


def test_the_gpt_loses_whole_heads_and_neurons(server_url, page):
    """On the GPT the granularity control offers attention heads and MLP neurons: choosing them and moving the slider
    redraws what each block keeps, and the shrunk GPT is timed beside the dense one."""
    open_page(page, server_url + "/pruning?dataset=pydoc&model=gpt&pr_sparsity=50.0&pr_view=Per+layer")
    granularity = page.locator(".st-key-pr_granularity")
    granularity.get_by_text("attention heads (structured)").click()
    wait_for_app(page)
    expect_url_param(page, "pr_granularity", "head")
    blocks = charts(page).filter(has_text="Heads and MLP neurons kept per block").first
    expect(blocks).to_contain_text("2 of 4", timeout=60_000)
    expect(page.get_by_text("Parameters after surgery: 202,176")).to_be_visible(timeout=30_000)
    bits = metric_value(page, "Bits / char")
    magnitude_bits = bits.inner_text()
    page.locator(".st-key-pr_criterion").get_by_text("activation (heads, neurons)").click()
    wait_for_app(page)
    expect_url_param(page, "pr_criterion", "activation")
    expect(bits).not_to_have_text(magnitude_bits, timeout=60_000)  # other heads go: another bits per character
    granularity.get_by_text("MLP neurons (structured)").click()
    wait_for_app(page)
    expect(blocks).to_contain_text("192 of 384", timeout=60_000)
    thumb = slider(page, "Sparsity")
    thumb.focus()
    thumb.press("ArrowRight")  # 50 → 55 %: round(0.55 × 384) = 211 neurons go from each block
    wait_for_app(page)
    expect_url_param(page, "pr_sparsity", "55.0")
    expect(blocks).to_contain_text("173 of 384", timeout=60_000)
    expect(metric_value(page, "Bits / char")).to_be_visible(timeout=30_000)
    screenshot(page, "pruning_gpt_structured")
    page.get_by_role("tab", name="Does it get faster?").click()
    wait_for_app(page)
    choose(page, page.locator(".st-key-pr_batch"), "64")
    page.get_by_role("button", name="⏱ Measure latency").click(timeout=60_000)
    wait_for_app(page)
    timing = charts(page).filter(has_text="Measured forward time").first
    expect(timing).to_contain_text("structured (shrunk)", timeout=120_000)
    assert_no_exception(page)
    screenshot(page, "pruning_gpt_latency")
