"""Growing a sweep made before some keys existed: its new jobs take those keys' legacy values.

A key added to regbench declares the value a folder made before it is read with (its legacy
value, regbench/core/config.py). A sweep folder whose jobs all predate a key is grown with that
value, unless the command sets the key: the new seeds then replicate the old jobs (same data,
same protocol, same folder names) instead of starting a second, different grid in the same
folder. The notice says which keys, and how to get the current defaults (a new --dir).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regbench.core.config import flatten, in_given_block
from regbench.core.errors import UsageError
from regbench.core.jobs import SWEEP_FILE, Job
from regbench.core.overrides import override_key, override_value
from regbench.core.rundir import CONFIG, read_yaml


def legacy_overrides(sweep_dir: Path, jobs: Sequence[Job], overrides: Sequence[str]) -> list[str]:
    """``key=legacy`` overrides for every key the planned ``jobs`` have, that the command does
    not set, and that no job already in ``sweep_dir`` has (none for a new folder)."""
    existing = existing_configs(sweep_dir)
    if not existing:
        return []
    given = [override_key(o) for o in overrides]
    declared = {}
    for job in jobs:
        declared.update(job.settings.declared())
    out: list[str] = []
    for key, declaration in declared.items():
        # Bookkeeping (where results go, the experiment's question) changes nothing a job
        # computes: an old experiment sweep grown today asks today's question of all its runs.
        if not declaration.has_legacy or declaration.role == "bookkeeping" or _set_by(key, given):
            continue
        if all(_lacks(config, key) for config in existing):
            out += as_overrides(key, declaration.legacy)
    return out


def existing_configs(sweep_dir: Path) -> list[dict[str, Any]]:
    """The flattened config.yaml of each job folder the sweep's record lists (bounded reads;
    folders that cannot be read are left to the sweep's own checks)."""
    try:
        record = json.loads((sweep_dir / SWEEP_FILE).read_text(encoding="utf-8"))
        keys = list(record["jobs"]) if isinstance(record.get("jobs"), dict) else []
    except (OSError, ValueError, AttributeError, KeyError):
        return []
    configs = []
    for key in keys:
        path = sweep_dir / str(key) / CONFIG
        try:
            loaded = read_yaml(path) if path.is_file() and not path.is_symlink() else None
        except UsageError:
            continue
        if isinstance(loaded, Mapping):
            configs.append(flatten(loaded))
    return configs


def as_overrides(key: str, value: Any) -> list[str]:
    """Hydra overrides that set ``key`` to ``value`` (a mapping: one per leaf)."""
    if isinstance(value, Mapping):
        return [o for k, v in value.items() for o in as_overrides(f"{key}.{k}", v)]
    return [f"{key}={override_value(value)}"]


def _set_by(key: str, given: Sequence[str]) -> bool:
    return any(g == key or g.startswith(key + ".") or key.startswith(g + ".") for g in given)


def _lacks(config: Mapping[str, Any], key: str) -> bool:
    if in_given_block(key, config):  # experiment: null lacks no experiment.* key
        return False
    return key not in config and not any(k.startswith(key + ".") for k in config)


def describe(overrides: Sequence[str]) -> str:
    """The notice a grown legacy sweep prints."""
    keys = ", ".join(sorted({o.split("=")[0] for o in overrides}))
    return (
        f"this sweep's jobs were made before {keys} existed: its new jobs keep their legacy "
        f"values ({' '.join(overrides)}), so that they replicate the jobs already there; sweep "
        f"into a new --dir for the current defaults"
    )
