"""The run-directory format every command shares.

::

    <out_dir>/<name>/<YYYYmmdd-HHMMSS>-<id>/
        config.yaml      resolved settings (enough to rerun)
        overrides.yaml   the overrides as typed
        metrics.csv      one row per evaluation, appended and flushed as training goes
        weights.csv      per-layer weight statistics at each evaluation (diagnostics.py)
        summary.json     status (running|completed|interrupted|failed|diverged) and results
        checkpoint.pt    everything needed to resume, rewritten atomically at each row
        model.pt         final weights (state dicts; ``torch.load(..., weights_only=True)``)
        *.png            plots

A run is complete only when ``summary.json`` says ``completed``; every file a reader trusts is
written atomically (temp file + rename), so a crash never leaves half a file. Nothing is written
through a link: a file's link is replaced, a run folder named by a link (a sweep's readable name,
``<sweep>/by-settings/dropout=0.5,seed=3``) is opened at the folder it points to, and links
below a folder are not entered when runs are looked for (``RunDir.find``).
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import functools
import json
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from regbench.core.errors import DataError, RegbenchError, UsageError

CONFIG, OVERRIDES, METRICS, SUMMARY = "config.yaml", "overrides.yaml", "metrics.csv", "summary.json"
CHECKPOINT, MODEL = "checkpoint.pt", "model.pt"
WEIGHTS = "weights.csv"  # per-layer weight statistics, one row per layer per metrics row
RUN_LOCK = ".run.lock"  # there while a process resumes the run (RunDir.locked)
LOSS_CURVE = "loss_curve.png"
WEIGHT_HIST, WEIGHT_NORMS = "weight_hist.png", "weight_norms.png"
# Every file a completed run of any study holds (a study adds its own figures: Study.figures).
ARTIFACTS = (
    CONFIG, OVERRIDES, METRICS, WEIGHTS, SUMMARY, CHECKPOINT, MODEL,
    LOSS_CURVE, WEIGHT_HIST, WEIGHT_NORMS,
)  # fmt: skip
# The files a completed run's results are read from. Without one the run is damaged (its figures
# can be redrawn with `regbench plot`, and its checkpoint only serves a resume).
RESULT_FILES = (CONFIG, OVERRIDES, METRICS, WEIGHTS, SUMMARY, MODEL)


class Status(str, Enum):
    """A run's ``status`` in summary.json. Only COMPLETED means the run's files are whole."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DIVERGED = "diverged"
    PRUNED = "pruned"  # a search's pruner stopped it (pruned_epoch): final, never resumed

    def __str__(self) -> str:
        return self.value

    # Equal to its value as a string (a str subclass), so it must hash like one too: a Status
    # and its value are then the same dict key (Enum's own hash is its member name's).
    def __hash__(self) -> int:
        return str.__hash__(self)


@dataclass
class Summary:
    """summary.json, typed. Optional fields left at None are not written, so a summary has the
    keys it always had; keys this version does not know are kept in ``extra`` and written back."""

    status: Status
    name: str
    model: str
    seed: int
    overrides: list[str] = field(default_factory=list)
    pid: int | None = None
    host: str | None = None
    run_dir: str | None = None
    epochs: int | None = None
    device: str | None = None
    data: dict[str, Any] | None = None
    started_at: str | None = None
    environment: dict[str, Any] | None = None
    stacked: bool | None = None
    stack_note: str | None = None
    stack: dict[str, Any] | None = None
    rerun_of: str | None = None
    resumed_from_epoch: int | None = None
    epochs_completed: int | None = None
    final: dict[str, Any] | None = None
    best: dict[str, Any] | None = None  # runs without validation data: each test metric's best
    selected: dict[str, Any] | None = None  # {epoch, metric, value}: chosen on validation data
    early_stop: dict[str, Any] | None = None  # stopped, stopped_epoch, restored, restored_epoch
    finished_at: str | None = None
    wall_seconds: float | None = None
    error: str | None = None
    diverged_epoch: int | None = None
    pruned_epoch: int | None = None  # the evaluation at which a search's pruner stopped it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status is Status.COMPLETED

    def to_json(self) -> dict[str, Any]:
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        extra = plain.pop("extra")
        plain["status"] = Status(self.status).value
        return {**{k: v for k, v in plain.items() if v is not None}, **extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """A summary read from disk; ValueError when it is not one (no or unknown status)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = Status(data.get("status"))
        for key in ("name", "model", "seed"):
            values.setdefault(key, None)
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, out_dir: str | Path, name: str, path: Path | None = None) -> RunDir:
        """A new folder ``<out_dir>/<name>/<timestamp>-<id>``, or exactly ``path`` when given
        (a sweep's job folder, named by the job's config)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = path or Path(out_dir).expanduser() / name / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise RegbenchError(
                f"cannot create the run folder {path}: {exc.strerror}; "
                f"choose a writable out_dir=..."
            ) from exc
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run, or a UsageError saying what is wrong with ``path``."""
        path = Path(path).expanduser()
        if not path.exists():
            raise UsageError(f"{path} does not exist; give a run folder (one holding {CONFIG})")
        if not cls.is_run(path):
            raise UsageError(f"{path} is not a regbench run (no {CONFIG} and {SUMMARY})")
        # A link to a run (a sweep's readable name, by-settings/dropout=0.5,seed=3) opens the
        # folder it names: what the run writes (a resume's rows, redrawn figures) goes there by
        # its own path, never through the link, and a rerun lands beside the folder.
        return cls(path.resolve() if path.is_symlink() else path)

    @staticmethod
    def is_run(path: Path) -> bool:
        """What makes a folder a run: its config and its summary."""
        return (path / CONFIG).is_file() and (path / SUMMARY).is_file()

    @classmethod
    def find(cls, paths: Iterable[str | Path]) -> list[RunDir]:
        """Every run at or under ``paths`` (run folders, sweep folders, any folder), each once,
        in order; a UsageError for a path that does not exist or holds no run.

        A path given is followed when it is a link; links met below it are not (``**`` never
        descends into one): a sweep's by-settings/ names its own job folders again, and a link
        planted in a received folder must not pull runs from elsewhere into a comparison."""
        found: dict[Path, None] = {}
        for given in paths:
            path = Path(given).expanduser()
            if not path.exists():
                raise UsageError(f"{path} does not exist; give run or sweep folders")
            under = [path] if cls.is_run(path) else sorted(p.parent for p in path.rglob(SUMMARY))
            folders = [f for f in under if cls.is_run(f)]
            if not folders:
                raise UsageError(f"no regbench runs in {path} ({_no_runs_why(path)})")
            found.update(dict.fromkeys(f.resolve() for f in folders))
        return [cls(folder) for folder in found]

    def __str__(self) -> str:
        return str(self.path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The run folder for this process alone (a resume: two would both continue from one
        checkpoint into one metrics.csv); a second is refused at once, in a UsageError."""
        busy = f"{self.path} is being resumed by another regbench process; wait for it to end"
        with exclusive(self.path / RUN_LOCK, busy):
            yield

    def damage(self, needed: Sequence[str] = RESULT_FILES) -> str | None:
        """What makes a run that says it completed not whole (one of the ``needed`` files gone,
        or metrics.csv without rows), or None when nothing is missing."""
        missing = [name for name in needed if not (self.path / name).is_file()]
        if missing:
            return f"{', '.join(missing)} missing"
        try:
            rows = self.read_metrics()
        except DataError as exc:  # bytes that are not text: as damaged as a missing file
            return str(exc)
        return None if rows else f"{METRICS} has no rows"

    # ------------------------------------------------------------------ config
    def write_config(self, config: dict[str, Any], overrides: Sequence[str]) -> None:
        import yaml

        # No anchors and aliases (&id001, *id001) even for a value that appears twice: the
        # reader refuses them (read_yaml), and a config reads the same without them.
        plain = {"Dumper": _plain_dumper(), "sort_keys": False}
        self._atomic_text(CONFIG, yaml.dump(config, **plain))
        self._atomic_text(OVERRIDES, yaml.dump(list(overrides), **plain))

    def read_config(self) -> dict[str, Any]:
        return self._read_yaml(CONFIG)

    def read_overrides(self) -> list[str]:
        return list(self._read_yaml(OVERRIDES) or []) if (self.path / OVERRIDES).exists() else []

    # ------------------------------------------------------------------ metrics
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one row (header on the first) and flush it to disk at once."""
        self._append_csv(METRICS, [row])

    def rewrite_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        """Replace metrics.csv by ``rows`` (a resumed run drops rows past its checkpoint)."""
        (self.path / METRICS).unlink(missing_ok=True)
        for row in rows:
            self.append_metrics(row)

    def read_metrics(self) -> list[dict[str, float]]:
        return self._read_csv(METRICS)

    # ------------------------------------------------------------------ weights
    def append_weights(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append one metrics row's per-layer weight statistics (long form) and flush."""
        if rows:
            self._append_csv(WEIGHTS, rows)

    def read_weights(self) -> list[dict[str, Any]]:
        return self._read_csv(WEIGHTS)

    def truncate_weights(self, last_epoch: int) -> None:
        """Drop weights.csv rows past ``last_epoch`` (a resumed run redoes those epochs)."""
        rows = [row for row in self.read_weights() if row["epoch"] <= last_epoch]
        (self.path / WEIGHTS).unlink(missing_ok=True)
        self.append_weights(rows)

    def _append_csv(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        """Append ``rows`` to a CSV file (its header first when new), fsynced: a crash loses at
        most the row being written."""
        target = self.path / name
        new = not target.exists()
        with writing(target), open_append(target) as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
            f.flush()
            os.fsync(f.fileno())

    def _read_csv(self, name: str) -> list[dict[str, Any]]:
        target = self.path / name
        if not target.exists():
            return []
        try:
            with target.open(newline="", encoding="utf-8") as f:
                rows = csv.DictReader(f)
                return [{k: _parse(v) for k, v in row.items() if k is not None} for row in rows]
        except UnicodeDecodeError as exc:  # a received folder's file that is not regbench's text
            raise DataError(
                f"cannot read {target}: byte {exc.start} is not UTF-8 text; it is damaged"
            ) from exc
        except (OSError, csv.Error) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise DataError(f"cannot read {target}: {why}") from exc

    # ------------------------------------------------------------------ summary
    def write_summary(self, summary: Summary) -> None:
        text = json.dumps(summary.to_json(), indent=2, default=str) + "\n"
        self._atomic_text(SUMMARY, text)

    def read_summary(self) -> Summary:
        """The run's summary; a UsageError when it is missing, unreadable or not a summary."""
        try:
            return Summary.from_json(json.loads((self.path / SUMMARY).read_text()))
        except (OSError, json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"cannot read {self.path / SUMMARY}: {exc}") from exc

    def summary_or_none(self) -> Summary | None:
        """The summary, or None where there is none yet or it cannot be read (a job folder
        killed before its summary was written)."""
        try:
            return self.read_summary()
        except UsageError:
            return None

    # ------------------------------------------------------------------ tensors
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self._atomic_torch(CHECKPOINT, state)

    def load_checkpoint(self) -> dict[str, Any] | None:
        return self._load_torch(CHECKPOINT) if (self.path / CHECKPOINT).exists() else None

    def save_model(self, state: dict[str, Any]) -> None:
        self._atomic_torch(MODEL, state)

    def load_model(self) -> dict[str, Any]:
        return self._load_torch(MODEL)

    # ------------------------------------------------------------------ helpers
    def _read_yaml(self, name: str) -> Any:
        return read_yaml(self.path / name)

    def _atomic_text(self, name: str, text: str) -> None:
        self._atomic(name, lambda f: f.write(text.encode()))

    def _atomic_torch(self, name: str, state: dict[str, Any]) -> None:
        import torch

        def write(f: Any) -> None:
            try:
                torch.save(state, f)
            except RuntimeError as exc:
                # A Ctrl-C (or SIGTERM) landing in the file write surfaces inside torch's zip
                # writer, which reports it as a RuntimeError: raise the interrupt it was, so the
                # run ends as interrupted (and resumable), not as failed.
                if isinstance(exc.__context__, KeyboardInterrupt):
                    raise exc.__context__ from None
                raise

        self._atomic(name, write)

    def _atomic(self, name: str, write: Callable[[Any], Any]) -> None:
        atomic_write(self.path / name, write)

    def _load_torch(self, name: str) -> dict[str, Any]:
        """A checkpoint or model file as a dict; a one-line DataError when it is empty,
        damaged or holds more than tensors and plain values (refused unread: weights_only)."""
        import pickle
        import warnings

        import torch

        target = self.path / name
        try:
            with warnings.catch_warnings():  # torch's pickle-protocol warnings: not the user's
                warnings.simplefilter("ignore")
                state = torch.load(target, map_location="cpu", weights_only=True)
        except OSError as exc:
            raise DataError(f"cannot read {target}: {exc.strerror or exc}") from exc
        except pickle.UnpicklingError as exc:
            # torch's text advises weights_only=False, i.e. running whatever the file holds:
            # never repeat that advice for a file from a run folder someone may have handed us.
            wanted = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if wanted is None:  # not a pickle torch understands at all: damaged
                raise DataError(f"cannot load {target}: {_damage(target)}") from exc
            raise DataError(
                f"cannot load {target}: it asks for {wanted[1]}, more than tensors and plain "
                f"values, so it was refused unread; it was not written by regbench"
            ) from exc
        except Exception as exc:  # any zip/format error: the file is damaged
            raise DataError(f"cannot load {target}: {_damage(target)}") from exc
        if not isinstance(state, dict):
            raise DataError(f"cannot load {target}: it holds a {type(state).__name__}, not a dict")
        return state


# ----------------------------------------------------------------------------- bounded YAML
# A run folder may come from anyone (a shared results folder, a download). Its YAML files are
# read with bounds: safe tags only, a size far above any real config (a few KB), and no aliases,
# with which a file of a few hundred bytes expands into billions of values downstream.
MAX_YAML_BYTES = 1 << 20


def read_yaml(path: Path) -> Any:
    """A run folder's YAML file (config.yaml, overrides.yaml), or a one-line UsageError naming
    it: unreadable, over MAX_YAML_BYTES, with an alias, an unsafe tag or a syntax error."""
    import yaml

    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            raise UsageError(
                f"cannot read {path}: it is larger than {MAX_YAML_BYTES >> 20} MiB, far more "
                f"than any config; refused"
            )
        return yaml.load(data, Loader=_bounded_loader())  # a SafeLoader subclass
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        raise UsageError(f"cannot read {path}: {first_line}") from exc


@functools.cache
def _bounded_loader() -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """safe_load's loader, refusing aliases (regbench never writes them)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"a YAML alias at line {mark.line + 1}, refused: regbench never writes "
                    f"aliases, and they can expand a small file into gigabytes"
                )
            return super().compose_node(parent, index)

    return BoundedLoader


@functools.cache
def _plain_dumper() -> type:
    import yaml

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return PlainDumper


def _no_runs_why(folder: Path) -> str:
    """Why a folder holds no run: nothing there, or only links (not followed under a path)."""
    links = sorted(p for p in folder.iterdir() if p.is_symlink()) if folder.is_dir() else []
    if links:
        return (
            f"links below a folder are not followed: give the folder they point into, or the "
            f"links themselves, e.g. {links[0]}"
        )
    return f"no folder with {CONFIG} and {SUMMARY}"


def atomic_write(target: Path, write: Callable[[Any], Any]) -> None:
    """Write to a temp file in ``target``'s folder, fsync, then rename over ``target``: a
    reader sees the old file or the new one, never half of one."""
    with writing(target):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            # mkstemp makes the file 0600, and the rename keeps that: give it the mode any new
            # file gets (0644 under umask 022), so shared results folders stay readable.
            os.fchmod(fd, 0o666 & ~current_umask())
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextmanager
def exclusive(lock: Path, busy: str) -> Iterator[None]:
    """Hold an flock on the file ``lock`` (created, then removed on the way out), or raise a
    UsageError saying ``busy`` when another process holds it. The kernel drops an flock with
    its process, so a killed holder leaves no stale lock, only a file the next holder reuses."""
    import fcntl

    with writing(lock):
        fd = _locked_fd(lock, busy)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still held: whoever opened it before retries
        fcntl.flock(fd, fcntl.LOCK_UN)  # explicitly: forked figure workers share the fd's lock
        os.close(fd)


def _locked_fd(lock: Path, busy: str) -> int:
    import fcntl

    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(lock, fd):
                return fd
        except BlockingIOError:
            os.close(fd)
            raise UsageError(busy) from None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder before us removed this file as we opened it: lock the new one


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def atomic_text(target: Path, text: str) -> None:
    """``atomic_write`` of a text file (UTF-8)."""
    atomic_write(target, lambda f: f.write(text.encode("utf-8")))


@contextmanager
def open_append(target: Path) -> Iterator[Any]:
    """``target`` opened to append text, created if need be, never through a link: a file
    appended row by row (metrics.csv) cannot be replaced at each row as ``atomic_write`` does,
    and a link planted under its name in a received folder would point the rows elsewhere."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(target, flags, 0o666)  # 0644 under umask 022, like any new file
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(
                f"cannot write {target}: it is a link; regbench writes no file through a link "
                f"(remove it)"
            ) from exc
        raise
    with os.fdopen(fd, "a", newline="", encoding="utf-8") as f:
        yield f


# A file read to be shown elsewhere (a report embeds a run's figures) is read only when it is a
# regular file in its folder, not a link to one anywhere, and only up to a bound.
MAX_EMBED_BYTES = 64 << 20


def read_regular(path: Path, limit: int = MAX_EMBED_BYTES) -> bytes | None:
    """The bytes of ``path`` when it is a regular file (not a link) of at most ``limit`` bytes,
    else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device: never read
            return None
        data = f.read(limit + 1)
    return data if len(data) <= limit else None


def current_umask() -> int:
    """The process's umask, left as it is. Linux shows it in /proc; elsewhere it can only be
    read by setting it, so it is set back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # the strictest value, for the instant it is in force
    os.umask(mask)
    return mask


@contextmanager
def writing(target: Path) -> Iterator[None]:
    """A write of ``target`` that fails (a full disk, a read-only or vanished folder) is one
    DataError naming the file and the cause, not a traceback from deep in torch or csv."""
    try:
        yield
    except OSError as exc:
        raise DataError(_write_failure(target, exc)) from exc
    except RuntimeError as exc:
        # torch's zip writer swallows the OSError of a failed write and reports only its own
        # state ("unexpected pos"); the OSError is still the exception's context.
        if isinstance(exc.__context__, OSError):
            raise DataError(_write_failure(target, exc.__context__)) from exc
        if "unexpected pos" in str(exc):
            raise DataError(
                f"cannot write {target}: the write stopped short (is the disk full?)"
            ) from exc
        raise


def _write_failure(target: Path, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on device: cannot write {target}; free some space and run again"
    return f"cannot write {target}: {exc.strerror or exc}"


def timestamp(at: float | None = None) -> str:
    """The time format of every summary and sweep record (local time with its offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at))


def _damage(path: Path) -> str:
    """What is wrong with a torch file that failed to load, in a few words."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (a crash or a full disk while it was written?)"
    return f"the file ({size} bytes) is truncated or corrupt; it is not a whole torch file"


def _csv_value(value: Any) -> Any:
    # repr of a float round-trips exactly, so two runs compare bitwise through the CSV.
    return repr(value) if isinstance(value, float) else value


def _parse(text: str | None) -> Any:
    if text is None:  # a short row of a damaged file: the value is missing
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number
