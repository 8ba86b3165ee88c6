"""Browser bench: in headless Chromium, key press on each page's main control -> the run finished and its charts
drawn, beside a bare one-chart Streamlit page measured in the same run; and start-up, warm and cold, beside a
one-line Streamlit app.

How a press is timed (all in the page's own clock, ``performance.now()``): an init script wraps the page's
``WebSocket`` and reads the top-level fields of every ``ForwardMsg`` frame, so it knows when a
``script_finished`` arrives (field 6; the status value tells a finished run from one ended early for a newer
rerun), and a ``MutationObserver`` on the app notes the time of the last DOM change (Plotly draws its SVG through
the DOM, so a redrawn chart is a change). A press is timed from the ``keydown`` to the later of the run's
``script_finished`` and the last DOM change, once the page has then stayed still for --quiet ms with no
running indicator (``stStatusWidget``). Presses walk the control one step at a time (ArrowRight, turning back
with ArrowLeft at the end of its range; a number input gets ArrowUp / ArrowDown then Enter); the median of
--presses presses is reported, and its ratio to the bare page's median.

Controls (found by their widget key, Streamlit's ``st-key-<key>`` class), each in its page's default view except
where a query opens the tab it lives in: Pruning sparsity (pr_sparsity), Quantization bit width (q_bits), Integer
worked example (int_example, the test example the walk follows, in the "One layer, step by step" tab),
Deep compression target sparsity (dc_sparsity), Lottery mask round (lt_round: the bench first presses ▶ Run for a
short run, 3 rounds of 2 epochs, which the cache folder then keeps).

Start-up: from launching ``streamlit run`` to the first finished run seen in Chromium (the same end test as a
press), of app.py's home page with the baseline cache filled (warm) and with an empty COMPRESS_LAB_CACHE
(cold: the baseline is trained), each beside a one-line Streamlit app started the same way in the same run.

Prints one JSON line per measurement; the last line is one summary object
``{"floor_s", "controls": [{"page", "control", "median_s", "ratio", ...}], "startup": {...}}``.

Usage: python bench/bench_browser.py [--quick] [--presses 7] [--pages pruning,quantization,integer,...]
                                     [--skip-startup] [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from st_server import Server  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

# page url path -> (widget key of its main control, what it is, the query that opens its tab)
CONTROLS = {
    "pruning": ("pr_sparsity", "sparsity slider", ""),
    "quantization": ("q_bits", "bit-width slider", ""),
    "integer": ("int_example", "worked example (test example of the walk)", "?int_view=One+layer%2C+step+by+step"),
    "deep-compression": ("dc_sparsity", "target sparsity slider", ""),
    # a short run (3 rounds of 2 epochs, one seed; kept in the cache folder, so later runs of the bench find it)
    "lottery": ("lt_round", "mask round slider, after a short run", "?lt_rounds=3&lt_epochs=2&lt_seeds=1"),
    # SmoothQuant's α on the tiny GPT (its W8A8 curve is computed once, on the first load)
    "language-models": ("lm_alpha", "SmoothQuant α slider on the GPT", "?dataset=pydoc&model=gpt&lm_view=SmoothQuant"),
}

BARE_CHART_APP = '''import numpy as np
import plotly.graph_objects as go
import streamlit as st

x = np.random.default_rng(0).normal(size=5000)
t = st.slider("Threshold", 0.0, 3.0, 1.0, 0.1, key="t")
st.plotly_chart(go.Figure(go.Histogram(x=x[np.abs(x) > t], nbinsx=60)), key="h")
'''
ONE_LINE_APP = 'import streamlit as st\nst.write("Hello")\n'

# Installed before any page script: watches the websocket and the DOM (see the module docstring).
INIT_SCRIPT = r"""
(() => {
  const B = window.__bench = {finishes: [], sends: [], lastMutation: 0, keydown: 0, charts: new Map()};
  const noteCharts = (records) => {  // the time each Plotly chart's DOM last changed
    const t = performance.now();
    for (const r of records) {
      const n = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const c = n && n.closest('[data-testid="stPlotlyChart"]');
      if (c) { if (!c.__benchId) c.__benchId = B.charts.size + 1; B.charts.set(c.__benchId, t); }
    }
  };
  function scan(u) {  // top-level fields of a ForwardMsg: return script_finished's status, or null
    let i = 0;
    const varint = () => {
      let x = 0, s = 1, b;
      do { b = u[i++]; x += (b & 0x7f) * s; s *= 128; } while (b & 0x80);
      return x;
    };
    while (i < u.length) {
      const tag = varint(), f = Math.floor(tag / 8), w = tag & 7;
      if (w === 0) { const v = varint(); if (f === 6) return v; }
      else if (w === 2) { const n = varint(); i += n; }  // (not i += varint(): i would be read first)
      else if (w === 1) { i += 8; } else if (w === 5) { i += 4; } else { return null; }
    }
    return null;
  }
  const Orig = window.WebSocket;
  class BenchSocket extends Orig {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        const t = performance.now();
        const take = (buf) => {
          const st = scan(new Uint8Array(buf));
          if (st !== null) B.finishes.push({t, status: st});
        };
        if (ev.data instanceof ArrayBuffer) take(ev.data);
        else if (ev.data instanceof Blob) ev.data.arrayBuffer().then(take);
      });
    }
    send(data) { B.sends.push(performance.now()); return super.send(data); }
  }
  window.WebSocket = BenchSocket;
  // the first key of a press (a number input gets two: ArrowUp, then Enter)
  document.addEventListener('keydown', () => { if (!B.keydown) B.keydown = performance.now(); }, true);
  const watch = () => {
    const app = document.querySelector('[data-testid="stApp"]') || document.body;
    if (!app) { setTimeout(watch, 20); return; }
    new MutationObserver((recs) => { B.lastMutation = performance.now(); noteCharts(recs); })
      .observe(app, {subtree: true, childList: true, attributes: true, characterData: true});
    if (app === document.body) setTimeout(() => {  // re-attach to stApp once React has mounted it
      const a = document.querySelector('[data-testid="stApp"]');
      if (a) new MutationObserver((recs) => { B.lastMutation = performance.now(); noteCharts(recs); })
        .observe(a, {subtree: true, childList: true, attributes: true, characterData: true});
    }, 500);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch); else watch();
})();
"""

# True once a run that ended after `since` (a finished run, not one ended early for a rerun) is followed by
# `quiet` ms without DOM changes and no running indicator; returns the end time (ms, page clock).
SETTLED = """([since, quiet]) => {
  const B = window.__bench;
  const fin = B.finishes.find(f => f.t > since && f.status !== 2);
  if (!fin) return false;
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const end = Math.max(fin.t, B.lastMutation);
  return performance.now() - end >= quiet ? end : false;
}"""


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        sys.exit("No Chromium: install Debian's `chromium` or set CHROMIUM=/path/to/chrome.")
    return path


def new_page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.add_init_script(INIT_SCRIPT)
    return ctx, ctx.new_page()


def goto_when_up(page, url: str, deadline: float) -> None:
    """Load ``url``, retrying while the server is not listening yet."""
    while True:
        try:
            page.goto(url, timeout=10_000)
            return
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def wait_settled(page, since_ms: float, quiet_ms: float, timeout_s: float) -> float:
    """End time (page clock, ms) of the first finished run after ``since_ms`` once the page is still."""
    handle = page.wait_for_function(SETTLED, arg=[since_ms, quiet_ms], timeout=timeout_s * 1000, polling=50)
    return float(handle.json_value())


def first_run(page, url: str, args, timeout_s: float) -> float:
    goto_when_up(page, url, time.time() + timeout_s)
    return wait_settled(page, 0, args.quiet, timeout_s)


# Where a press's time went, from the keydown at `down` (ms): see press_once.
BREAKDOWN = """(down) => {
  const B = window.__bench;
  const sends = B.sends.filter(s => s >= down);
  const fin = B.finishes.find(f => f.t > down && f.status !== 2);
  const charts = [...B.charts.values()].filter(t => t > down);
  return {sends: sends.length, to_send_ms: sends.length ? sends[0] - down : null,
          send_to_finish_ms: sends.length && fin ? fin.t - sends[0] : null,
          charts_changed: charts.length, last_chart_after_finish_ms: charts.length && fin ?
            Math.max(...charts) - fin.t : null};
}"""


def control_kind(page, key: str) -> str | None:
    box = page.locator(f".st-key-{key}")
    if box.count() == 0:
        return None
    if box.get_by_role("slider").count():
        return "slider"
    if box.get_by_role("spinbutton").count():
        return "number"
    return "other"


def press_once(page, key: str, kind: str, direction: list[int], args) -> tuple[float, dict]:
    """One key press on the control: (seconds from keydown to the run finished and the page still, its
    breakdown: messages the page sent (1 when the press made exactly one rerun request), keydown → first send,
    send → the run's finished message, and how many Plotly charts changed after it with the last one's time)."""
    box = page.locator(f".st-key-{key}")
    if kind == "slider":
        thumb = box.get_by_role("slider").first
        now, lo, hi = (float(thumb.get_attribute(a) or 0) for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax"))
        if (direction[0] > 0 and now >= hi) or (direction[0] < 0 and now <= lo):
            direction[0] = -direction[0]
        thumb.focus()
        keys = ["ArrowRight" if direction[0] > 0 else "ArrowLeft"]
    else:
        field = box.get_by_role("spinbutton").first
        now = float(field.input_value() or 0)
        lo, hi = (float(v) if v not in (None, "") else None for v in (field.get_attribute("min"),
                                                                     field.get_attribute("max")))
        if (direction[0] > 0 and hi is not None and now >= hi) or (direction[0] < 0 and lo is not None and now <= lo):
            direction[0] = -direction[0]
        field.focus()
        keys = ["ArrowUp" if direction[0] > 0 else "ArrowDown", "Enter"]
    page.evaluate("() => { window.__bench.keydown = 0; }")
    for k in keys:
        page.keyboard.press(k)
    down = page.evaluate("() => window.__bench.keydown")
    end = wait_settled(page, down, args.quiet, args.press_timeout)
    parts = page.evaluate(BREAKDOWN, down)
    return (end - down) / 1000, parts


def run_first(page, key: str, args) -> None:
    """Where the control appears only after a run (the lottery's round slider): press ▶ Run and wait for it."""
    run = page.get_by_role("button", name="▶ Run", exact=True)
    if page.locator(f".st-key-{key}").count() or not run.count():
        return
    clicked = page.evaluate("() => performance.now()")
    run.click()
    page.locator(f".st-key-{key}").wait_for(timeout=args.load_timeout * 1000)
    wait_settled(page, clicked, args.quiet, args.load_timeout)


def measure_control(page, base_url: str, path: str, key: str, args) -> dict:
    first_run(page, f"{base_url}/{path}", args, args.load_timeout)
    run_first(page, key, args)
    kind = control_kind(page, key)
    if kind is None:
        return {"page": path or "bare", "control": key, "skipped": "control not on the page"}
    direction = [1]
    times, parts = [], []
    for _ in range(args.presses):
        t, part = press_once(page, key, kind, direction, args)
        times.append(t)
        parts.append(part)

    def med(name):
        vals = [p[name] for p in parts if p[name] is not None]
        return round(statistics.median(vals), 1) if vals else None
    errors = page.locator('[data-testid="stException"]').count()
    return {"page": path or "bare", "control": key, "kind": kind, "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4), "first_s": round(times[0], 4),
            "presses": len(times), "exceptions_on_page": errors, "times_s": [round(t, 3) for t in times],
            "messages_sent": [p["sends"] for p in parts], "charts_changed": [p["charts_changed"] for p in parts],
            "median_ms": {n: med(n) for n in ("to_send_ms", "send_to_finish_ms", "last_chart_after_finish_ms")}}


def startup(browser, script: Path, cwd: Path, env: dict, url_path: str, args) -> float:
    """Seconds from launching `streamlit run script` to its first finished run, still, in Chromium."""
    ctx, page = new_page(browser)
    try:
        with Server(script, cwd=cwd, env=env) as server:
            launched = server.started
            goto_when_up(page, f"{server.url}/{url_path}", time.time() + args.load_timeout)
            t1 = time.perf_counter()
            js_now = page.evaluate("() => performance.now()")
            t2 = time.perf_counter()
            offset = (t1 + t2) / 2 - js_now / 1000  # page clock -> perf_counter
            end = wait_settled(page, 0, args.quiet, args.cold_timeout)
            return end / 1000 + offset - launched
    finally:
        ctx.close()


DRAG_JS = """async (el) => {
  const times = [];
  for (let i = 0; i < 200; i++) {           // a drag from 0 % to 99.5 %: one input event per step, as a browser
    const t0 = performance.now();           // sends them, each followed by the next painted frame
    el.value = (i * 0.5).toFixed(1);
    el.dispatchEvent(new Event("input"));
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {median_ms: times[100], p95_ms: times[190]};
}"""


def measure_drag(page, base_url: str, args) -> dict:
    """The Pruning page's 'Follow the drag' histogram: input event → the frame after the redraw, in the browser
    (no server round trip), over a 200-step drag; with the redraw's own compute time as the snippet reports it."""
    first_run(page, f"{base_url}/pruning?dataset=digits&model=mlp&pr_layer=fc1", args, args.load_timeout)
    page.get_by_text("Follow the drag").click()
    frame = page.frame_locator("iframe").last
    frame.locator("#info").wait_for(timeout=60_000)
    row = frame.locator("#s").evaluate(DRAG_JS)
    row.update(what="client-side drag histogram (fc1, 19,200 weights)", page="pruning",
               redraw_compute_ms=float(frame.locator("#ms").inner_text()))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    root = Path(__file__).resolve().parents[1]
    env = {"COMPRESS_LAB_CACHE": args.cache} if args.cache else {}
    summary: dict = {"floor_s": None, "controls": [], "startup": {}}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        (tmp / "bare_chart.py").write_text(BARE_CHART_APP)
        (tmp / "one_line.py").write_text(ONE_LINE_APP)
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            with Server("app.py", cwd=root, env=env) as app, Server(tmp / "bare_chart.py", cwd=tmp) as bare:
                app.wait_ready(), bare.wait_ready()
                ctx, page = new_page(browser)
                floors = []

                def floor(tag: str) -> None:
                    row = measure_control(page, bare.url, "", "t", args)
                    row.update(page="bare one-chart page", when=tag)
                    floors.append(row["median_s"])
                    print(json.dumps(row), flush=True)

                floor("before")
                for path in args.pages:
                    key, what, query = CONTROLS[path]
                    row = measure_control(page, app.url, path + query, key, args)
                    row["page"] = path
                    row["what"] = what
                    summary["controls"].append(row)
                    print(json.dumps(row), flush=True)
                floor("after")
                summary["drag"] = measure_drag(page, app.url, args)
                print(json.dumps(summary["drag"]), flush=True)
                ctx.close()
            fl = statistics.median(floors)
            summary["floor_s"] = round(fl, 4)
            for row in summary["controls"]:
                if "median_s" in row:
                    row["ratio"] = round(row["median_s"] / fl, 2)
            print(json.dumps({"ratios": {r["page"]: r.get("ratio") for r in summary["controls"]}}), flush=True)

            if not args.skip_startup:
                st_ = summary["startup"]
                for _ in range(args.startup_repeats):  # the app's cache is warm from the presses above
                    for name, script, cwd, e in (("warm_s", root / "app.py", root, env),
                                                 ("one_line_s", tmp / "one_line.py", tmp, {})):
                        st_.setdefault(name, []).append(round(startup(browser, script, cwd, e, "", args), 3))
                        print(json.dumps({name: st_[name][-1]}), flush=True)
                    with tempfile.TemporaryDirectory() as cold:
                        st_.setdefault("cold_s", []).append(
                            round(startup(browser, root / "app.py", root, {"COMPRESS_LAB_CACHE": cold}, "", args), 3))
                        print(json.dumps({"cold_s": st_["cold_s"][-1]}), flush=True)
                    st_.setdefault("one_line_s", []).append(
                        round(startup(browser, tmp / "one_line.py", tmp, {}, "", args), 3))
                    print(json.dumps({"one_line_s": st_["one_line_s"][-1]}), flush=True)
                ol = statistics.median(st_["one_line_s"])
                st_["warm_ratio"] = round(statistics.median(st_["warm_s"]) / ol, 2)
                st_["cold_minus_one_line_s"] = round(statistics.median(st_["cold_s"]) - ol, 2)
        finally:
            browser.close()
    return summary


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default=",".join(CONTROLS), help=f"comma-separated, from {','.join(CONTROLS)}")
    ap.add_argument("--presses", type=int, default=7, help="key presses per control (median reported)")
    ap.add_argument("--quiet", type=float, default=400, help="ms the page must stay still to count as settled")
    ap.add_argument("--press-timeout", type=float, default=120, help="seconds allowed for one press to settle")
    ap.add_argument("--load-timeout", type=float, default=300, help="seconds allowed for a page's first run")
    ap.add_argument("--cold-timeout", type=float, default=600, help="seconds allowed for a cold start")
    ap.add_argument("--startup-repeats", type=int, default=4)
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--cache", default=os.environ.get("COMPRESS_LAB_CACHE"),
                    help="baseline cache folder for the warm runs (default $COMPRESS_LAB_CACHE or ~/.cache/...)")
    ap.add_argument("--quick", action="store_true", help="3 presses, one start-up of each kind")
    args = ap.parse_args(argv)
    if args.quick:
        args.presses, args.startup_repeats = 3, 1
    args.pages = [x for x in args.pages.split(",") if x]
    unknown = set(args.pages) - set(CONTROLS)
    if unknown:
        ap.error(f"unknown page(s) {sorted(unknown)}; known: {list(CONTROLS)}")
    return args


def main(argv=None) -> None:
    summary = run(parse_args(argv))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
