"""After a first page is drawn, import what the other pages need, in a background thread.

The start page shows a cached baseline without PyTorch, so a fresh server answers about as fast as a one-line
Streamlit app. This thread then imports PyTorch, the library and the figure code (about 2 s of one core) while
the visitor reads, so the next page does not wait for them. It begins ``DELAY_S`` after the first run, once the
browser has drawn the first page.

Imports racing in two threads are not safe in general (Plotly, for one, reads ``sys.modules["pandas"]`` and would
find a half-initialised module), so the warm-up and the page runs exclude each other: every run of app.py holds
``running()``, the warm-up waits until no run holds it, and runs that start meanwhile wait for the warm-up to end.
Only the first seconds of a server's life are concerned, and the page that waits needed those imports anyway.
(A fragment's rerun does not pass through app.py, but it runs on a page whose full run has already imported what
it uses.)
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import threading
import time

# In the order the pages need them; ui.loaders brings PyTorch and sets its thread count.
MODULES = ("ui.loaders", "compress_core.baselines", "compress_core.pruning", "compress_core.quant",
           "compress_core.integer", "compress_core.viz.common", "compress_core.viz.pruning",
           "compress_core.viz.quant", "pandas")

# Seconds between the first run's end and the warm-up: the browser is still drawing that first page, and on a
# 2-core machine importing PyTorch meanwhile slowed it by about 0.3 s (bench/bench_browser.py, start-up).
DELAY_S = 3.0

_lock = threading.Lock()
_started = False
_turns = threading.Condition()  # guards _runs and _importing
_runs = 0  # page runs under way
_importing = False
log = logging.getLogger(__name__)


@contextlib.contextmanager
def running():
    """Hold for the whole of a page run: waits while the warm-up imports, and keeps it from starting meanwhile."""
    global _runs
    with _turns:
        _turns.wait_for(lambda: not _importing)
        _runs += 1
    try:
        yield
    finally:
        with _turns:
            _runs -= 1
            _turns.notify_all()


def _import_all() -> None:
    global _importing
    time.sleep(DELAY_S)
    with _turns:
        _turns.wait_for(lambda: _runs == 0)
        _importing = True
    try:
        for name in MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 -- the page importing it will show the error to its user
                log.exception("warm-up: importing %s failed", name)
        # The modules' quarter of a million objects live as long as the server: out of the collector's sight
        # (gc.freeze), a full collection no longer walks them (110 ms each on this machine, at random moves).
        gc.collect()
        gc.freeze()
    finally:
        with _turns:
            _importing = False
            _turns.notify_all()


def start() -> bool:
    """Start the warm-up once per process (``DELAY_S`` later, when no page run is under way); True when this
    call started it."""
    global _started
    with _lock:
        if _started:
            return False
        _started = True
    threading.Thread(target=_import_all, name="compression-lab-warmup", daemon=True).start()
    return True
