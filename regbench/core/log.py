"""regbench's notices go through the ``regbench`` logger, so that callers route or silence them
with ``logging`` as they do any library's: ``logging.getLogger("regbench").setLevel(logging.ERROR)``
hides them in a notebook, a handler of the caller's sends them to a CI log.

Two kinds of notice, both logged at WARNING: a *note* (something skipped and gone on without,
e.g. one unreadable model.pt; the CLI shows ``note: <text>``) and a run's *notice* (``resuming
<folder> from epoch 3``; the CLI shows the text as it is). Code deep in the library still
raises a note as a ``regbench.core.errors.Notice`` warning; the CLI and the API turn those into
log records at their boundary (``notices_logged``).

regbench adds no handler to the root logger and leaves ``regbench`` without one outside its CLI:
a caller with no logging set up still sees each notice on stderr (Python's last-resort handler
shows WARNING records), and one with a configuration gets them through it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

LOGGER = "regbench"
NOTE_PREFIX = "note: "

logger = logging.getLogger(LOGGER)


def note(text: str) -> None:
    """Something skipped or worth a second look, shown by the CLI as ``note: <text>``."""
    logger.warning(text, extra={"prefix": NOTE_PREFIX})


def notice(text: str) -> None:
    """A run's own notice (resuming, how to go on after an interrupt), shown as it is."""
    logger.warning(text, extra={"prefix": ""})


def prefix(record: logging.LogRecord) -> str:
    """What the CLI puts before a record's message: ``note: `` for notes and for any record
    logged without regbench's helpers (``logger.warning`` in a plug-in study)."""
    return str(getattr(record, "prefix", NOTE_PREFIX))


@contextlib.contextmanager
def notices_logged() -> Iterator[None]:
    """Inside: each ``Notice`` warning becomes a note on the ``regbench`` logger (each its own
    record, none deduplicated), and other warnings go on as they came. The warning machinery
    is put back after."""
    from regbench.core.errors import Notice

    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, Notice):
            note(str(message))
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", Notice)  # each skipped file is its own line
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def handled_by(handler: logging.Handler) -> Iterator[None]:
    """``handler`` on the ``regbench`` logger, which is enabled for the block (at the level a
    caller set, else INFO); the logger as it was after. Used around a CLI command, and around a
    job that runs where no handler would show its notices (a Hydra launcher's worker: Hydra's
    ``disabled`` logging config disables every existing logger, the root's level is ERROR)."""
    level, disabled = logger.level, logger.disabled
    logger.addHandler(handler)
    logger.disabled = False
    if level == logging.NOTSET:  # else the root's level decides, and Hydra's may be ERROR
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
