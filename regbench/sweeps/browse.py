"""Readable names for a sweep's job folders: ``<sweep_dir>/by-settings/dropout=0.5,seed=3``, a
relative link to ``../<hash>-seed=3``, so that a person browsing the folder finds a job by its
settings while every command keeps to the hashed folders.

The names sit in their own folder rather than beside the job folders: ``ls <sweep_dir>`` stays
one entry per job (plus the sweep's own files), ``ls <sweep_dir>/by-settings`` lists only
settings, sorted, and scripts that loop over a sweep's folders (``for d in sweep/*/``) see each
job once. A name holds the keys that vary across the sweep's jobs (in the sweep's key order),
numbers in 4 significant digits; the seed when nothing else varies.

Nothing here writes through a link: the sweep folder's ``by-settings`` is opened without
following a link, links are made and read relative to that open folder, a name held by anything
but a link is left alone, and a link with the wrong target is replaced, never its target.
Making the links is a convenience: when the file system refuses, the sweep goes on (a Notice).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import re
import secrets
import stat
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from regbench.core.errors import Notice
from regbench.core.overrides import override_key, override_pairs

BROWSE_DIR = "by-settings"
MAX_NAME = 120  # bytes of UTF-8, well under every file system's 255
SUFFIX_CHARS = 8
# Characters a file name cannot hold (/) or that shells and other systems read as syntax or
# reject (\ : * ? " < > | '), whitespace, and % itself (the escape): each written as %XX.
UNSAFE = frozenset("/\\%:*?\"<>|'")
JOB_FOLDER = re.compile(r"[^/.][^/]*-seed=-?\d+")  # what a job folder's name can be (job_key)


# ----------------------------------------------------------------------------- names
def link_names(jobs: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each job folder's readable name, from the jobs' overrides (folder name -> overrides),
    unique among them even on a case-insensitive file system."""
    pairs = {key: [(override_key(k), v) for k, v in override_pairs(o)] for key, o in jobs.items()}
    varying = varying_keys(list(pairs.values()))
    names = {key: capped(readable(pairs[key], varying) or _seed_of(key), key) for key in jobs}
    names = _suffix_clashes(names)
    return _suffix_clashes(names, every=True)


def varying_keys(jobs: Sequence[Sequence[tuple[str, str]]]) -> list[str]:
    """The keys whose value differs between jobs (a key some jobs lack counts), in the order
    they first appear."""
    values: dict[str, set[str | None]] = {}
    for pairs in jobs:
        for key, value in pairs:
            values.setdefault(key, set()).add(value)
    for key, seen in values.items():
        if any(key not in dict(pairs) for pairs in jobs):
            seen.add(None)
    return [key for key, seen in values.items() if len(seen) > 1]


def readable(pairs: Sequence[tuple[str, str]], varying: Sequence[str]) -> str:
    """``dropout=0.5,seed=3``: the varying keys this job sets, escaped, numbers shortened."""
    given = dict(pairs)
    return ",".join(escape(f"{k}={shortened(given[k])}") for k in varying if k in given)


def shortened(value: str) -> str:
    """Every number in ``value`` (a scalar, or a list's items) in 4 significant digits, as
    ``:.4g`` writes it (0.0001, 1e-05, 0.1235); integers as given."""
    return re.sub(r"[^\[\](){},\s]+", _short_number, value)


def _short_number(match: re.Match[str]) -> str:
    token = match.group()
    try:
        number = float(token)
    except ValueError:
        return token
    if re.fullmatch(r"[+-]?\d+", token) or not math.isfinite(number):
        return token  # a seed or an epoch count stays exact; nan and inf as typed
    return f"{number:.4g}"


def escape(text: str) -> str:
    """``text`` as one safe file name: UNSAFE characters, whitespace and what a terminal does
    not show as ``%XX`` (a name never contains a path, nor starts with a dot: it starts with a
    key)."""
    return "".join(
        f"%{ord(c):02X}" if c in UNSAFE or c.isspace() or not c.isprintable() else c for c in text
    )


def capped(name: str, key: str) -> str:
    """``name`` when it fits MAX_NAME bytes, else cut to fit with the job's suffix."""
    return name if len(name.encode()) <= MAX_NAME else suffixed(name, key)


def suffixed(name: str, key: str) -> str:
    """``name~<short hash of the job folder's name>``, cut so that it fits MAX_NAME bytes
    (never inside a %XX escape): two jobs whose names coincide stay apart."""
    suffix = "~" + hashlib.sha256(key.encode()).hexdigest()[:SUFFIX_CHARS]
    while len((name + suffix).encode()) > MAX_NAME:
        name = name[:-1]
    return re.sub(r"%[0-9A-F]?$", "", name) + suffix


def _suffix_clashes(names: dict[str, str], every: bool = False) -> dict[str, str]:
    """Names that clash (case aside) get their job's suffix; with ``every``, any clash still
    left (a hash of 8 hex digits shared: never in practice) becomes the folder's own name."""
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name.casefold()] = seen.get(name.casefold(), 0) + 1
    clash = {key for key, name in names.items() if seen[name.casefold()] > 1}
    if every:
        return {key: key if key in clash else name for key, name in names.items()}
    return {key: suffixed(name, key) if key in clash else name for key, name in names.items()}


def _seed_of(key: str) -> str:
    """``seed=3`` from ``<hash>-seed=3``: a job's name when no key varies (a one-job sweep)."""
    return escape(key.rsplit("-", 1)[-1])


# ----------------------------------------------------------------------------- links
def write_links(sweep_dir: Path, jobs: Mapping[str, Any]) -> None:
    """A link in ``sweep_dir/by-settings`` for each job folder of the record's ``jobs`` that is
    there (a real folder, not a link); links it made for names no longer given are removed."""
    folders = {
        key: entry.get("overrides", [])
        for key, entry in jobs.items()
        if isinstance(entry, Mapping) and _is_job_folder(sweep_dir, key)
    }
    if not folders:
        return
    names = link_names(folders)
    try:
        with _browse_dir(sweep_dir) as fd:
            if fd is None:
                return
            for key, name in names.items():
                _place(fd, name, f"../{key}", sweep_dir)
            _remove_stale(fd, set(names.values()))
    except OSError as exc:  # no links on this file system, a read-only folder: no names
        note = f"no readable names in {sweep_dir / BROWSE_DIR}: {exc.strerror or exc}"
        warnings.warn(Notice(note), stacklevel=2)


def _is_job_folder(sweep_dir: Path, key: Any) -> bool:
    """``key`` is a job folder's name and a folder right inside ``sweep_dir`` (sweep.json may
    come from anyone: a key with a / or .. would make a link that points out of the sweep)."""
    if not isinstance(key, str) or not JOB_FOLDER.fullmatch(key):
        return False
    try:
        return stat.S_ISDIR(os.lstat(sweep_dir / key).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def _browse_dir(sweep_dir: Path) -> Iterator[int | None]:
    """``by-settings``, made when missing and opened without following a link; None (with a
    Notice) when the name is taken by something else, which is left as it is."""
    parent = os.open(sweep_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(BROWSE_DIR, dir_fd=parent)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(BROWSE_DIR, flags, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            note = f"{sweep_dir / BROWSE_DIR} is not a folder (a link or a file): no readable names"
            warnings.warn(Notice(note), stacklevel=4)
            yield None
            return
    finally:
        os.close(parent)
    try:
        yield fd
    finally:
        os.close(fd)


def _place(fd: int, name: str, target: str, sweep_dir: Path) -> None:
    """The link ``name -> target`` in the folder ``fd``: made when missing, left when right,
    replaced (the link itself) when it points elsewhere; anything else under the name is left."""
    current = _target(fd, name)
    if current is None:
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            os.symlink(target, name, dir_fd=fd)
            return
        current = _target(fd, name)
    if current is None or current == target:
        return
    if current == "":
        note = f"{sweep_dir / BROWSE_DIR / name} is not a link regbench made: left as it is"
        warnings.warn(Notice(note), stacklevel=4)
        return
    # A new link under a temporary name, renamed over the old link: one step, no moment without.
    temporary = f".{name}.{secrets.token_hex(4)}"
    os.symlink(target, temporary, dir_fd=fd)
    try:
        os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError:
        os.unlink(temporary, dir_fd=fd)
        raise


def _target(fd: int, name: str) -> str | None:
    """Where the link ``name`` points; None when nothing has the name, "" when a file or a
    folder has it (a link never points nowhere)."""
    try:
        return os.readlink(name, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return ""


def _remove_stale(fd: int, wanted: set[str]) -> None:
    """Links of regbench's shape (``../<folder>``) under names no longer given (the grid grew,
    so another key varies), and temporary ones a killed sweep left; never anything else."""
    for entry in os.scandir(fd):
        if entry.name in wanted or not entry.is_symlink():
            continue
        with contextlib.suppress(FileNotFoundError):  # removed by another process of the sweep
            target = os.readlink(entry.name, dir_fd=fd)
            if target.startswith("../") and "/" not in target[3:]:
                os.unlink(entry.name, dir_fd=fd)
