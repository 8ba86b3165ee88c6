"""Real-browser fixtures: a `streamlit run app.py` server on a free port and headless Debian Chromium.

Chromium comes from Debian (`apt-get install chromium`), never from Playwright's own download, which
cannot work offline. Without a browser the tests fail with instructions rather than skipping silently.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("No Chromium found. Install Debian's browser with `apt-get update && apt-get install -y "
                    "chromium`, or set CHROMIUM=/path/to/chrome (on a machine with internet access, "
                    "`playwright install chromium` also works).")
    return path


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
    proc = start_server(port)
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
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def wait_for_app(page, timeout: float = 90_000) -> None:
    """Wait until Streamlit has finished running the script: the app is connected, no 'running'
    indicator shows, and the main area's text has stopped changing for half a second."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            const running = document.querySelector('[data-testid="stStatusWidget"]');
            if (!main || running || main.innerText.trim().length === 0) { window.__clStable = null; return false; }
            const text = main.innerText;
            const now = Date.now();
            if (!window.__clStable || window.__clStable.text !== text) {
                window.__clStable = {text, since: now};
                return false;
            }
            return now - window.__clStable.since > 500;
        }""", timeout=timeout, polling=100)


def open_page(page, url: str, timeout: float = 90_000) -> None:
    """Go to ``url``, wait for the app's run to finish, and check that no exception box is shown."""
    page.goto(url)
    wait_for_app(page, timeout)
    assert_no_exception(page)


def wait_for_count(locator, n: int, timeout: float = 60_000) -> None:
    """Wait until ``locator`` matches at least ``n`` elements: charts draw a moment after the script ends,
    later still on a busy machine, so a count taken at once can be short."""
    locator.nth(n - 1).wait_for(state="attached", timeout=timeout)


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, "exception box on page: " + boxes.first.inner_text()[:2000]


def screenshot(page, name: str, full: bool = True) -> Path:
    """Save artifacts/screenshots/NAME.png. Streamlit scrolls inside its main area, so for a full-page
    picture the viewport is stretched to the content's height first (capped), then restored."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = page.viewport_size
    if full and size:
        height = page.evaluate("""() => {
            const m = document.querySelector('[data-testid="stMain"]');
            return m ? m.scrollHeight : document.body.scrollHeight; }""")
        page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 8000))})
        page.wait_for_timeout(600)
    page.screenshot(path=str(path))
    if full and size:
        page.set_viewport_size(size)
    return path
