"""Shared fixtures: tiny MNIST-format data written as real IDX files, and CLI runners."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

# The test models are tiny: one intra-op thread is faster, and far faster on shared cores (two
# threads on two busy cores made a 500-step regression run 15x slower). Set before torch is
# imported, so this process and every regbench subprocess the tests start get it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from regbench.cli import app
from regbench.core.rundir import ARTIFACTS

N_TRAIN, N_TEST = 192, 64
# The files every completed run folder holds, whatever made it (run, sweep, resume): the
# run-folder contract's own list.
RUN_FILES = ARTIFACTS


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX ubyte file, the format of MNIST's raw files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights a 4x4 block at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, label in enumerate(labels):
        row, col = 2 + 6 * (label // 4), 2 + 6 * (label % 4)
        images[i, row : row + 4, col : col + 4] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = N_TRAIN) -> Path:
    raw = root / folder / "raw"
    for prefix, n, seed in (("train", n_train, 1), ("t10k", N_TEST, 2)):
        images, labels = make_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


@pytest.fixture(scope="session")
def fid_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One FID-classifier cache for the session's GAN runs, never the user's ~/.cache."""
    return tmp_path_factory.mktemp("regbench-cache")


@pytest.fixture(autouse=True)
def isolated_cache(fid_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from regbench.studies import gan_fid

    monkeypatch.setenv(gan_fid.CACHE_ENV, str(fid_cache_dir))
    return fid_cache_dir


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread in-process too (see OMP_NUM_THREADS above), whatever a test set."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_mnist(root)
    return root


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``regbench ARGS`` in-process, in a temp working folder (outputs land there).

    Figures are drawn in the test process: forking figure workers from the test process (by
    then gigabytes) cost the suite a fifth more time than they saved its tiny runs.
    tests/test_drawing.py runs the workers (REGBENCH_FIGURE_WORKERS set), and every test that
    starts `regbench` as a subprocess gets them by default."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", os.environ.get("REGBENCH_FIGURE_WORKERS", "0"))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


def run_regbench(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed console script exactly as a user would, in a subprocess."""
    exe = Path(sys.executable).with_name("regbench")
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def run_dirs(out_dir: Path) -> list[Path]:
    """Run folders (those holding a config.yaml) under ``out_dir``."""
    return sorted(p.parent for p in out_dir.rglob("config.yaml"))
