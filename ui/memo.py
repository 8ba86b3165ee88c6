"""A bounded, thread-safe, process-wide memo for expensive results (baselines, fine-tuning runs, sweeps).

Used instead of ``st.cache_data`` / ``st.cache_resource`` wherever the computation reports progress to
the page that asked for it: Streamlit's caches would record those progress elements and try to replay
them later. Every cached object is shared between sessions: read it, never change it.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable


class Memo:
    """Each key is computed once, even when two sessions ask at the same time; least recently used
    entries are dropped beyond ``size``."""

    def __init__(self, size: int):
        self.size, self.data, self.locks, self.guard = size, OrderedDict(), {}, threading.Lock()
        ALL.add(self)

    def get(self, key, compute: Callable[[], object]):
        with self.guard:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            with self.guard:
                if key in self.data:
                    return self.data[key]
            value = compute()
            with self.guard:
                self.data[key] = value
                while len(self.data) > self.size:
                    self.data.popitem(last=False)
                self.locks.pop(key, None)
            return value

    def has(self, key) -> bool:
        with self.guard:
            return key in self.data

    def forget(self, needle: str) -> int:
        """Drop every entry whose key mentions ``needle`` (an upload's name or digest); how many were dropped."""
        with self.guard:
            gone = [k for k in self.data if needle in repr(k)]
            for k in gone:
                del self.data[k]
        return len(gone)


ALL: "weakref.WeakSet[Memo]" = weakref.WeakSet()  # every memo, so that an ended session's uploads can be forgotten


def forget_everywhere(needle: str) -> int:
    """``Memo.forget(needle)`` on every memo of the process."""
    return sum(m.forget(needle) for m in list(ALL))
