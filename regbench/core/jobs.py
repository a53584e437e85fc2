"""A job: one run to make, as sweeps plan it and launchers carry it out; and, read back from a
sweep folder, what a job folder is to its sweep (what trackers name and group its run by)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.core.config import Settings, top_level
from regbench.core.errors import RegbenchError
from regbench.core.overrides import override_pairs

SWEEP_FILE = "sweep.json"  # the sweep's record, beside its job folders (regbench/sweeps/plan.py)
# Keys that change no number in the run folder (bookkeeping: where a run writes and logs, the
# experiment's question), so adding a logger to a finished sweep reruns nothing; and the seed,
# which is in the job key on its own. Derived from the declarations (regbench/core/config.py).
UNKEYED = top_level(lambda declared: not declared.keyed)
# Before logger and mlflow_uri left the key (regbench 0.x sweeps), folders were named with them.
LEGACY_UNKEYED = ("seed", "out_dir", "name", "experiment", "plots")  # the last two: added since
HASH_CHARS = 10


def config_hash(config: Settings | Mapping[str, Any], unkeyed: Sequence[str] = UNKEYED) -> str:
    """Short, stable hash of settings without UNKEYED keys and keys at their legacy values
    (a resolved config mapping, e.g. a config.yaml, is hashed as it is)."""
    if isinstance(config, Settings):
        config = config.without_legacy()
    keyed = {k: v for k, v in config.items() if k not in unkeyed}
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def job_key(config: Settings | Mapping[str, Any], unkeyed: Sequence[str] = UNKEYED) -> str:
    """The job's folder name: ``<config hash>-seed=<seed>``."""
    seed = config.seed if isinstance(config, Settings) else config["seed"]
    return f"{config_hash(config, unkeyed)}-seed={seed}"


@dataclass(frozen=True)
class Job:
    """Validated settings, the overrides that produced them, and where the run goes: exactly
    ``folder`` (a sweep's job folder, named by ``key``), or a new folder under out_dir."""

    settings: Settings
    overrides: tuple[str, ...] = ()
    folder: Path | None = None
    key: str = ""
    label: str = ""

    def planned_folder(self) -> Path:
        """``folder``, which every job of a sweep or search is given when it is planned."""
        if self.folder is None:
            raise RegbenchError(f"sweep job {self.label or self.key} has no folder")  # a bug
        return self.folder


@dataclass(frozen=True)
class SweepMember:
    """A job folder as its sweep's record lists it. Read from disk, so it is the same in every
    process a launcher runs jobs in."""

    sweep_dir: Path  # resolved
    key: str  # the folder's name: <config hash>-seed=<N>
    label: str  # the overrides that vary across the grid, e.g. "dropout=0.5 seed=3"
    overrides: tuple[str, ...]  # all of the job's overrides
    swept: tuple[str, ...]  # the keys the grid varies
    order: tuple[str, ...]  # the keys of the jobs the sweep's latest invocation runs

    def varying(self) -> list[tuple[str, str]]:
        """The (key, value) overrides its label stands for (all of them for a one-job sweep)."""
        pairs = override_pairs(self.overrides)
        if not self.swept:
            return pairs
        return [(k, v) for k, v in pairs if k in self.swept]


def sweep_member(folder: Path) -> SweepMember | None:
    """The sweep ``folder`` is a job of, from the sweep.json beside it; None for a folder no
    sweep lists (a solo run), or whose sweep record cannot be read."""
    folder = folder.resolve()  # a readable name (by-settings/...) stands for its job folder
    sweep_dir = folder.parent
    try:
        record: dict[str, Any] = json.loads((sweep_dir / SWEEP_FILE).read_text())
        entry = record["jobs"][folder.name]
        return SweepMember(
            sweep_dir=sweep_dir,
            key=folder.name,
            label=str(entry.get("label") or folder.name),
            overrides=tuple(entry.get("overrides", ())),
            swept=tuple(record.get("grid", {})),
            order=tuple(record.get("current", {}).get("order", ())),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
