"""A cross-process lock for the disk caches, so server replicas can share one cache folder.

Several ``streamlit run`` processes (replicas behind a reverse proxy) may ask for the same baseline or
lottery run at once. Entries are already written to a temporary name and renamed into place (a reader
never sees half an entry); the lock adds that only one process computes an entry while the others wait
and then read it, instead of training it twice. POSIX ``flock`` on a sibling ``.lock`` file: released by the
kernel if the holder dies, so a crashed process never leaves the cache locked.

Usage::

    with file_lock(folder.with_name(folder.name + ".lock")):
        entry = load(folder) or compute_and_save(folder)
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; a single process per cache folder is then the rule
    fcntl = None


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the duration of the ``with`` block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
