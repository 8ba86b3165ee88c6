"""Where a page's rerun spends its time: one page run in-process with streamlit.testing.v1.AppTest, its main
control moved a few times, each rerun under cProfile; prints the top entries by cumulative time.

AppTest runs the script in its own thread, so the profiler is switched on inside that thread (around
``LocalScriptRunner._run_script_thread``), only for the measured reruns: the first visit (baseline loading,
first-visit curves, imports) is not counted, and the page scripts' bytecode is cached across runs as the server
does (AppTest alone would recompile them on every run). AppTest reruns the whole page on every change (it cannot rerun a
single ``st.fragment``), so the profile covers the page's full rerun; the cumulative time of the fragment's own
function (listed with the project's functions) is what a fragment rerun in the browser costs, roughly.

Output: text tables (all functions, then the project's functions: app_pages/, ui/, compress_core/), and as the
last line one JSON object ``{"page", "control", "moves", "wall_s_per_move", "profiled_s_per_move",
"top": [{"function", "cumulative_s_per_move", "own_s_per_move", "calls_per_move"}, ...]}``.

Usage: python bench/profile_rerun.py --page pruning [--moves 5] [--top 30] [--sort cumulative|tottime]
                                     [--dump out.prof] [--cache DIR]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# page url path -> (page script, widget key of its main control)
PAGES = {
    "pruning": ("app_pages/pruning.py", "pr_sparsity"),
    "quantization": ("app_pages/quantization.py", "q_bits"),
    "integer": ("app_pages/integer.py", "int_example"),
    "deep-compression": ("app_pages/deep_compression.py", "dc_sparsity"),
    "lottery": ("app_pages/lottery.py", "lt_round"),
}


def share_script_cache() -> None:
    """One bytecode cache for every AppTest run, as the server keeps one per process (AppTest makes a new one
    per run, which would put compiling the page scripts, ~0.1-0.5 s, into every profiled rerun)."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared


class ScriptThreadProfiler:
    """cProfile switched on inside AppTest's script thread while ``active``."""

    def __init__(self) -> None:
        from streamlit.testing.v1.local_script_runner import LocalScriptRunner

        self.profile = cProfile.Profile()
        self.active = False
        original = LocalScriptRunner._run_script_thread
        prof = self

        def wrapped(runner) -> None:
            if not prof.active:
                return original(runner)
            prof.profile.enable()
            try:
                return original(runner)
            finally:
                prof.profile.disable()

        LocalScriptRunner._run_script_thread = wrapped


def find_control(at, key: str):
    """The widget with ``key``, whatever its kind (select_slider, slider, number_input, selectbox, radio)."""
    for kind in ("select_slider", "slider", "number_input", "selectbox", "radio"):
        try:
            return kind, getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise SystemExit(f"no widget with key {key!r} on the page")


def next_value(kind: str, w, step: int):
    """Walk the control one position per move, turning back at the ends (as a user pressing arrow keys)."""
    if kind == "select_slider":  # options are the formatted labels; find a value whose label is the next one
        labels, fmt = list(w.options), w.format_func
        i = labels.index(fmt(w.value))
        j = i + step if 0 <= i + step < len(labels) else i - step
        for m in re.finditer(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", labels[j]):
            for cast in (int, float):
                try:
                    if fmt(cast(m.group())) == labels[j]:
                        return cast(m.group())
                except (TypeError, ValueError):
                    continue
        return labels[j]
    if kind in ("selectbox", "radio"):
        opts = list(w.options)
        i = opts.index(str(w.value)) if str(w.value) in opts else 0
        return opts[i + step if 0 <= i + step < len(opts) else i - step]
    if kind == "number_input":
        v = w.value + step * (w.step or 1)  # the AppTest element exposes the proto's max and has_max
        return v if not w.proto.has_max or v <= w.proto.max else w.value - step * (w.step or 1)
    v = w.value + step * (w.step or 1)
    return v if v <= w.max else w.value - step * (w.step or 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", default="pruning", choices=list(PAGES))
    ap.add_argument("--moves", type=int, default=5)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    ap.add_argument("--dump", help="also write the raw profile here (for snakeviz / pstats)")
    ap.add_argument("--cache", default=os.environ.get("COMPRESS_LAB_CACHE"), help="baseline cache folder")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed for one run (the first may train)")
    args = ap.parse_args(argv)
    if args.cache:
        os.environ["COMPRESS_LAB_CACHE"] = args.cache
    os.chdir(ROOT)

    from streamlit.testing.v1 import AppTest

    share_script_cache()
    prof = ScriptThreadProfiler()
    script, key = PAGES[args.page]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=args.timeout)
    at.run()
    at.switch_page(script).run()  # first visit, not profiled
    kind, w = find_control(at, key)
    print(f"page {args.page}: control {key} ({kind}), value {w.value!r}; profiling {args.moves} moves", flush=True)
    wall = 0.0
    for _ in range(args.moves):
        kind, w = find_control(at, key)
        w.set_value(next_value(kind, w, 1))
        prof.active = True
        t0 = time.perf_counter()
        at.run()
        wall += time.perf_counter() - t0
        prof.active = False
        if at.exception:
            raise SystemExit(f"exception on the page: {at.exception[0].value}")
    print(f"value now {find_control(at, key)[1].value!r}; {wall / args.moves:.3f} s wall per rerun\n", flush=True)

    stats = pstats.Stats(prof.profile, stream=sys.stdout)
    if args.dump:
        stats.dump_stats(args.dump)
    stats.sort_stats(args.sort).print_stats(args.top)
    print("The project's functions:")
    stats.print_stats(r"(app_pages|/ui/|compress_core)", args.top)

    entries = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        entries.append({"function": f"{_short(file)}:{line}({func})", "cumulative_s_per_move":
                        round(cumtime / args.moves, 5), "own_s_per_move": round(tottime / args.moves, 5),
                        "calls_per_move": round(ncalls / args.moves, 1)})
    order = "cumulative_s_per_move" if args.sort == "cumulative" else "own_s_per_move"
    entries.sort(key=lambda e: -e[order])
    print(json.dumps({"page": args.page, "control": key, "moves": args.moves,
                      "wall_s_per_move": round(wall / args.moves, 4),
                      "profiled_s_per_move": round(stats.total_tt / args.moves, 4), "top": entries[:args.top]}))


def _short(file: str) -> str:
    try:
        return str(Path(file).resolve().relative_to(ROOT))
    except ValueError:
        return file.split("site-packages/")[-1]


if __name__ == "__main__":
    main()
