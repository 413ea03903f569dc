"""Finding score models: a pluggy PluginManager fed only by the ``chggen`` entry-point group.

The core never imports an adapter. Whatever is pip-installed and declares an entry point in the group
is loaded here, exactly as pytest finds its plugins.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from functools import lru_cache

import pluggy

from . import hookspecs
from .errors import ChggenError
from .hookspecs import ModelSpec
from .protocol import NoiseProcess, ScoreModel


@dataclass(frozen=True)
class InstalledModel:
    spec: ModelSpec
    origin: str  # "distribution version (module)" of the plugin that registered it


def _check_entry_point_names() -> None:
    """pluggy loads the first of two entry points with one name and silently drops the other."""
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        for entry in dist.entry_points:
            if entry.group != hookspecs.PROJECT:
                continue
            owner = f"{dist.metadata['name']} {dist.version}"
            if entry.name in seen and seen[entry.name] != owner:
                raise ChggenError(f"plugin name {entry.name!r} is declared by both {seen[entry.name]} "
                                  f"and {owner}; uninstall one")
            seen[entry.name] = owner


@dataclass
class Plugins:
    """The plugin manager, where each plugin came from, and the plugins that failed to import (one
    broken adapter must not take `chggen` down with it: it is reported by name and skipped)."""

    manager: pluggy.PluginManager
    origins: dict[int, str] = field(default_factory=dict)  # id(plugin module) -> "dist version (module)"
    broken: dict[str, str] = field(default_factory=dict)   # entry-point name -> "dist version: error"


@lru_cache(maxsize=1)
def plugins() -> Plugins:
    _check_entry_point_names()
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    found = Plugins(manager)
    for dist in importlib.metadata.distributions():
        owner = f"{dist.metadata['name']} {dist.version}"
        for entry in dist.entry_points:
            if entry.group != hookspecs.PROJECT or manager.has_plugin(entry.name) or entry.name in found.broken:
                continue
            try:
                plugin = entry.load()
            except Exception as error:  # an adapter that fails to import, whatever the reason
                found.broken[entry.name] = f"{owner}: {type(error).__name__}: {error}"
                continue
            manager.register(plugin, name=entry.name)
            found.origins[id(plugin)] = f"{owner} ({plugin.__name__})"
    return found


def plugin_manager() -> pluggy.PluginManager:
    return plugins().manager


def installed_models(manager: pluggy.PluginManager | None = None) -> dict[str, InstalledModel]:
    """Every model offered by a plugin, by name; two plugins claiming one name is an error."""
    manager = manager or plugin_manager()
    origins = plugins().origins
    models: dict[str, InstalledModel] = {}
    for impl in manager.hook.chggen_score_models.get_hookimpls():
        origin = origins.get(id(impl.plugin), impl.plugin_name)
        for spec in impl.function():
            if spec.name in models:
                raise ChggenError(f"model name {spec.name!r} is registered twice: by "
                                  f"{models[spec.name].origin} and by {origin}; uninstall one")
            models[spec.name] = InstalledModel(spec, origin)
    return models


def load_model(name: str, source: str | None = None, device: str = "cpu",
               manager: pluggy.PluginManager | None = None) -> ScoreModel:
    """Build the named model; an unknown name lists what is installed."""
    models = installed_models(manager)
    if name not in models:
        known = ", ".join(sorted(models)) or "none (install an adapter, e.g. adapters/native)"
        broken = plugins().broken
        why = f"; plugin {name!r} failed to load: {broken[name]}" if name in broken else ""
        raise ChggenError(f"unknown model {name!r}; installed models: {known}{why}")
    spec = models[name].spec
    if spec.needs_source and source is None:
        raise ChggenError(f"model {name!r} needs --model-source (a checkpoint or file): {spec.summary}")
    model = spec.load(source)
    if not isinstance(model, ScoreModel) or not isinstance(model.noise_process, NoiseProcess):
        raise ChggenError(f"plugin {models[name].origin} returned {type(model).__name__} for {name!r}, "
                          "which does not implement chggen_plugins.protocol.ScoreModel")
    return model.to(device)
