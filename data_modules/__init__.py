"""Datamodules for BP4D, DISFA, DFEW, FERV39k and unlabeled face videos.

``create_datamodule(name, **keys)`` takes the same keys as ``experiments/data/<name>.yaml``.
Every module of this package is imported so its ``@DATAMODULES.register`` runs.
"""
from __future__ import annotations

from typing import Any

from affectlab.registry import import_submodules
from data_modules.base import DATAMODULES, DataConfig, build_config


def create_datamodule(name: str | Any, **keys: Any) -> Any:
    """Build a registered LightningDataModule from a name (or a ``cfg.data`` section) and keys."""
    if not isinstance(name, str):  # a DictConfig / dict section holding ``name``
        section = dict(name)
        section.update(keys)
        name, keys = section.pop("name"), section
    cls = DATAMODULES.get(name)
    return cls(build_config(cls, {**keys, "name": name}))


import_submodules(__name__)

__all__ = ["DATAMODULES", "DataConfig", "create_datamodule"]
