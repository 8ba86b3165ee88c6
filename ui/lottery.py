"""Lottery-ticket runs for the page: a background job that keeps training while the page reruns, reports its
progress, and stops between training evaluations when asked; plus cached loading of finished runs.

The job lives in ``st.session_state`` (one per browser session). Its thread only calls ``compress_core``
(never Streamlit); the page polls ``job.progress`` and draws the bar. Pressing Stop sets ``job.stop``, which
``run_seeds`` polls at each evaluation: the round in progress is dropped, finished rounds are kept (and
cached on disk, so pressing Run again resumes).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import streamlit as st

from compress_core.lottery import LotteryConfig, LotteryRun, Progress, cache_paths, load_run, run_seeds


class Job:
    """One background run of ``config`` over ``seeds``."""

    def __init__(self, config: LotteryConfig, seeds: Sequence[int]):
        self.config, self.seeds = config, tuple(seeds)
        self.stop = threading.Event()
        self.progress: Progress | None = None
        self.runs: list[LotteryRun] = []
        self.error: str | None = None
        self.done = False
        self.thread = threading.Thread(target=self._work, name="lottery-job", daemon=True)

    def start(self) -> "Job":
        self.thread.start()
        return self

    def _on_progress(self, p: Progress) -> None:
        self.progress = p

    def _work(self) -> None:
        try:
            run_seeds(self.config, self.seeds, progress=self._on_progress, should_stop=self.stop.is_set,
                      on_run=self.runs.append)
        except ValueError as e:  # settings that only fail against the data: shown in plain words
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 -- reported on the page instead of killing the thread silently
            self.error = f"The run failed: {type(e).__name__}: {e}"
        finally:
            self.done = True

    @property
    def stopped(self) -> bool:
        return self.stop.is_set() or any(r.stopped for r in self.runs)

    def matches(self, config: LotteryConfig, seeds: Sequence[int]) -> bool:
        return self.config == config and self.seeds == tuple(seeds)


@st.cache_resource(show_spinner=False, max_entries=64)
def _load(config_json: str, mtime: float) -> LotteryRun | None:
    import json

    return load_run(LotteryConfig.from_dict(json.loads(config_json)))


def cached_runs(config: LotteryConfig, seeds: Sequence[int]) -> list[LotteryRun]:
    """Runs of these settings found in the disk cache, seed by seed, up to the first seed not run yet.

    Shared between sessions and reruns (keyed by the file's modification time): never change them in place.
    """
    import json

    out = []
    for s in seeds:
        cfg = config.with_seed(s)
        path: Path = cache_paths(cfg, None)[0]
        if not path.exists():
            break
        run = _load(json.dumps(cfg.to_dict(), sort_keys=True), path.stat().st_mtime)
        if run is None:
            break
        out.append(run)
        if not run.complete:
            break
    return out
