"""`rerun --check`: did a rerun reproduce the original's numbers, and under the same conditions?

On CPU with deterministic algorithms the numbers must be bitwise identical. On CUDA, kernels may
reorder floating-point sums between runs, so a small relative tolerance applies (and is printed).
The same tolerance applies to a run trained by the stacked launcher (regbench/stacked.py): it is
rerun alone, and a stacked layer's batched matrix products round differently from one member's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regbench.core.rundir import Summary

# Columns that measure the machine, not the maths.
TIMING_COLUMNS = frozenset({"seconds"})
CUDA_RTOL, CUDA_ATOL = 1e-4, 1e-6
# Summary facts that can change a run's numbers; a difference is worth a warning.
ENVIRONMENT_KEYS = ("torch", "threads", "deterministic", "cuda", "gpu")


def check_rule(original: Summary, rerun: Summary) -> tuple[bool, str]:
    """(bitwise?, the rule in words) for comparing a rerun with its original, by summaries."""
    tolerance = f"|diff| <= {CUDA_RTOL:g} relative or {CUDA_ATOL:g} absolute"
    if original.stacked:
        return False, f"{tolerance} (a stacked run rerun alone: batched products round differently)"
    if rerun.device == "cpu":
        return True, "bitwise identical (CPU)"
    return False, f"{tolerance} (CUDA)"


@dataclass(frozen=True)
class ColumnCheck:
    column: str
    identical: bool
    max_abs_diff: float
    within_tolerance: bool

    @property
    def ok(self) -> bool:
        return self.within_tolerance


def compare_metrics(
    original: Sequence[dict[str, Any]], rerun: Sequence[dict[str, Any]], exact: bool
) -> list[ColumnCheck]:
    """One check per metric column; ``exact`` demands bitwise equality (CPU)."""
    columns = [c for c in (original[0] if original else {}) if c not in TIMING_COLUMNS]
    if len(original) != len(rerun) or (rerun and set(columns) - set(rerun[0])):
        return [ColumnCheck("rows", False, math.inf, False)]
    return [_check_column(c, original, rerun, exact) for c in columns]


def _check_column(
    column: str, original: Sequence[dict[str, Any]], rerun: Sequence[dict[str, Any]], exact: bool
) -> ColumnCheck:
    pairs = [(a[column], b[column]) for a, b in zip(original, rerun, strict=True)]
    identical = all(_same(a, b) for a, b in pairs)
    diff = max((_diff(a, b) for a, b in pairs), default=0.0)
    close = all(_same(a, b) or _close(a, b) for a, b in pairs)
    return ColumnCheck(column, identical, diff, identical if exact else close)


def _same(a: Any, b: Any) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan


def _diff(a: Any, b: Any) -> float:
    try:
        return 0.0 if _same(a, b) else abs(float(a) - float(b))
    except (TypeError, ValueError):
        return math.inf


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=CUDA_RTOL, abs_tol=CUDA_ATOL)
    except (TypeError, ValueError):
        return False


def environment_differences(original: Summary, rerun: Summary) -> list[str]:
    """Human-readable differences in device, data and environment between two summaries."""
    notes = []
    if original.device != rerun.device:
        notes.append(f"device: {original.device} -> {rerun.device}")
    old_data, new_data = original.data or {}, rerun.data or {}
    if (old_data.get("name"), old_data.get("source")) != (
        new_data.get("name"),
        new_data.get("source"),
    ):
        notes.append(f"data: {old_data.get('source')} -> {new_data.get('source')}")
    old_env, new_env = original.environment or {}, rerun.environment or {}
    for key in ENVIRONMENT_KEYS:
        if old_env.get(key) != new_env.get(key):
            notes.append(f"{key}: {old_env.get(key)} -> {new_env.get(key)}")
    return notes
