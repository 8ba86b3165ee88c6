"""Screenshots of every page as a class sees them on a projector: a 1280×720 screen at 150 % zoom (a CSS viewport
of 853×480 drawn at device scale 1.5), the first screen and the whole page. Look at them: labels cut off, a
sidebar that eats the width, tiny chart text and titles over legends show up here first.

Starts its own `streamlit run app.py` on a free port and uses the same Chromium as the tests (CHROMIUM, or
`chromium` on PATH). Writes artifacts/projector/<page>_screen.png and <page>_full.png.

Usage: python scripts/projector_shots.py [--pages home,pruning,...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM_ARGS,
    chromium_path,
    free_port,
    start_server,
    wait_for_app,
    wait_http,
)

PAGES = {"home": "/", "pruning": "/pruning?pr_curve_ft=1", "lottery": "/lottery", "quantization": "/quantization",
         "integer": "/integer", "deep-compression": "/deep-compression", "compare": "/compare",
         "lesson": "/lesson?lesson_presenter=1", "language-models": "/language-models?dataset=pydoc&model=gpt",
         "language-models-weights": "/language-models?dataset=pydoc&model=gpt&lm_view=Weights%3A+RTN%2C+GPTQ%2C+AWQ"}
OUT = ROOT / "artifacts" / "projector"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default=",".join(PAGES))
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 853, "height": 480}, device_scale_factor=1.5)
            page = ctx.new_page()
            for name in args.pages.split(","):
                page.goto(url + PAGES[name])
                wait_for_app(page, timeout=600_000)
                # a heavy view (deep compression's pipeline) is drawn by later runs, when its job ends
                page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=600_000)
                wait_for_app(page, timeout=600_000)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(OUT / f"{name}_screen.png"))
                height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
                page.set_viewport_size({"width": 853, "height": min(int(height), 12_000)})
                page.screenshot(path=str(OUT / f"{name}_full.png"))
                page.set_viewport_size({"width": 853, "height": 480})
                print(OUT / f"{name}_screen.png")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
