"""Public import path for plug-in studies: the config bases and ``bounds``
(regbench.core.config)."""

from regbench.core.config import ConfigError, SourceConfig, StudyConfig, bounds

__all__ = ["ConfigError", "SourceConfig", "StudyConfig", "bounds"]
