"""SIGTERM (kill, a scheduler's preemption) as Ctrl-C: whatever a command is doing when one
arrives (training, drawing figures, recording a sweep), it ends the same way, its runs closed as
``interrupted`` with the line to go on, instead of dying with folders that say ``running``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside this block SIGTERM raises KeyboardInterrupt, as Ctrl-C does (status interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
