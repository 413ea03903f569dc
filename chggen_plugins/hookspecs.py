"""Hook specifications: what a plugin may contribute. Plugins are ordinary packages that list a
module in the entry-point group ``chggen`` and mark functions there with ``@hookimpl``, as in pytest.

    # pyproject.toml of your adapter
    [project.entry-points.chggen]
    mymodel = "my_adapter.plugin"

    # my_adapter/plugin.py
    from chggen_plugins.hookspecs import ModelSpec, hookimpl

    @hookimpl
    def chggen_score_models():
        return [ModelSpec(name="mymodel", load=load, summary="what it is, what it was trained on")]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import pluggy

from .protocol import ScoreModel

PROJECT = "chggen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class ModelSpec:
    """A score model a plugin offers.

    load(source) builds the model. `source` is what the user passed as --model-source (a checkpoint
    directory, a file, a hub name) or None for the plugin's bundled default; a plugin with no default
    sets `needs_source=True` and raises ChggenError naming what is missing.
    """

    name: str
    load: Callable[[str | None], ScoreModel]
    summary: str
    needs_source: bool = False


@hookspec
def chggen_score_models() -> list[ModelSpec]:
    """Return the score models this plugin provides (names must be unique across plugins)."""


@hookspec
def chggen_add_commands(commands: argparse._SubParsersAction) -> None:
    """Add subcommands to `chggen` (e.g. a backend's `train`).

    Call ``commands.add_parser(...)`` and ``set_defaults(run=function)``; `function(args)` runs the
    command and raises ChggenError for bad input, which the CLI prints as one line (exit status 2).
    """
