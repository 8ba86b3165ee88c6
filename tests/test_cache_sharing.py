"""Two server processes sharing one cache folder: one trains a baseline, the other waits and reads it."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from compress_core.baselines import get_baseline
    from compress_core.train import TrainConfig
    b = get_baseline("moons", "tiny", seed=5, train_config=TrainConfig(epochs=3, lr=1e-2), cache_dir=sys.argv[1])
    print(json.dumps({"from_cache": b.from_cache, "acc": b.test_metrics.accuracy}))
""")


def _run_twice(script: str, cache: Path) -> list[dict]:
    """``script`` in two processes at once on one cache folder; the last JSON line each printed."""
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(cache)], cwd=root, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    out = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return out


def test_two_processes_train_a_baseline_once(tmp_path: Path):
    out = _run_twice(SCRIPT, tmp_path)
    assert sorted(o["from_cache"] for o in out) == [False, True]  # trained once, read once
    assert out[0]["acc"] == out[1]["acc"]
    entries = [p for p in (tmp_path / "baselines").iterdir() if p.is_dir()]
    assert len(entries) == 1 and not any(".tmp-" in p.name for p in entries)


LOTTERY = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from compress_core.lottery import LotteryConfig, run_lottery
    from compress_core.train import TrainConfig
    cfg = LotteryConfig(dataset="moons", model="tiny", seed=5, rounds=2, controls=("reinit",),
                        train=TrainConfig(epochs=2, lr=1e-2, eval_every=10, rewind_iteration=5))
    reports = []
    run = run_lottery(cfg, progress=reports.append, cache_dir=sys.argv[1])
    trained = sum(1 for p in reports if p.round > 0)  # evaluations inside pruning rounds: work really done
    print(json.dumps({"trained": trained, "acc": run.rounds[-1]["ticket"].final_acc}))
""")


def test_two_processes_run_a_lottery_experiment_once(tmp_path: Path):
    out = _run_twice(LOTTERY, tmp_path)
    assert sorted(o["trained"] > 0 for o in out) == [False, True]  # one ran the rounds, the other loaded them
    assert out[0]["acc"] == out[1]["acc"]
    files = list((tmp_path / "lottery").iterdir())
    assert [f.suffix for f in files if f.suffix == ".json"] == [".json"] and not any(".tmp" in f.name for f in files)


def test_a_lock_held_too_long_ends_the_wait_in_plain_words(tmp_path: Path):
    """The other process's lock is held (here by another thread, which a flock treats the same way): the waiter
    gives up after the timeout with a TimeoutError that names the lock, and a released lock is taken at once."""
    import threading

    from compress_core.baselines import cache_lock

    path = tmp_path / "locks" / "baseline-x"  # the folder does not exist yet: created
    held, release = threading.Event(), threading.Event()

    def holder():
        with cache_lock(path):
            held.set()
            release.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(60)
        with pytest.raises(TimeoutError, match="another Compression Lab process .* try again later") as e:
            with cache_lock(path, timeout=0.2):
                pass
        assert str(path) in str(e.value)
    finally:
        release.set()
        t.join()
    with cache_lock(path, timeout=0.2):  # released by the holder: free again
        pass
