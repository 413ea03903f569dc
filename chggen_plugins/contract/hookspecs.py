"""Hook specifications: what a plugin may contribute. Plugins are ordinary packages that list a
module in the entry-point group ``chggen`` and mark functions there with ``@hookimpl``, as in pytest.

    # pyproject.toml of your adapter
    [project.entry-points.chggen]
    mymodel = "my_adapter.plugin"

    # my_adapter/plugin.py
    from chggen_plugins import ModelSpec, hookimpl

    @hookimpl
    def chggen_score_models():
        return [ModelSpec(name="mymodel", load=load, summary="what it is, what it was trained on")]

A relaxer (an interatomic potential every generated structure is relaxed with) is contributed the
same way, through `chggen_relaxers` (docs/guides/relaxers.md).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:  # annotations only: every `chggen` command loads this module, and torch takes seconds
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Composition, Structure

    from chggen_plugins.contract.protocol import ScoreModel

PROJECT = "chggen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class ModelSpec:
    """A score model a plugin offers.

    load(source) builds the model. `source` is what the user passed as --model-source (a checkpoint
    directory, a file, a hub name) or None for the plugin's bundled default; a plugin with no default
    sets `needs_source=True` and raises ChggenError naming what is missing. `generate` is the
    backend's own sampler where it has one (see OwnGenerator).
    """

    name: str
    load: Callable[[str | None], ScoreModel]
    summary: str
    needs_source: bool = False
    generate: "OwnGenerator | None" = None


OwnGenerator = Callable[[str | None, "Composition", int, int], "list[Structure]"]
"""A backend's own unconditional sampler, for benchmarks that put it beside CHGGen.

Called as generate(source, composition, num_samples, seed) -> structures. The backend generates
lattice, species and positions its own way (e.g. MatterGen's predictor-corrector), using the
composition as far as its sampler can (at least the atom count) and saying in `summary` how; the
structures are returned as generated, unrelaxed.
"""


@dataclass(frozen=True)
class RelaxerSpec:
    """A relaxer a plugin offers: the ASE calculator every generated structure is relaxed with.

    calculator(device) builds the calculator, weights loaded (called once per run, so it may take
    seconds; "cpu" or a torch device such as "cuda"). version() names the code and weights, e.g.
    "chgnet 0.4.2, model 0.3.0": it is stored in every row and in the resume fingerprint, so it must
    change whenever the energies would, and must be cheap (no weights loaded).
    """

    name: str
    summary: str
    calculator: Callable[[str], "Calculator"]
    version: Callable[[], str]


@hookspec
def chggen_score_models() -> list[ModelSpec]:
    """Return the score models this plugin provides (names must be unique across plugins)."""


@hookspec
def chggen_relaxers() -> list[RelaxerSpec]:
    """Return the relaxers this plugin provides (names must be unique across plugins)."""


@hookspec
def chggen_add_commands(commands: argparse._SubParsersAction) -> None:
    """Add subcommands to `chggen` (e.g. a backend's `train`).

    Call ``commands.add_parser(...)`` and ``set_defaults(run=function)``; `function(args)` runs the
    command and raises ChggenError for bad input, which the CLI prints as one line (exit status 2).
    """
