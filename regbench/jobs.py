"""A job: one run to make, as sweeps plan it and launchers carry it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from regbench.config import Settings


@dataclass(frozen=True)
class Job:
    """Validated settings, the overrides that produced them, and where the run goes: exactly
    ``folder`` (a sweep's job folder, named by ``key``), or a new folder under out_dir."""

    settings: Settings
    overrides: tuple[str, ...] = ()
    folder: Path | None = None
    key: str = ""
    label: str = ""
