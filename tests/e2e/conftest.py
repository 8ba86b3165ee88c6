"""Real-browser fixtures: a `streamlit run app.py` server on a free port and headless Chromium.

The browser is `CHROMIUM=/path` if set, else `chromium` on PATH (Debian's package), else Playwright's own
download if `python -m playwright install chromium` has fetched it. `scripts/test.sh` (the README's test
command) finds or installs one of these. Without a browser the tests fail with instructions rather than skipping.

Tests find elements by Streamlit's test ids (`get_by_test_id("stPlotlyChart")`, …) and roles, and wait with
Playwright's `expect(...)`, which retries until the page matches or the timeout ends.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
LOAD_TIMEOUT = 90_000  # ms: the first run of a page may train a baseline on a busy 2-core machine


def chromium_path() -> str | None:
    """The browser to launch: CHROMIUM, else `chromium` on PATH; None means Playwright's own download."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail(f"CHROMIUM={path} is not an executable file.")
        return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def wait_http(url: str, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Streamlit did not answer at {url} within {timeout} s")


@pytest.fixture(scope="session")
def server_url():
    port = free_port()
    # one heavy-run worker whatever the machine's cores (as on the 2-core project machine): queueing is tested
    proc = start_server(port, {"COMPRESS_LAB_WORKERS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        path = chromium_path()
        if path is None and not Path(p.chromium.executable_path).exists():
            pytest.fail("No Chromium found. Run the tests with `scripts/test.sh` (it installs one), or install "
                        "Debian's browser (`apt-get install -y chromium`), or run `python -m playwright install "
                        "chromium` where the network allows, or set CHROMIUM=/path/to/chrome.")
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(30_000)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def wait_for_app(page: Page, timeout: float = LOAD_TIMEOUT) -> None:
    """Wait until Streamlit is connected and has finished running the script (or fragment).

    As Streamlit's own e2e tests do: stApp carries data-test-connection-state and data-test-script-state. A
    short first pause lets a rerun that a click or key press just asked for begin before the state is read."""
    page.wait_for_timeout(250)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)


def choose(page: Page, box: Locator, option: str, tries: int = 3) -> None:
    """Pick ``option`` in the selectbox ``box`` (an stSelectbox or its .st-key-… container), then wait for the run.

    The option's name is typed into the box, since the list draws only the options in view. A rerun that starts
    just after the click closes the list it opened, so a list that shows no such option is closed and opened
    again once the app has settled (up to ``tries`` times)."""
    combobox = box.get_by_role("combobox")
    for attempt in range(tries):
        wait_for_app(page)
        combobox.click()
        combobox.fill(option)
        target = page.get_by_role("option", name=option, exact=True)
        try:
            target.click(timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
    wait_for_app(page)


def open_page(page: Page, url: str, timeout: float = LOAD_TIMEOUT) -> None:
    """Go to ``url``, wait for the app's run to finish, and check that no exception box is shown."""
    page.goto(url)
    wait_for_app(page, timeout)
    expect(page.get_by_test_id("stMain")).not_to_be_empty(timeout=timeout)
    assert_no_exception(page)


def expect_at_least(locator: Locator, n: int, timeout: float = 60_000) -> None:
    """Wait until ``locator`` matches at least ``n`` visible elements: charts draw a moment after the script
    ends, later still on a busy machine."""
    expect(locator.nth(n - 1)).to_be_visible(timeout=timeout)


def charts(page: Page) -> Locator:
    """Every Plotly chart on the page, by Streamlit's test id."""
    return page.get_by_test_id("stPlotlyChart")


def metric_value(page: Page, label: str) -> Locator:
    """The value of the st.metric labelled ``label``."""
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue")


def slider(page: Page, label: str) -> Locator:
    """The thumb of the st.slider / st.select_slider labelled ``label``."""
    return page.get_by_test_id("stSlider").filter(has_text=label).get_by_role("slider").first


def expect_url_param(page: Page, name: str, value: str, timeout: float = 30_000) -> None:
    expect(page).to_have_url(re.compile(rf"[?&]{re.escape(name)}={re.escape(value)}(&|$)"), timeout=timeout)


def open_tab(page: Page, label: str) -> None:
    """Click the tab ``label`` (lazy tabs: ui.state.view_tabs), wait for the run it starts, check it is selected."""
    page.get_by_role("tab", name=label).click()
    wait_for_app(page)
    expect(page.get_by_role("tab", name=label)).to_have_attribute("aria-selected", "true")


def assert_no_exception(page: Page) -> None:
    """No st.exception box (an uncaught error in a page) is on the page."""
    boxes = page.get_by_test_id("stException")
    if boxes.count():
        pytest.fail("exception box on page: " + boxes.first.inner_text()[:2000])
    expect(boxes).to_have_count(0)


def screenshot(page: Page, name: str, full: bool = True) -> Path:
    """Save artifacts/screenshots/NAME.png after checking that no exception box is shown. Streamlit scrolls
    inside its main area, so for a full-page picture the viewport is stretched to the content's height first
    (capped), then restored."""
    assert_no_exception(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.mouse.move(0, 0)  # no hover tooltip over the picture
    size = page.viewport_size
    if full and size:
        height = page.get_by_test_id("stMain").evaluate("m => m.scrollHeight")
        page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 8000))})
        wait_for_app(page)
        page.wait_for_timeout(400)  # Plotly redraws at the new width
    page.screenshot(path=str(path))
    if full and size:
        page.set_viewport_size(size)
    return path
