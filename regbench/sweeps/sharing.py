"""Several processes in one sweep folder: a short lock around sweep.json, the folder's
workers, and a claim per job.

::

    <sweep_dir>/
        .sweep.lock                  held while a process reads, merges and writes sweep.json
                                     (or asks its search's study for a trial): milliseconds
        .sweep.workers/<host>-<pid>  one per sweep process working in the folder, and what it
                                     shares the folder by (a search's storage and study)
        .sweep.claims/<job key>      the jobs a process is training now

Every file holds ``<host> <pid>`` of its owner, and is made with ``O_EXCL`` (which shared file
systems honour, where flock often is not). A file is its owner's as long as the owner lives:
on this host the pid says so; on another host (a cluster node sharing the folder) it cannot be
checked, so the owner touches its worker and claim files every BEAT_SECONDS and one untouched
for STALE_SECONDS is taken for a dead process's. A lock older than LOCK_STALE_SECONDS is too
(it is held for milliseconds).

Grids and searches without a shared storage keep the folder to themselves, as before: a second
sweep in it is refused in one line. Searches that share a storage and a study share the folder:
each claims the jobs of its trial before it trains them (waiting while another process trains
the same job) and merges its part of sweep.json into what the others wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from regbench.core.errors import RegbenchError, UsageError
from regbench.training.runner import process_alive

LOCK_FILE = ".sweep.lock"
WORKERS = ".sweep.workers"
CLAIMS = ".sweep.claims"
BEAT_SECONDS = 30.0
STALE_SECONDS = 300.0  # ten missed beats: the owner is gone (or its clock is far off)
LOCK_STALE_SECONDS = 60.0
POLL_SECONDS = 0.05  # between two tries of the short lock
CLAIM_POLL_SECONDS = 1.0  # between two looks at a job another process trains


def me() -> str:
    """``<host> <pid>``: this process, as its files and its search's trials name it."""
    return f"{socket.gethostname()} {os.getpid()}"


def describe(owner: str) -> str:
    """``pid 12 on node-3`` (``pid 12`` here)."""
    host, _, pid = owner.rpartition(" ")
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


# ----------------------------------------------------------------------------- owners
def _owner(path: Path) -> str | None:
    """The ``<host> <pid>`` a lock, worker or claim file names (its first line); None when
    it is gone or unreadable."""
    try:
        first = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None
    return first[0].strip() if first else None


def alive(owner: str | None, age: float, stale: float) -> bool:
    """Whether the process ``owner`` names still holds a file last touched ``age`` seconds ago:
    on this host, by its pid; anywhere, not once the file is older than ``stale``. A file
    without an owner yet is being written (made, not yet filled): held, until it is stale."""
    if age > stale:
        return False
    if owner is None:
        return True
    host, _, pid = owner.rpartition(" ")
    try:
        number = int(pid)
    except ValueError:
        return False
    return process_alive(number, host or None)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _held(path: Path, stale: float) -> str | None:
    """The live owner of ``path`` (``? ?`` while its owner is writing it), or None when it is
    free (gone, or left by a dead process)."""
    owner = _owner(path)
    return (owner or "? ?") if alive(owner, _age(path), stale) else None


def _create(path: Path, text: str) -> bool:
    """Make ``path`` holding ``text`` unless it exists (``O_EXCL``); 0644 under umask 022. Its
    folder is made again if another process removed it (empty) meanwhile."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except FileExistsError:
        return False
    except FileNotFoundError:
        path.parent.mkdir(exist_ok=True)
        return _create(path, text)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


# ----------------------------------------------------------------------------- the beat
class _Beat:
    """Touches this process's worker and claim files every BEAT_SECONDS, in one daemon thread
    that runs while there is a file to touch."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.guard = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, path: Path) -> None:
        with self.guard:
            self.paths.add(path)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="regbench-beat", daemon=True)
                self.thread.start()

    def discard(self, path: Path) -> None:
        with self.guard:
            self.paths.discard(path)

    def _loop(self) -> None:
        while True:
            time.sleep(BEAT_SECONDS)
            with self.guard:  # the decision to stop and add()'s to start are one at a time
                paths = list(self.paths)
                if not paths:
                    self.thread = None
                    return
            for path in paths:
                with contextlib.suppress(OSError):  # released meanwhile
                    os.utime(path)


_beat = _Beat()


# ----------------------------------------------------------------------------- the short lock
@contextlib.contextmanager
def short_lock(sweep_dir: Path) -> Iterator[None]:
    """sweep.json (and a search's next trial) to this process for the few milliseconds of a
    read-merge-write: waits for another holder, and takes over from a dead one."""
    lock = sweep_dir / LOCK_FILE
    while not _create(lock, me()):
        if _held(lock, LOCK_STALE_SECONDS) is None:
            lock.unlink(missing_ok=True)  # left by a process killed while it held it
            continue
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- workers
@contextlib.contextmanager
def working(sweep_dir: Path, shares: str | None) -> Iterator[list[str]]:
    """This process's place among the folder's workers for as long as it runs there; yields
    the other live workers (``<host> <pid>``) it joined. ``shares``: what it shares the folder
    by (a search's storage and study), None to have it alone; a worker it cannot join (one
    that keeps the folder, or shares something else) is a UsageError."""
    folder = sweep_dir / WORKERS
    mine = folder / re.sub(r"[^A-Za-z0-9._-]", "_", me().replace(" ", "-"))
    with short_lock(sweep_dir):
        others = _live_workers(folder)
        for owner, their in others.items():
            _refuse(sweep_dir, owner, their, shares)
        folder.mkdir(exist_ok=True)
        # The owner's line first, as in every file here; what it shares by (json: one line).
        mine.write_text(f"{me()}\n{json.dumps({'shares': shares})}\n")
    _beat.add(mine)
    try:
        yield list(others)
    finally:
        _beat.discard(mine)
        mine.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # another worker's file is still there
            folder.rmdir()


def _live_workers(folder: Path) -> dict[str, str | None]:
    """Each live worker's owner and what it shares by; dead ones' files are removed."""
    found: dict[str, str | None] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        owner = _held(path, STALE_SECONDS)
        if owner is None:
            path.unlink(missing_ok=True)
        elif owner != me():
            found[owner] = _shares_of(path)
    return found


def _shares_of(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return json.loads(lines[1]).get("shares") if len(lines) > 1 else None
    except (OSError, ValueError, AttributeError):
        return None


def _refuse(sweep_dir: Path, owner: str, their: str | None, shares: str | None) -> None:
    if their is not None and their == shares:
        return
    where = describe(owner)
    if their is None or shares is None:
        raise UsageError(
            f"another regbench sweep ({where}) is running in {sweep_dir}; wait for it (only "
            f"searches that share one hydra.sweeper.storage and study run in a folder together)"
        )
    raise UsageError(
        f"another regbench search ({where}) is running in {sweep_dir} with {their}: give the "
        f"same to share its trials, or another --dir"
    )


def worker_alive(sweep_dir: Path, owner: str) -> bool:
    """Whether the worker ``owner`` (``<host> <pid>``) is still working in ``sweep_dir``."""
    if owner == me():
        return True
    folder = sweep_dir / WORKERS
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if _owner(path) == owner:
            return _held(path, STALE_SECONDS) is not None
    return False


# ----------------------------------------------------------------------------- claims
@contextlib.contextmanager
def claimed(sweep_dir: Path, keys: Iterable[str], waiting: Callable[[str], None]) -> Iterator[None]:
    """The job folders ``keys`` to this process while it trains them: a job another live
    process trains is waited for (``waiting`` hears it once, with its owner), one a dead
    process left is taken over. Taken in sorted order, so that two processes claiming two
    overlapping trials cannot each wait for the other."""
    folder = sweep_dir / CLAIMS
    folder.mkdir(exist_ok=True)
    held: list[Path] = []
    try:
        for key in sorted(set(keys)):
            held.append(_claim(folder / key, waiting))
            _beat.add(held[-1])
        yield
    finally:
        for path in held:
            _beat.discard(path)
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def _claim(path: Path, waiting: Callable[[str], None]) -> Path:
    told = False
    while not _create(path, me()):
        owner = _held(path, STALE_SECONDS)
        if owner is None or owner == me():  # a dead process's, or this one's left by a crash
            path.unlink(missing_ok=True)
            continue
        if not told:
            waiting(f"job {path.name} is being trained by {describe(owner)}: waiting for it")
            told = True
        time.sleep(CLAIM_POLL_SECONDS)
    if not path.is_file():  # a bug: the claim must exist while its job trains
        raise RegbenchError(f"cannot claim {path}")
    return path
