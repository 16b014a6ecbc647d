"""Config validation shared by every layer: :class:`ConfigError` and the strict dataclass merge.

A leaf module (it imports nothing from affectlab), so the datamodules, methods and models can raise
config errors and validate their own sections without importing :mod:`affectlab.config`, which
imports their registries to compose a run's config.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError


class ConfigError(ValueError):
    """A config that cannot be composed: unknown key, wrong type, unknown name or file."""


@contextmanager
def config_errors(section: str, hint: str = "") -> Iterator[None]:
    """Report a ``ValueError`` raised while building from ``section`` as the user's :class:`ConfigError`.

    Networks and helpers check their own arguments with ``ValueError``; a value they refuse came from
    the config, so it is the user's mistake and must end in one line naming the section, not a traceback.
    """
    try:
        yield
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{section}: {err}{hint}") from None


def _valid_keys(node: Any) -> list[str]:
    return sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []


def _scalar_over_section(schema: Any, update: Any, prefix: str = "") -> str | None:
    """The first key of ``update`` that gives a plain value where ``schema`` has a section of keys."""
    if not isinstance(update, (dict, DictConfig)) or not isinstance(schema, DictConfig):
        return None
    for key, value in update.items():
        if key not in schema:
            continue
        path = f"{prefix}{key}"
        sub = schema._get_node(key)  # noqa: SLF001 - the node, so a None-valued section still counts as one
        if isinstance(sub, DictConfig) and not isinstance(value, (dict, DictConfig)):
            return path
        found = _scalar_over_section(sub, value, f"{path}.")
        if found:
            return found
    return None


def _explain(err: OmegaConfBaseException, schema: DictConfig, source: str, update: Any = None) -> ConfigError:
    full_key = getattr(err, "full_key", None) or ""
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)):
        parts = full_key.split(".") if full_key else []
        parent = schema
        for part in parts[:-1]:
            if isinstance(parent, DictConfig) and part in parent:
                parent = parent[part]
        level = ".".join(parts[:-1]) or "top level"
        return ConfigError(
            f"{source}: unknown config key {full_key!r}. Valid keys at {level}: "
            f"{', '.join(_valid_keys(parent))}"
        )
    if isinstance(err, ValidationError):
        if not full_key:
            section = _scalar_over_section(schema, update)
            if section:
                keys = ", ".join(f"{section}.{k}" for k in _valid_keys(OmegaConf.select(schema, section)))
                return ConfigError(f"{source}: {section!r} is a section of keys, not a value; set one of its keys "
                                   f"({keys})")
        message = str(err.msg).splitlines()[0]
        if "is not a ListConfig" in message:
            message = "expected a list, e.g. [a, b]"
        return ConfigError(f"{source}: bad value for {full_key!r}: {message}")
    return ConfigError(f"{source}: {err}")


def merge_into(schema: DictConfig, update: Any, source: str) -> DictConfig:
    """Merge ``update`` into the struct-mode ``schema``, translating errors into ConfigError."""
    try:
        return OmegaConf.merge(schema, update)
    except OmegaConfBaseException as err:
        raise _explain(err, schema, source, update) from None


def validated(schema_cls: type, keys: dict[str, Any], where: str) -> DictConfig:
    """Check ``keys`` against the dataclass ``schema_cls`` and return the merged config."""
    schema = OmegaConf.create({where: OmegaConf.structured(schema_cls)})
    OmegaConf.set_struct(schema, True)
    return merge_into(schema, {where: keys}, f"{where} config")[where]
