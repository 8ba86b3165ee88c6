"""Shared test set-up: a disk cache for baselines that lives inside the repository's ignored .cache/."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("COMPRESS_LAB_CACHE", str(ROOT / ".cache" / "test"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
