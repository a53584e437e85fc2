"""regbench's installed version (recorded in every summary)."""

from __future__ import annotations


def regbench_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regbench")
    except PackageNotFoundError:
        return "unknown"
