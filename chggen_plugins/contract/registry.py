"""Finding score models and relaxers: a pluggy PluginManager fed only by the ``chggen`` entry-point group.

The core never imports an adapter. Whatever is pip-installed and declares an entry point in the group
is loaded here, exactly as pytest finds its plugins.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pluggy

from chggen_plugins.contract import hookspecs
from chggen_plugins.contract.devices import check_device
from chggen_plugins.contract.hookspecs import ModelSpec, RelaxerSpec
from chggen_plugins.errors import ChggenError

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

    from chggen_plugins.contract.protocol import ScoreModel

DEFAULT_RELAXER = "chgnet"  # the core's own (chggen_plugins/evaluation/chgnet_relaxer.py)


@dataclass(frozen=True)
class InstalledModel:
    spec: ModelSpec
    origin: str  # "distribution version (module)" of the plugin that registered it


def _entry_point_clashes() -> dict[str, str]:
    """Entry-point names two distributions declare, with why: pluggy would load the first and
    silently drop the other, so neither is loaded (the rest of chggen is unaffected)."""
    seen: dict[str, str] = {}
    clashes: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        for entry in dist.entry_points:
            if entry.group != hookspecs.PROJECT:
                continue
            owner = f"{dist.metadata['name']} {dist.version}"
            if entry.name in seen and seen[entry.name] != owner:
                clashes[entry.name] = (f"plugin name {entry.name!r} is declared by both {seen[entry.name]} "
                                       f"and {owner}; uninstall one")
            seen[entry.name] = owner
    return clashes


@dataclass
class Plugins:
    """The plugin manager, where each plugin came from, and the plugins that failed to import or
    clash (one broken adapter must not take `chggen` down with it: it is reported by name and skipped)."""

    manager: pluggy.PluginManager
    origins: dict[int, str] = field(default_factory=dict)  # id(plugin module) -> "dist version (module)"
    broken: dict[str, str] = field(default_factory=dict)   # entry-point name -> "dist version: error"


@lru_cache(maxsize=1)
def plugins() -> Plugins:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    found = Plugins(manager, broken=_entry_point_clashes())
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
            problem = _hook_problem(manager, plugin)
            if problem:
                manager.unregister(plugin)
                found.broken[entry.name] = f"{owner}: {problem}"
                continue
            found.origins[id(plugin)] = f"{owner} ({plugin.__name__})"
    return found


def _hook_problem(manager: pluggy.PluginManager, plugin: object) -> str | None:
    """Why a registered plugin would contribute nothing, or None: a hook whose name is not one of
    hookspecs.py (a typo) or no marked hook at all. pluggy accepts both silently, and the user then
    saw only "unknown model"."""
    names = [caller.name for caller in manager.get_hookcallers(plugin) or []]
    known = [name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_")]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            return (f"hook {name!r} is not a chggen hook" + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; the hooks are {', '.join(known)}")
    if not names:
        return (f"{getattr(plugin, '__name__', plugin)} registers no hook: mark its functions with "
                f"@chggen_plugins.hookimpl and name them as a hook ({', '.join(known)})")
    return None


def plugin_manager() -> pluggy.PluginManager:
    return plugins().manager


@dataclass(frozen=True)
class InstalledRelaxer:
    spec: RelaxerSpec
    origin: str  # "distribution version (module)" of the plugin that registered it


@dataclass(frozen=True)
class LoadedRelaxer:
    """A relaxer ready to use: its ASE calculator and the name and version every row records.

    Built by `load_relaxer`, or by hand around any ASE calculator (EMT, a DFT code, a potential no
    plugin registers): `LoadedRelaxer("emt", f"ase {ase.__version__}", EMT())`.
    """

    name: str
    version: str
    calculator: Calculator


def _offered(hook: str, wrap: type, manager: pluggy.PluginManager | None) -> dict[str, list[Any]]:
    """Every registration of `hook` (chggen_score_models, chggen_relaxers) by every plugin, by name
    (a name may come more than once), each as `wrap(spec, origin)`."""
    manager = manager or plugin_manager()
    origins = plugins().origins
    offered: dict[str, list[Any]] = {}
    for impl in getattr(manager.hook, hook).get_hookimpls():
        origin = origins.get(id(impl.plugin), impl.plugin_name)
        for spec in impl.function():
            offered.setdefault(spec.name, []).append(wrap(spec, origin))
    return offered


def installed_models(manager: pluggy.PluginManager | None = None) -> dict[str, InstalledModel]:
    """Every model offered by exactly one plugin, by name (see `clashing_models` for the others).

    Args:
        manager: a plugin manager to ask (tests); None: the one fed by the `chggen` entry points.

    Returns:
        {name: InstalledModel}: each model's ModelSpec and the plugin that registered it.

    Example:
        ```python
        import chggen_plugins as cg
        sorted(cg.installed_models())   # -> ['analytic', 'analytic-fractional', 'diffcsp', 'mattergen', 'native']
        ```
    """
    offered = _offered("chggen_score_models", InstalledModel, manager)
    return {name: found[0] for name, found in offered.items() if len(found) == 1}


def clashing_models(manager: pluggy.PluginManager | None = None) -> dict[str, list[InstalledModel]]:
    """Model names several plugins register: listed by `chggen models`, refused by `load_model`;
    one clash leaves every other model usable."""
    return {name: found for name, found in _offered("chggen_score_models", InstalledModel, manager).items()
            if len(found) > 1}


def installed_relaxers(manager: pluggy.PluginManager | None = None) -> dict[str, InstalledRelaxer]:
    """Every relaxer offered by exactly one plugin, by name (a name two plugins register is refused
    by `relaxer_spec`)."""
    offered = _offered("chggen_relaxers", InstalledRelaxer, manager)
    return {name: found[0] for name, found in offered.items() if len(found) == 1}


def relaxer_spec(name: str, manager: pluggy.PluginManager | None = None) -> RelaxerSpec:
    """The registration of relaxer `name`, checked before any weights load (its `version()` is cheap).

    Args:
        name: a relaxer name (`--relaxer`, `[relax] relaxer`).
        manager: the plugin manager (tests give their own; default: the entry points).

    Returns:
        The plugin's RelaxerSpec; an unknown or doubly registered name is a one-line ChggenError
        that lists the installed relaxers, so a typo is fixed from the message alone.
    """
    offered = _offered("chggen_relaxers", InstalledRelaxer, manager)
    if len(offered.get(name, ())) > 1:
        raise ChggenError(f"relaxer name {name!r} is registered by several plugins: "
                          f"{' and '.join(sorted(found.origin for found in offered[name]))}; uninstall all but one")
    if name not in offered:
        known = ", ".join(sorted(n for n, found in offered.items() if len(found) == 1)) or "none"
        broken = "".join(f"; plugin {plugin!r} failed to load: {reason}" for plugin, reason in plugins().broken.items())
        raise ChggenError(f"unknown relaxer {name!r}; installed relaxers: {known} (an adapter such as "
                          f"adapters/sevennet adds more){broken}")
    return offered[name][0].spec


def load_relaxer(name: str, device: str = "cpu", manager: pluggy.PluginManager | None = None) -> LoadedRelaxer:
    """Build relaxer `name`'s calculator on `device` (weights loaded once; reuse the result).

    Args:
        name: a relaxer name; an unknown one is refused in one line listing the installed ones.
        device: "cpu" or a torch device, checked before anything loads.
        manager: the plugin manager (default: the entry points).

    Returns:
        The calculator with the name and version every relaxed row records.
    """
    check_device(device)
    spec = relaxer_spec(name, manager)
    return LoadedRelaxer(name, spec.version(), spec.calculator(device))


def load_model(name: str, source: str | None = None, device: str = "cpu",
               manager: pluggy.PluginManager | None = None) -> ScoreModel:
    """Build the named model, checked against the ScoreModel protocol, on `device`.

    Args:
        name: a registered model name (`chggen models` lists them).
        source: its checkpoint or file, for a model that needs one (MatterGen, DiffCSP, analytic).
        device: torch device, checked first.
        manager: a plugin manager to ask (tests); None: the one fed by the `chggen` entry points.

    Returns:
        The ScoreModel.

    Raises:
        ChggenError: an unknown name (the installed ones listed, and any plugin that failed to
            load, with why), a name two plugins register, a missing source, or what the plugin
            returned does not implement the protocol.

    Example:
        ```python
        import chggen_plugins as cg
        model = cg.load_model("native")
        model.noise_process.describe()
        ```
    """
    from chggen_plugins.contract.protocol import check_score_model  # torch: only once a model is wanted

    check_device(device)
    models = installed_models(manager)
    clashing = clashing_models(manager).get(name)
    if clashing:
        raise ChggenError(f"model name {name!r} is registered by several plugins: "
                          f"{' and '.join(sorted(found.origin for found in clashing))}; uninstall all but one")
    if name not in models:
        known = ", ".join(sorted(models)) or "none (install an adapter, e.g. adapters/native)"
        broken = plugins().broken
        if name in broken:
            why = f"; plugin {name!r} failed to load: {broken[name]}"
        else:  # the model may be one a broken plugin would have offered under another name
            why = "".join(f"; plugin {plugin!r} failed to load: {reason}" for plugin, reason in broken.items())
        raise ChggenError(f"unknown model {name!r}; installed models: {known}{why}")
    spec = models[name].spec
    if spec.needs_source and source is None:
        raise ChggenError(f"model {name!r} needs --model-source (a checkpoint or file): {spec.summary}")
    model = check_score_model(spec.load(source), f"plugin {models[name].origin}, model {name!r}")
    return model.to(device)
