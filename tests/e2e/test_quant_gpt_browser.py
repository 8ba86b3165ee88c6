"""The Quantization page in Chromium on the tiny GPT: bits per character, a nested layer picked, the bit width,
scheme and target moved, and every tab drawing its charts."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    choose,
    expect_at_least,
    expect_url_param,
    metric_value,
    open_page,
    open_tab,
    screenshot,
    wait_for_app,
)

GPT = "/quantization?dataset=pydoc&model=gpt&q_calib=32"
TABS = (("Why per-channel helps", 1), ("Error per layer", 1), ("Accuracy vs bits and size", 2),
        ("Mixed precision", 1), ("The grid", 1))


def test_quantization_page_controls_on_the_gpt(server_url, page):
    open_page(page, server_url + GPT)
    expect(page.get_by_text("Quantized bits / char")).to_be_visible(timeout=180_000)  # the GPT trains once (cached)
    expect(charts(page).first).to_contain_text("block1.attn.q weights", timeout=90_000)
    bpc8 = metric_value(page, "Quantized bits / char").inner_text()
    assert re.fullmatch(r"\d\.\d{3}", bpc8)

    # a nested layer from the picker: the last of 12, typed, as the list draws only the options in view
    choose(page, page.locator(".st-key-q_layer"), "block2.mlp.fc2")
    expect_url_param(page, "q_layer", "block2.mlp.fc2")
    expect(charts(page).first).to_contain_text("block2.mlp.fc2 weights", timeout=60_000)

    # 8 -> 2 bits: the grid gets coarser and the GPT loses bits per character
    thumb = page.locator(".st-key-q_bits").get_by_role("slider").first
    thumb.focus()
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    expect_url_param(page, "q_bits", "2")
    wait_for_app(page)
    expect(charts(page).first).to_contain_text("2 bits", timeout=60_000)
    expect(metric_value(page, "Quantized bits / char")).not_to_have_text(bpc8, timeout=60_000)
    assert float(metric_value(page, "Quantized bits / char").inner_text()) > float(bpc8)

    # scheme and what to quantize
    page.locator(".st-key-q_scheme").get_by_text("asymmetric").click()
    expect_url_param(page, "q_scheme", "asymmetric")
    wait_for_app(page)
    page.locator(".st-key-q_target").get_by_text("Weights", exact=True).click()
    expect_url_param(page, "q_target", "weights")
    wait_for_app(page)
    assert_no_exception(page)

    for label, n in TABS:
        open_tab(page, label)
        expect_at_least(charts(page), n, timeout=180_000)  # the scan runs once on the heavy-run pool
        assert_no_exception(page)
        if label in ("Error per layer", "Mixed precision"):
            screenshot(page, "quantization_gpt_" + label.split()[0].lower())
    open_tab(page, "Accuracy vs bits and size")
    expect(charts(page).first).to_contain_text("Bits per character vs bit width", timeout=120_000)
    screenshot(page, "quantization_gpt_curves")
    open_tab(page, "The grid")
    expect(charts(page).first).to_contain_text("block2.mlp.fc2 weights", timeout=60_000)
    screenshot(page, "quantization_gpt")
