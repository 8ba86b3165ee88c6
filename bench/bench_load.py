"""Load bench: N simulated sessions against one `streamlit run app.py`, speaking Streamlit's websocket protocol.

A browser's rendering would measure the client, not the server, so each session here is a small asyncio client
that talks to ``ws://127.0.0.1:PORT/_stcore/stream`` the way Streamlit's frontend does, with the protobuf
messages of ``streamlit.proto``:

* it opens a page by sending ``BackMsg.rerun_script`` with ``ClientState.page_name`` set to the page's URL path
  (``pruning``, ``quantization``, ``integer``) and an empty ``page_script_hash``, exactly what the frontend
  sends for ``/pruning``; under ``st.navigation`` the run's ``ForwardMsg.navigation`` then names the page that
  ran (``page_script_hash``, and the page list with each ``url_pathname``: a mismatch is a "wrong_page" error),
  and every later request carries that hash, as the frontend does (``new_session.page_script_hash`` is the
  entry script's, used only when there is no navigation message);
* it reads the run's ``delta`` messages and finds the page's main control by its widget key (Streamlit's
  element ids end in ``-<key>``), keeping the element's id, its options or range, and the fragment it lives in
  (``Delta.fragment_id``);
* a move sends ``rerun_script`` with a ``WidgetStates`` holding the control's new value (select_slider:
  ``string_array_value`` of the option's label; slider: ``double_array_value``; number_input: ``int_value`` /
  ``double_value``; selectbox / radio: ``string_value``), the fragment id when the control sits in an
  ``st.fragment`` (as the frontend does, so only the fragment reruns), the page's current query string (kept
  from ``page_info_changed``), and the hashes of the cacheable messages it already holds (the server then
  answers with ``ref_hash`` references, like a real browser's message cache);
* the move's latency runs from sending the request to the ``script_finished`` message that ends the run
  (runs ended early by a newer request, ``FINISHED_EARLY_FOR_RERUN``, are not the end).

Each session waits a uniform 1–2 s think time (seeded) between the end of one move and the next, for a fixed
time (closed loop: a user looks at the result before moving again). Before the timed window every session opens
its page and waits for that first run; the baseline cache is warmed by one session per page beforehand.

Errors: an exception element (not a warning) in a move's run, a compile error, a move that did not finish
within --move-timeout, a disconnect, or a control that could not be found.

Server CPU seconds per move: user + system time of the server's process tree from /proc over the timed window,
divided by the moves done. Peak RSS: the highest resident memory of the tree sampled every 0.25 s in the window.

Prints one JSON line per run (with more detail), and as the last line
``{"runs": [{"sessions", "page", "moves", "errors", "p50_s", "p95_s", "cpu_s_per_move", "peak_rss_mb"}, ...]}``.
Traffic goes only to 127.0.0.1; the server is started and stopped by the bench.

Usage: python bench/bench_load.py [--sessions 1,10,30,60] [--pages pruning,quantization,integer] [--heavy]
                                  [--duration 30] [--quick] [--seed 0] [--cache DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from st_server import Server, peak_rss_mb, tree_cpu_seconds, tree_rss_mb  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.NumberInput_pb2 import NumberInput  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

# page (its URL path) -> the widget key of its main control
TARGETS = {
    "pruning": "pr_sparsity",      # select_slider over floats, in a fragment
    "quantization": "q_bits",      # select_slider of bit widths, in a fragment
    "integer": "int_example",      # number_input: which test example the integer walk-through follows
    "language-models": "lm_alpha",  # select_slider: SmoothQuant's α on the tiny GPT (its curve computed once)
}
# the query a page is opened with, where its control sits in a tab other than the default (ui.state.view_tabs)
QUERIES = {"integer": urlencode({"int_view": "One layer, step by step"}),
           "language-models": urlencode({"dataset": "pydoc", "model": "gpt", "lm_view": "SmoothQuant"})}
WIDGET_TYPES = ("slider", "number_input", "selectbox", "radio", "button")
# --heavy: one more session runs a lottery experiment (20 rounds, 3 seeds, with both controls) through the whole
# window, pressing Run at the start and Stop at the end, as a student would
HEAVY_QUERY = "lt_rounds=20&lt_seeds=3&lt_epochs=15"
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
            ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


@dataclass
class Widget:
    """A widget as the frontend knows it: its element proto, its kind and the fragment it belongs to."""
    kind: str
    proto: Any
    fragment_id: str


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    ref_hits: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Session:
    """One simulated browser tab: a websocket, the widgets seen so far, and the page's run state."""

    def __init__(self, port: int, page: str, stats: Stats):
        self.url = f"ws://127.0.0.1:{port}/_stcore/stream"
        self.page, self.stats = page, stats
        self.ws = None
        self.widgets: dict[str, Widget] = {}      # widget key -> Widget
        self.cache: dict[str, ForwardMsg] = {}    # hash -> cacheable message (the frontend's message cache)
        self.session_hash = ""                    # from new_session (the entry script's hash under st.navigation)
        self.nav_hash = ""                        # from navigation: the page that ran
        self.nav_pages: dict[str, str] = {}       # url path -> page script hash, from the navigation message
        self.query_string = ""
        self.finished: asyncio.Queue[int] = asyncio.Queue()
        self.run_errors: list[str] = []
        self.closed = False
        self._reader: asyncio.Task | None = None

    @property
    def page_script_hash(self) -> str:
        """What the frontend sends as the current page: the navigation's page, else new_session's."""
        return self.nav_hash or self.session_hash

    async def open(self) -> None:
        self.ws = await connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=60,
                                ping_interval=None, compression=None)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # the reader's end is not a result
                await self._reader

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                self.stats.bytes_in += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
        except ConnectionClosed:  # the server or close() ended the session: stop reading
            return
        finally:
            self.closed = True
            self.finished.put_nowait(-1)

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":  # the server sent a reference to a message we said we hold
            cached = self.cache.get(msg.ref_hash)
            if cached is None:
                self.run_errors.append("unknown_ref_hash")
                return
            self.stats.ref_hits += 1
            full = ForwardMsg()
            full.CopyFrom(cached)
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = msg
        if kind == "new_session":  # with st.navigation this is the entry script's hash ...
            self.session_hash = msg.new_session.page_script_hash
        elif kind == "navigation":  # ... and this the page's, which the frontend sends from now on
            self.nav_pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.nav_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            etype = el.WhichOneof("type")
            if etype in WIDGET_TYPES:
                proto = getattr(el, etype)
                key = proto.id.rsplit("-", 1)[-1] if proto.id.startswith("$$ID-") else proto.id
                self.widgets[key] = Widget(etype, proto, msg.delta.fragment_id)
            elif etype == "exception" and not el.exception.is_warning:
                self.run_errors.append("exception:" + el.exception.type)
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self.run_errors.append("compile_error")
        elif kind == "script_finished":
            self.finished.put_nowait(msg.script_finished)

    async def rerun(self, widget_states: list | None = None, fragment_id: str = "", timeout: float = 60,
                    count: bool = True) -> float:
        """Send one rerun request; return seconds until the run's script_finished (raises TimeoutError)."""
        t0 = await self.send(widget_states, fragment_id)
        end = t0 + timeout
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            status = await asyncio.wait_for(self.finished.get(), left)
            if status == -1:
                raise ConnectionError("disconnected")
            if status in FINISHED:
                elapsed = time.perf_counter() - t0
                if count:
                    name = ForwardMsg.ScriptFinishedStatus.Name(status)
                    self.stats.statuses[name] = self.stats.statuses.get(name, 0) + 1
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    self.run_errors.append("compile_error")
                return elapsed

    async def click(self, key: str) -> None:
        """Press button ``key`` without waiting for the run it starts (a lottery run lasts minutes)."""
        state = WidgetState()
        state.id = self.widgets[key].proto.id
        state.trigger_value = True
        await self.send([state])

    async def send(self, widget_states: list | None = None, fragment_id: str = "") -> float:
        """Send one rerun request; return the time it was sent."""
        while not self.finished.empty():  # drop finishes of runs that ended before this request
            if self.finished.get_nowait() == -1:
                raise ConnectionError("disconnected")
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string = self.query_string
        if self.page_script_hash:
            cs.page_script_hash = self.page_script_hash
        else:
            cs.page_name = self.page  # first request: the page is named by its URL path, like /pruning
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.cached_message_hashes.extend(self.cache)
        cs.context_info.timezone = "UTC"
        cs.context_info.locale = "en-US"
        for ws in widget_states or []:
            cs.widget_states.widgets.append(ws)
        self.run_errors = []
        t0 = time.perf_counter()
        await self.ws.send(back.SerializeToString())
        return t0

    def move(self, rng: random.Random, key: str) -> tuple[list, str]:
        """A new value for widget ``key``: (widget states to send, fragment id)."""
        w = self.widgets[key]
        p = w.proto
        state = WidgetState()
        state.id = p.id
        if w.kind == "slider" and len(p.options):  # select_slider: the option's label
            current = list(p.raw_value) or [p.options[int(p.default[0])] if len(p.default) else p.options[0]]
            choices = [o for o in p.options if o != current[0]] or list(p.options)
            choice = rng.choice(choices)
            state.string_array_value.data.append(choice)
            p.raw_value[:] = [choice]
        elif w.kind == "slider":
            steps = max(1, int(round((p.max - p.min) / (p.step or 1))))
            value = p.min + rng.randrange(steps + 1) * (p.step or 1)
            state.double_array_value.data.append(value)
        elif w.kind == "number_input":
            lo = p.min if p.has_min else 0
            hi = p.max if p.has_max else lo + 100
            if p.data_type == NumberInput.INT:
                state.int_value = rng.randint(int(lo), int(hi))
            else:
                state.double_value = rng.uniform(lo, hi)
        else:  # selectbox / radio: the option's label
            state.string_value = rng.choice(list(p.options))
        return [state], w.fragment_id


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


async def session_life(port: int, page: str, stats: Stats, rng: random.Random, ready: asyncio.Event,
                       go: asyncio.Event, stop_at: list[float], args) -> int:
    """Open the page, then move its main control with a 1–2 s think time until the window closes."""
    key = TARGETS[page]
    s = Session(port, page, stats)
    s.query_string = QUERIES.get(page, "")
    moves = 0
    try:
        await s.open()
        stats.load_s.append(await s.rerun(timeout=args.load_timeout, count=False))
        if s.nav_pages.get(page) != s.nav_hash:
            stats.error("wrong_page")
        if s.run_errors:
            for e in s.run_errors:
                stats.error("load_" + e.split(":")[0])
        if key not in s.widgets:
            stats.error("widget_not_found")
            return 0
        ready.set()
        await go.wait()
        while True:
            await asyncio.sleep(rng.uniform(args.think_min, args.think_max))
            if time.perf_counter() >= stop_at[0]:
                break
            states, frag = s.move(rng, key)
            try:
                dt = await s.rerun(states, frag, timeout=args.move_timeout)
            except TimeoutError:
                stats.error("timeout")
                break
            moves += 1
            stats.latencies.append(dt)
            for e in s.run_errors:
                stats.error(e.split(":")[0])
    except (ConnectionError, ConnectionClosed, OSError) as exc:
        stats.error("disconnect" if s.ws is not None else "connect_failed:" + type(exc).__name__)
    except TimeoutError:
        stats.error("load_timeout")
    finally:
        ready.set()
        await s.close()
    return moves


async def heavy_session(port: int, go: asyncio.Event, stop_at: list[float], args, info: dict) -> None:
    """A student running a lottery experiment through the timed window (``--heavy``): Run at the start, Stop at
    the end. Its page is not timed; ``info`` says whether the run started."""
    s = Session(port, "lottery", Stats())
    s.query_string = HEAVY_QUERY
    try:
        await s.open()
        await s.rerun(timeout=args.load_timeout, count=False)
        await go.wait()
        await s.click("lt_run")
        await asyncio.sleep(2.0)
        info["lottery_started"] = "lt_stop" in s.widgets
        await asyncio.sleep(max(0.0, stop_at[0] - time.perf_counter()))
        if "lt_stop" in s.widgets:
            await s.click("lt_stop")
            await asyncio.sleep(1.0)
    except (ConnectionError, ConnectionClosed, OSError, TimeoutError, KeyError) as exc:
        info["lottery_error"] = type(exc).__name__
    finally:
        await s.close()


async def one_run(server: Server, n: int, page: str, args, seed: int) -> dict:
    stats = Stats()
    readies = [asyncio.Event() for _ in range(n)]
    go = asyncio.Event()
    stop_at = [math.inf]
    rngs = [random.Random(seed * 100_003 + i) for i in range(n)]
    tasks = []
    for i in range(n):  # open the sessions a little apart, as a class arriving
        tasks.append(asyncio.create_task(session_life(server.port, page, stats, rngs[i], readies[i], go, stop_at,
                                                      args)))
        await asyncio.sleep(args.ramp / max(1, n))
    await asyncio.gather(*(r.wait() for r in readies))
    heavy: dict = {}
    if args.heavy:
        tasks.append(asyncio.create_task(heavy_session(server.port, go, stop_at, args, heavy)))
        await asyncio.sleep(3.0)  # its page is open before the window starts
    cpu0, client0 = tree_cpu_seconds(server.pid), _client_cpu()
    t0 = time.perf_counter()
    stop_at[0] = t0 + args.duration
    go.set()
    peak = tree_rss_mb(server.pid)
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, timeout=0.25)
        peak = max(peak, tree_rss_mb(server.pid))
        if time.perf_counter() > stop_at[0] + args.move_timeout + 30:  # safety bound; moves time out before
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            stats.error("stuck_session")
            break
    wall = time.perf_counter() - t0
    cpu = tree_cpu_seconds(server.pid) - cpu0
    moves = sum(t.result() or 0 for t in tasks if t.done() and not t.cancelled() and t.exception() is None)
    row = {"sessions": n, "page": page, "moves": moves, "errors": sum(stats.errors.values()),
           "p50_s": _r(percentile(stats.latencies, 50)), "p95_s": _r(percentile(stats.latencies, 95)),
           "cpu_s_per_move": _r(cpu / moves) if moves else None, "peak_rss_mb": round(peak, 1)}
    detail = {**row, "errors_by_kind": stats.errors, "max_s": _r(max(stats.latencies, default=None)),
              "moves_per_s": _r(moves / wall), "window_s": round(wall, 1), "server_cpu_s": _r(cpu),
              "server_cpu_util": _r(cpu / wall), "client_cpu_s": _r(_client_cpu() - client0),
              "load_p50_s": _r(percentile(stats.load_s, 50)), "load_max_s": _r(max(stats.load_s, default=None)),
              "ref_hash_hits": stats.ref_hits, "finished": stats.statuses,
              "mb_received": round(stats.bytes_in / 2**20, 1), "server_vmhwm_mb": round(peak_rss_mb(server.pid), 1),
              **({"with_lottery_run": heavy} if args.heavy else {})}
    print(json.dumps(detail), flush=True)
    return row


def _client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


async def warm_up(server: Server, pages: list[str], args) -> None:
    """One session per page: trains or loads each baseline and fills the server's in-memory caches."""
    for page in pages:
        stats = Stats()
        s = Session(server.port, page, stats)
        s.query_string = QUERIES.get(page, "")
        await s.open()
        try:
            dt = await s.rerun(timeout=args.warm_timeout)
            key = TARGETS[page]
            info = {"warm_up": page, "first_run_s": _r(dt), "page_script_hash": s.page_script_hash,
                    "widget_found": key in s.widgets, "errors": s.run_errors}
            if key in s.widgets:  # one move, so that whatever the first move fills is filled
                w = s.widgets[key]
                info.update(widget_id=w.proto.id, widget_kind=w.kind, fragment_id=w.fragment_id)
                states, frag = s.move(random.Random(args.seed), key)
                info["first_move_s"] = _r(await s.rerun(states, frag, timeout=args.warm_timeout))
            # a full rerun (as after a reconnect) must stay on the page: checks the page addressing
            info["full_rerun_s"] = _r(await s.rerun(timeout=args.warm_timeout))
            info["page_ok"] = s.nav_pages.get(page) == s.nav_hash
            info["finished"] = stats.statuses
            print(json.dumps(info), flush=True)
        finally:
            await s.close()


async def main_async(args) -> dict:
    env = {"COMPRESS_LAB_CACHE": args.cache} if args.cache else {}
    runs = []
    with Server(env=env) as server:
        print(json.dumps({"server": server.url, "pid": server.pid, "ready_s": _r(server.wait_ready())}),
              flush=True)
        try:
            await warm_up(server, args.pages, args)
            for n in args.sessions:
                for page in args.pages:
                    runs.append(await one_run(server, n, page, args, args.seed + n))
                    await asyncio.sleep(args.pause)  # let the server drop the closed sessions
        except BaseException:
            print(server.log_tail(), file=sys.stderr)
            raise
    return {"runs": runs}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="1,10,30,60", help="comma-separated session counts (default 1,10,30,60)")
    ap.add_argument("--pages", default=",".join(TARGETS), help=f"comma-separated, from {','.join(TARGETS)}")
    ap.add_argument("--duration", type=float, default=30, help="timed window per run, seconds (default 30)")
    ap.add_argument("--think-min", type=float, default=1.0)
    ap.add_argument("--think-max", type=float, default=2.0)
    ap.add_argument("--ramp", type=float, default=5.0, help="seconds over which a run's sessions connect")
    ap.add_argument("--move-timeout", type=float, default=30.0, help="a move slower than this is an error")
    ap.add_argument("--load-timeout", type=float, default=120.0, help="limit for a session's first page run")
    ap.add_argument("--warm-timeout", type=float, default=600.0, help="limit for the warm-up runs (may train)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=os.environ.get("COMPRESS_LAB_CACHE"),
                    help="baseline cache folder (default $COMPRESS_LAB_CACHE or ~/.cache/compression-lab)")
    ap.add_argument("--heavy", action="store_true",
                    help="one more session runs a lottery experiment through each window (heavy runs vs moves)")
    ap.add_argument("--quick", action="store_true", help="sessions 1,3, 8 s windows: a smoke run of the bench")
    args = ap.parse_args(argv)
    if args.quick:
        args.sessions, args.duration, args.ramp, args.pause = "1,3", 8.0, 1.0, 1.0
    args.sessions = [int(x) for x in str(args.sessions).split(",") if x]
    args.pages = [p for p in args.pages.split(",") if p]
    unknown = set(args.pages) - set(TARGETS)
    if unknown:
        ap.error(f"unknown page(s) {sorted(unknown)}; known: {list(TARGETS)}")
    if not 0 < args.think_min <= args.think_max:
        ap.error("need 0 < --think-min <= --think-max")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
