"""The one component registry.

Built-in components register with :func:`register` in their own modules,
which are listed in ``_BUILTIN_MODULES``; third-party packages add theirs
through the ``srestream.components`` entry-point group (each entry point
names a module to import, which registers its components on import).
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Any, TypeVar

import msgspec

from ._component import SinkConfig, SourceConfig, StageConfig, _Component
from ._duration import Duration
from ._errors import ConfigError, Problem

__all__ = ["ENTRY_POINT_GROUP", "ComponentInfo", "components", "lookup", "register"]

ENTRY_POINT_GROUP = "srestream.components"

# One line per module that registers built-in components.
_BUILTIN_MODULES: tuple[str, ...] = (
    "srestream._lift",
    "srestream.testing",
    "srestream.io._files",
    "srestream.io._std",
    "srestream.io._directory",
    "srestream.io._tail",
    "srestream.io._otlp",
    "srestream.io._prometheus",
    "srestream.io._http",
    "srestream.parse._json",
    "srestream.parse._components",
    "srestream.slo._components",
    "srestream.correlate._components",
    "srestream.patterns._components",
    "srestream.sim._components",
)


import builtins


class ComponentInfo(msgspec.Struct, frozen=True):
    type: str
    kind: str
    summary: str
    config: builtins.type[_Component]
    module: str

    def options(self) -> list[tuple[str, str, str]]:
        """(name, type, default) of each option, ``inputs`` excluded."""
        out = []
        for f in msgspec.structs.fields(self.config):
            if f.name == "inputs":
                continue
            if isinstance(f.default, Duration):
                default = repr(str(f.default))
            elif f.default is not msgspec.NODEFAULT:
                default = repr(f.default)
            elif f.default_factory is not msgspec.NODEFAULT:
                default = repr(f.default_factory())
            else:
                default = "required"
            out.append((f.encode_name, _type_name(f.type), default))
        return out


def _type_name(t: Any) -> str:
    if getattr(t, "__metadata__", None) is not None:  # Annotated[int, Meta(ge=1)] -> int
        t = t.__origin__
    name = getattr(t, "__name__", None)
    if name and not getattr(t, "__args__", None):
        return str(name)
    text = str(t).replace("typing.", "").replace("NoneType", "None")
    return re.sub(r"\b(?:[a-z_]+\.)+([A-Z]\w*)", r"\1", text)  # module paths off


_REGISTRY: dict[str, ComponentInfo] = {}
_LOADED = False

C = TypeVar("C", bound=type[_Component])


def register(summary: str) -> Any:
    """Class decorator: register a component config under its ``type`` tag
    with a one-line ``summary``."""

    def deco(cls: C) -> C:
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str):
            raise TypeError(f"{cls.__name__} needs tag='type_name' in its class definition")
        if issubclass(cls, SourceConfig):
            kind = "source"
        elif issubclass(cls, StageConfig):
            kind = "stage"
        elif issubclass(cls, SinkConfig):
            kind = "sink"
        else:
            raise TypeError(f"{cls.__name__} must subclass SourceConfig, StageConfig or SinkConfig")
        old = _REGISTRY.get(tag)
        if old is not None and old.config is not cls:
            raise TypeError(f"component type {tag!r} registered twice ({old.module}, {cls.__module__})")
        _REGISTRY[tag] = ComponentInfo(
            type=tag, kind=kind, summary=summary, config=cls, module=cls.__module__
        )
        return cls

    return deco


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    problems = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # translated at the boundary: a broken plugin is a config problem
            problems.append(
                Problem(path=f"entry point {ep.name!r}", message=f"cannot load {ep.value}: {exc}")
            )
    if problems:
        raise ConfigError(problems)


def components() -> dict[str, ComponentInfo]:
    """Every registered component, by type."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def lookup(type_name: str) -> ComponentInfo | None:
    _load()
    return _REGISTRY.get(type_name)
