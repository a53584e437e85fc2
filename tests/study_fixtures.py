"""Autouse fixtures for the study tests (import them into a test module to switch them on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from regbench.models import gan_quality


@pytest.fixture(scope="session")
def fid_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One classifier cache for the session's GAN runs, never the user's ~/.cache."""
    return tmp_path_factory.mktemp("regbench-cache")


@pytest.fixture(autouse=True)
def isolated_cache(fid_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(gan_quality.CACHE_ENV, str(fid_cache_dir))
    return fid_cache_dir


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These models are tiny: one intra-op thread is faster, and far faster on shared cores
    (two threads on two busy cores made a 500-step regression run 15x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
