"""Heavy runs go through one bounded pool, so they never starve the slider moves of other sessions.

First-visit pruning curves, QAT, quantization curves, deep-compression pipelines and lottery experiments each
train networks for seconds to minutes. Run in the sessions' own script threads, ten students starting them at
once would take every core and every slider move would wait. Here they queue for a few worker threads
(``WORKERS``: the cores but one, at least one; ``COMPRESS_LAB_WORKERS`` overrides), and the core left over
serves the interactive reruns.

A task is identified by its cache key: two sessions asking for the same result share one task. A page waits for
its task (``run``) in slices of ``POLL_S``, showing the place in the queue or the progress, with a Cancel button,
and reruns itself between slices; a rerun of the page (a slider moved meanwhile) leaves the task running and picks
it up again. Cancel
stops the task at its next progress report (``Cancelled`` is raised inside the worker) unless another session
still waits for it; that session's page then simply keeps waiting.

The task's function receives ``report(fraction, text)``; the library's progress callbacks are exactly that.
"""
from __future__ import annotations

import os
import threading
import zlib
from collections import deque
from typing import Any, Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.memo import Memo

WORKERS = int(os.environ.get("COMPRESS_LAB_WORKERS", 0)) or max(1, (os.cpu_count() or 2) - 1)
POLL_S = 1.0  # how long one page run waits for a task before it reruns (and lets clicks in)


class Cancelled(Exception):
    """Raised inside a task's function at its next progress report once the task is cancelled."""


class Task:
    """One heavy computation: queued, then running on a worker, then done, failed or cancelled."""

    def __init__(self, key: Any, fn: Callable[[Callable[[float, str], None]], Any], label: str):
        self.key, self.fn, self.label = key, fn, label
        self.state = "queued"
        self.fraction, self.text = 0.0, "waiting for a free worker"
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancel_event, self.done_event = threading.Event(), threading.Event()
        self.watchers: set[str] = set()

    def report(self, fraction: float, text: str) -> None:
        """The progress callback handed to the task's function; stops the task once it is cancelled."""
        if self.cancel_event.is_set():
            raise Cancelled
        self.fraction, self.text = min(1.0, max(0.0, float(fraction))), text

    @property
    def done(self) -> bool:
        return self.done_event.is_set()


class Pool:
    """A FIFO queue served by ``workers`` daemon threads; unfinished tasks are shared by key."""

    def __init__(self, workers: int):
        self.workers = workers
        self.queue: deque[Task] = deque()
        self.tasks: dict[Any, Task] = {}  # unfinished tasks by key
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._serve, name=f"heavy-run-{i}", daemon=True)
                        for i in range(workers)]
        for t in self.threads:
            t.start()

    def submit(self, key: Any, fn: Callable[[Callable[[float, str], None]], Any], label: str = "",
               watcher: str = "") -> Task:
        """The unfinished task of ``key``, or a new one at the back of the queue; ``watcher`` (a session id)
        is added to those waiting for it."""
        with self.cond:
            task = self.tasks.get(key)
            if task is None or task.cancel_event.is_set():
                task = Task(key, fn, label)
                self.tasks[key] = task
                self.queue.append(task)
                self.cond.notify()
            task.watchers.add(watcher)
            return task

    def position(self, task: Task) -> int:
        """0 once it runs (or is done); otherwise how many queued tasks are ahead of it, plus one."""
        with self.cond:
            try:
                return list(self.queue).index(task) + 1
            except ValueError:
                return 0

    def cancel(self, task: Task, watcher: str = "") -> bool:
        """``watcher`` no longer waits; the task stops when nobody does. True if it was cancelled."""
        with self.cond:
            task.watchers.discard(watcher)
            if task.watchers or task.done:
                return False
            task.cancel_event.set()
            if task in self.queue:  # never started: finish it now
                self.queue.remove(task)
                self._finish(task, "cancelled")
            return True

    def _finish(self, task: Task, state: str) -> None:
        task.state = state
        if self.tasks.get(task.key) is task:
            del self.tasks[task.key]
        task.done_event.set()

    def _serve(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                task = self.queue.popleft()
                task.state, task.text = "running", "starting"
            state = "done"
            try:
                task.result = task.fn(task.report)
            except Cancelled:
                state = "cancelled"
            except BaseException as e:  # noqa: BLE001 -- handed to the page that waits, in plain words there
                task.error, state = e, "failed"
            with self.cond:
                self._finish(task, state)


POOL = Pool(WORKERS)


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def run(memo: Memo, key: Any, fn: Callable[[Callable[[float, str], None]], Any], label: str,
        cancel_key: str) -> Any:
    """``memo``'s value for ``key``, computed by ``fn(report)`` on the pool if it is not there yet.

    While it computes, the page shows the queue position or the progress and a Cancel button (widget key
    ``cancel_key``). Returns None if this session cancelled it (the page says so and offers to start again);
    an error of ``fn`` is raised here, in the page's thread.
    """
    if memo.has(key):
        return memo.get(key, lambda: None)
    flag = f"_cancelled_{cancel_key}"
    if st.session_state.get(flag) == repr(key):
        st.info(f"{label}: cancelled.", icon="⏹️")
        if not st.button("Start it again", key=f"{cancel_key}_again"):
            return None
        del st.session_state[flag]
    task = POOL.submit(key, fn, label, session_id())

    def cancel() -> None:  # a click that arrives after the task finished changes nothing
        if POOL.cancel(task, session_id()) or not task.done:
            st.session_state[flag] = repr(key)

    box = st.empty()
    with box.container():
        left, right = st.columns([6, 1])
        bar = left.progress(0.0, text=label)
        # one widget per task: a page may wait for two tasks of the same kind in one run (e.g. two QAT controls),
        # and the first one's button stays registered after it finished
        right.button("Cancel", key=f"{cancel_key}_{zlib.crc32(repr(key).encode()):08x}", on_click=cancel,
                     help="Stops this run at its next step.")
    # Wait in slices: a click inside an st.fragment (our live views) does not interrupt a fragment run in
    # progress, so after each slice the run is restarted (st.rerun), which lets a pending Cancel or slider move
    # in; the task itself goes on in the pool meanwhile.
    for _ in range(int(POLL_S / 0.25)):
        if task.done_event.wait(0.25):
            break
        ahead = POOL.position(task)
        bar.progress(task.fraction, text=f"{label}: " + (f"queued for a free worker, {ahead - 1} other heavy "
                                                          "run(s) ahead" if ahead else task.text))
    else:
        ctx = get_script_run_ctx()
        st.rerun(scope="fragment" if ctx is not None and ctx.fragment_ids_this_run else "app")
    box.empty()
    if task.state == "failed":
        raise task.error
    if task.state == "cancelled":
        return None if st.session_state.get(flag) == repr(key) else run(memo, key, fn, label, cancel_key)
    return memo.get(key, lambda: task.result)
