"""Seeding, determinism flags, capturing/restoring every RNG state (for exact resume), and
putting back the caller's globals (threads, flags, RNGs, logging) after a run."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(enabled: bool, device: torch.device) -> None:
    """Deterministic kernels; on CUDA also the cuBLAS workspace setting they require."""
    import torch

    if enabled and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # warn_only on CUDA: an op without a deterministic kernel warns rather than kills the run.
    torch.use_deterministic_algorithms(enabled, warn_only=device.type == "cuda")
    # In deterministic mode torch also fills every new uninitialized tensor with NaN, a guard
    # against code that reads memory before writing it. No torch kernel does, and neither does
    # regbench; the fills were 4-9% of a stacked RNN step in a profile (benchmarks/bench.py).
    torch.utils.deterministic.fill_uninitialized_memory = False


@contextmanager
def preserved_globals() -> Iterator[None]:
    """Leave the caller's process as it was: a run sets torch's thread count, its determinism
    flags and every global RNG (python, numpy, torch, CUDA); a notebook or script that calls
    regbench gets its own back afterwards."""
    import numpy as np
    import torch

    deterministic = torch.utils.deterministic
    flags = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        deterministic.fill_uninitialized_memory,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    rngs = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    # Only a CUDA the caller already started: reading its RNG would start it otherwise.
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        threads, enabled, warn_only, fill, benchmark, cublas = flags
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        deterministic.fill_uninitialized_memory = fill
        torch.backends.cudnn.benchmark = benchmark
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas
        random.setstate(rngs[0])
        np.random.set_state(rngs[1])
        torch.set_rng_state(rngs[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextmanager
def preserved_logging() -> Iterator[None]:
    """Every logger's level, handlers and switches as they were: Hydra applies its logging config
    (a multirun, --info), which drops the root's handlers and disables the loggers that exist;
    a logger first made inside the block is left enabled."""
    import logging

    manager = logging.root.manager
    loggers = [
        logging.root,
        *(x for x in manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    saved = [(x, x.level, list(x.handlers), x.disabled, x.propagate) for x in loggers]
    disabled_below = manager.disable
    try:
        yield
    finally:
        for logger in manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.disabled = False
        for logger, level, handlers, disabled, propagate in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.disabled, logger.propagate = disabled, propagate
        logging.disable(disabled_below)


def capture_rng(data_generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state as tensors and plain values (loadable with ``weights_only=True``)."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
        "data": data_generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], data_generator: torch.Generator) -> None:
    import numpy as np
    import torch

    random.setstate(_as_tuple(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    data_generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    """random.setstate needs tuples; a checkpoint round trip may hand back lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value
