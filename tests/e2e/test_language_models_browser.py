"""The Language models page in Chromium, on the tiny GPT: every view draws, and each of its controls (layer, α,
bits, group size, sparsity, KV grouping, the generate controls) changes what is drawn, with the link following."""
import re

from playwright.sync_api import expect

from .conftest import (
    assert_no_exception,
    charts,
    choose,
    expect_at_least,
    expect_url_param,
    open_page,
    open_tab,
    screenshot,
    slider,
    wait_for_app,
)

GPT = "/language-models?dataset=pydoc&model=gpt"


def _pick(page, key: str, option: str) -> None:
    """Choose ``option`` in the selectbox with widget key ``key``."""
    choose(page, page.locator(f".st-key-{key}"), option)


def _radio(page, key: str, option: str, value: str, drawn: str) -> None:
    """Click ``option`` of the radio ``key``: the link holds ``value`` and the first chart then shows ``drawn``."""
    page.locator(f".st-key-{key}").get_by_text(option).click()
    expect_url_param(page, key, value)
    wait_for_app(page)
    expect(charts(page).first).to_contain_text(drawn, timeout=120_000)


def test_every_view_and_control_of_the_language_models_page(server_url, page):
    open_page(page, server_url + GPT)
    expect(page.get_by_text("Float bits / char")).to_be_visible(timeout=180_000)  # the GPT trains once (cached)
    # Outliers: the layer picker redraws the channel chart
    expect_at_least(charts(page), 2, timeout=120_000)
    expect(charts(page).first).to_contain_text("block1.attn.q: input channels")
    _pick(page, "lm_layer", "block1.mlp.fc2")
    expect_url_param(page, "lm_layer", "block1.mlp.fc2")
    expect(charts(page).first).to_contain_text("block1.mlp.fc2: input channels")
    assert_no_exception(page)

    # SmoothQuant: α moves the marker
    open_tab(page, "SmoothQuant")
    expect_at_least(charts(page), 2, timeout=120_000)
    expect(charts(page).first).to_contain_text("α = 0.5")
    thumb = slider(page, "Migration strength")
    thumb.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect_url_param(page, "lm_alpha", "0.8")
    wait_for_app(page)
    expect(charts(page).first).to_contain_text("α = 0.8")
    assert_no_exception(page)

    # Weights: bits and group size change the variants compared
    open_tab(page, "Weights: RTN, GPTQ, AWQ")
    expect(charts(page).first).to_contain_text("GPTQ W3 g128", timeout=120_000)
    thumb = slider(page, "Weight bits")
    thumb.focus()
    page.keyboard.press("ArrowRight")
    expect_url_param(page, "lm_bits", "4")
    wait_for_app(page)
    expect(charts(page).first).to_contain_text("GPTQ W4 g128", timeout=120_000)
    _radio(page, "lm_group", "per output channel", "ch", "AWQ W4 per channel")
    expect_at_least(charts(page), 2, timeout=120_000)  # and the per-layer objective chart
    screenshot(page, "language_models_weights")

    # Pruning: the pattern
    open_tab(page, "Pruning: Wanda, SparseGPT")
    expect(charts(page).first).to_contain_text("SparseGPT 50%", timeout=120_000)
    _radio(page, "lm_prune", "2:4 (semi-structured)", "2_4", "Wanda 2:4")
    screenshot(page, "language_models_pruning")

    # KV cache: the grouping
    open_tab(page, "KV cache")
    expect(charts(page).first).to_contain_text("KV cache 2-bit", timeout=120_000)
    _radio(page, "lm_kv_axes", "both per token", "token", "(per token)")
    assert_no_exception(page)

    # Generate: variant, prompt, characters, temperature and seed each change the text
    open_tab(page, "Generate")
    code = page.get_by_test_id("stCode")
    expect(code.nth(1)).to_contain_text("The return value of ", timeout=120_000)
    before = code.nth(1).inner_text()
    _pick(page, "lm_gen", "RTN W2 g128")
    expect_url_param(page, "lm_gen", "rtn_w2_g128")
    wait_for_app(page)
    expect(code.nth(1)).not_to_have_text(before, timeout=60_000)
    box = page.locator(".st-key-lm_prompt input")
    box.fill("def ")
    box.press("Enter")
    expect_url_param(page, "lm_prompt", "def+")  # a space is a + in the link
    wait_for_app(page)
    expect(code.first).to_contain_text(re.compile(r"^def "), timeout=60_000)
    for label, key, value in (("Characters", "lm_chars", "220"), ("Temperature", "lm_temp", "1.0")):
        thumb = slider(page, label)
        thumb.focus()
        page.keyboard.press("ArrowRight")
        expect_url_param(page, key, value)
        wait_for_app(page)
    seed = page.locator(".st-key-lm_gen_seed input")
    text = code.first.inner_text()
    seed.fill("7")
    seed.press("Enter")
    expect_url_param(page, "lm_gen_seed", "7")
    wait_for_app(page)
    expect(code.first).not_to_have_text(text, timeout=60_000)
    screenshot(page, "language_models_generate")
