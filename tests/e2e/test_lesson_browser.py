"""The Lesson page in Chromium: walk it with the keyboard, answer a prediction, screenshot every step, and open
the handout with the network off."""
import re

from playwright.sync_api import expect

from ui.topics.lesson_plan import STEPS

from .conftest import assert_no_exception, open_page, screenshot, wait_for_app


def _title(page):
    return page.get_by_test_id("stHeading").filter(has_text=re.compile(r"^\d · ")).first


def test_walk_the_lesson_with_the_keyboard_and_answer_a_prediction(server_url, page, browser, tmp_path):
    page.set_viewport_size({"width": 1280, "height": 720})
    open_page(page, server_url + "/lesson?lesson_presenter=1")
    for i, step in enumerate(STEPS, 1):
        expect(_title(page)).to_have_text(f"{i} · {step.title}", timeout=120_000)
        if step.predict:
            expect(page.get_by_text("Predict first")).to_be_visible()
            expect(page.get_by_test_id("stPlotlyChart")).to_have_count(0)  # the answer waits for the guess
            page.get_by_role("button", name="Lock in the guess").click()
            wait_for_app(page, timeout=120_000)
            expect(page.get_by_text("the class said")).to_be_visible(timeout=120_000)
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=120_000)
        assert_no_exception(page)
        screenshot(page, f"lesson_{i}_{step.key}", full=False)
        if i < len(STEPS):
            page.mouse.click(2, 360)  # nothing focused: the arrow keys belong to the lesson
            page.keyboard.press("ArrowRight")
            wait_for_app(page, timeout=120_000)
    expect(page).to_have_url(re.compile(rf"lesson_step={len(STEPS)}"))
    page.mouse.click(2, 360)
    page.keyboard.press("ArrowLeft")
    wait_for_app(page)
    expect(_title(page)).to_have_text(f"{len(STEPS) - 1} · {STEPS[-2].title}")

    # the handout: every step's text, the figures shown, and it opens with the network off
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the handout (HTML)").click()
    path = tmp_path / "handout.html"
    info.value.save_as(path)
    offline = browser.new_context(offline=True)
    try:
        doc = offline.new_page()
        doc.goto(path.as_uri())
        for step in STEPS:
            expect(doc.get_by_role("heading", name=re.compile(re.escape(step.title)))).to_be_visible()
        expect(doc.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
        assert doc.locator(".js-plotly-plot").count() >= len(STEPS)  # every step's figure was shown in class
        doc.screenshot(path=str(tmp_path / "handout.png"))
    finally:
        offline.close()


def test_a_click_on_the_taxonomy_opens_that_choice_live(server_url, page):
    open_page(page, server_url + "/lesson?lesson_step=2")
    chart = page.get_by_test_id("stPlotlyChart").first
    label = chart.get_by_text("neurons / channels (structured)")
    expect(label).to_be_visible(timeout=60_000)
    box = label.bounding_box()
    points = chart.locator("g.scatterlayer g.trace g.points path")
    centres = [(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2) for b in
               (points.nth(k).bounding_box() for k in range(points.count()))]
    x, y = min(centres, key=lambda c: abs(c[0] - box["x"] - box["width"] / 2) + abs(c[1] - box["y"]))
    page.mouse.move(x, y)
    page.mouse.click(x, y)  # the leaf's marker, just above its label
    expect(page).to_have_url(re.compile(r"/pruning\?.*pr_granularity=neuron"), timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)


def test_the_arrow_keys_work_the_moment_presenter_view_is_on(server_url, page):
    """Issue 28, item 1: after a click on the toggle, → moves to the next step with no other click."""
    open_page(page, server_url + "/lesson")
    expect(_title(page)).to_have_text(f"1 · {STEPS[0].title}", timeout=120_000)
    page.get_by_test_id("stCheckbox").filter(has_text="Presenter view").click()
    wait_for_app(page)
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    page.keyboard.press("ArrowRight")
    wait_for_app(page)
    expect(_title(page)).to_have_text(f"2 · {STEPS[1].title}", timeout=60_000)


CUT = """els => els.filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
                 .map(e => e.textContent)"""


def test_nothing_is_cut_off_on_a_projector(browser, server_url):
    """Issue 28, item 8: at 1280×720 and 150 % zoom in presenter view, no metric label, link or button text is cut
    off ("Multiply-adds / infer…", "during training (iterative, gradual" without its parenthesis, "Download the
    handout…")."""
    ctx = browser.new_context(viewport={"width": 853, "height": 480}, device_scale_factor=1.5)
    try:
        page = ctx.new_page()
        for step in (1, 2):
            open_page(page, server_url + f"/lesson?lesson_presenter=1&lesson_step={step}")
            expect(_title(page)).to_have_text(f"{step} · {STEPS[step - 1].title}", timeout=120_000)
            texts = page.locator("[data-testid='stMetricLabel'] p, [data-testid='stPageLink'] p, button p")
            expect(texts.first).to_be_visible(timeout=60_000)
            assert texts.evaluate_all(CUT) == [], f"cut off on step {step}"
        link = page.get_by_test_id("stPageLink").filter(has_text="during training")
        assert link.inner_text().strip().endswith("gradual)")
        screenshot(page, "lesson_projector_taxonomy", full=False)
    finally:
        ctx.close()
