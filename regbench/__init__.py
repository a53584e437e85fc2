"""regbench: train and compare the classic neural-network regularization studies.

The Python API (``run``, ``sweep``, ``compare``, ``load_runs``) lives in regbench.api and is
re-exported here lazily, so importing regbench (as ``regbench --help`` does) does not import
torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
API = ("run", "sweep", "compare", "load_runs")
__all__ = ["ConfigError", "RegbenchError", "UsageError", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from regbench import api

        return getattr(api, name)
    if name == "ConfigError":
        from regbench.core.config import ConfigError

        return ConfigError
    if name in ("RegbenchError", "UsageError"):
        from regbench.core import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'regbench' has no attribute {name!r}")
