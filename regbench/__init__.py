"""regbench: train and compare the classic neural-network regularization studies.

The Python API (``run``, ``sweep``, ``compare``, ``load_runs``) lives in regbench.api and is
re-exported here lazily, so importing regbench (as ``regbench --help`` does) does not import
torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__version__ = "0.1.0"
API = ("run", "sweep", "compare", "load_runs")
__all__ = ["ConfigError", "RegbenchError", "UsageError", *API]


class SweepModule(ModuleType):
    """The class of the module regbench.sweep. ``regbench.sweep`` names that module (launchers,
    sweep.json, job folders) and is also the API's ``regbench.sweep(overrides, ...)``: calling
    the module runs regbench.api.sweep, whatever imported the module first."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from regbench import api

        return api.sweep(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "sweep":  # the module, callable (SweepModule); importing it binds it here
        return importlib.import_module("regbench.sweep")
    if name in API:
        from regbench import api

        return getattr(api, name)
    if name == "ConfigError":
        from regbench.config import ConfigError

        return ConfigError
    if name in ("RegbenchError", "UsageError"):
        from regbench import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'regbench' has no attribute {name!r}")
