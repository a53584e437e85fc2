"""A registry of names -> (entry, config schema), filled by decorators in the entries' modules.

Studies (regbench/studies/) and data sources (regbench/data/) each keep one. The built-in entries
are the modules of the registry's package: they are imported on the first lookup, not when the
registry is imported, so that ``regbench --help`` does not pay for torch. Entries defined
elsewhere (e.g. in a test module) register when their module is imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names the entries in messages; ``package`` holds the built-in modules; every
    config schema is a frozen dataclass deriving from ``base``."""

    def __init__(self, kind: str, package: str, base: type) -> None:
        self.kind, self.package, self.base = kind, package, base
        self._entries: dict[str, tuple[T, type]] = {}
        self._loaded = False

    def add(self, name: str, entry: T, config: type) -> None:
        """Register ``entry`` as ``name`` with its config schema. Registering the same object
        again (or a module's re-import of it) replaces it; another object under a taken name is
        a programming error."""
        if not (dataclasses.is_dataclass(config) and issubclass(config, self.base)):
            raise TypeError(
                f"{self.kind} '{name}': config must be a {self.base.__name__} dataclass"
            )
        old = self._entries.get(name)
        if old is not None and _qualified(old[0]) != _qualified(entry):
            raise ValueError(f"{self.kind} '{name}' is already registered by {_qualified(old[0])}")
        self._entries[name] = (entry, config)

    def remove(self, name: str) -> None:
        """Forget ``name`` (for entries registered for a while, e.g. by a test)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        self._load_built_ins()
        return sorted(self._entries)

    def entry(self, name: str) -> T:
        self._load_built_ins()
        return self._entries[name][0]

    def config(self, name: str) -> type:
        self._load_built_ins()
        return self._entries[name][1]

    def _load_built_ins(self) -> None:
        if self._loaded:
            return
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")
        self._loaded = True


def _qualified(entry: object) -> str:
    return f"{getattr(entry, '__module__', '?')}.{getattr(entry, '__qualname__', repr(entry))}"
