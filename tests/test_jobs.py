"""The heavy-run pool (ui/jobs.py): bounded workers, shared tasks, queue positions, cancelling, errors."""
import threading

import pytest

from ui.jobs import Cancelled, Pool


def _blocker(gate: threading.Event, started: threading.Event | None = None, value=None):
    def fn(report):
        if started is not None:
            started.set()
        while not gate.wait(0.01):
            report(0.5, "working")  # a cancelled task stops here
        return value
    return fn


def test_tasks_queue_behind_the_workers_and_share_by_key():
    pool = Pool(1)
    gate, started = threading.Event(), threading.Event()
    first = pool.submit("a", _blocker(gate, started, 1), watcher="s1")
    assert started.wait(5)
    second = pool.submit("b", _blocker(gate, value=2), watcher="s1")
    third = pool.submit("c", _blocker(gate, value=3), watcher="s2")
    assert pool.position(first) == 0 and pool.position(second) == 1 and pool.position(third) == 2
    assert pool.submit("b", _blocker(gate, value=99), watcher="s2") is second  # same key: one task, two watchers
    gate.set()
    for task, value in ((first, 1), (second, 2), (third, 3)):
        assert task.done_event.wait(5) and task.state == "done" and task.result == value


def test_cancel_stops_a_running_task_only_when_nobody_else_waits():
    pool = Pool(1)
    gate, started = threading.Event(), threading.Event()
    task = pool.submit("k", _blocker(gate, started), watcher="s1")
    pool.submit("k", _blocker(gate), watcher="s2")
    assert started.wait(5)
    assert not pool.cancel(task, "s1") and not task.cancel_event.is_set()  # s2 still waits for it
    assert pool.cancel(task, "s2")
    assert task.done_event.wait(5) and task.state == "cancelled" and task.result is None
    again = pool.submit("k", _blocker(gate, value=7), watcher="s1")  # a cancelled task is not reused
    assert again is not task
    gate.set()
    assert again.done_event.wait(5) and again.result == 7


def test_a_queued_task_cancelled_never_runs_and_the_queue_moves_up():
    pool = Pool(1)
    gate, started = threading.Event(), threading.Event()
    running = pool.submit("r", _blocker(gate, started), watcher="s")
    assert started.wait(5)
    ran = threading.Event()
    queued = pool.submit("q", lambda report: ran.set(), watcher="s")
    behind = pool.submit("z", _blocker(gate, value="z"), watcher="s")
    assert pool.position(behind) == 2
    assert pool.cancel(queued, "s") and queued.done and queued.state == "cancelled"
    assert pool.position(behind) == 1
    gate.set()
    assert behind.done_event.wait(5) and running.done_event.wait(5)
    assert not ran.is_set()


def test_an_error_is_kept_for_the_page_and_the_worker_goes_on():
    pool = Pool(1)

    def boom(report):
        raise ValueError("a plain-words problem")

    bad = pool.submit("bad", boom)
    good = pool.submit("good", lambda report: 42)
    assert bad.done_event.wait(5) and bad.state == "failed" and isinstance(bad.error, ValueError)
    assert good.done_event.wait(5) and good.result == 42


def test_report_raises_once_cancelled_and_clamps_the_fraction():
    pool = Pool(1)
    task = pool.submit("t", lambda report: None)
    task.done_event.wait(5)
    task.report(1.7, "x")
    assert task.fraction == 1.0 and task.text == "x"
    task.cancel_event.set()
    with pytest.raises(Cancelled):
        task.report(0.1, "y")
