"""Registers DiffCSP run folders as a chggen score model (entry-point group `chggen`, name `diffcsp`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chggen_plugins.contract.hookspecs import ModelSpec, hookimpl

from .commands import add_train_command

if TYPE_CHECKING:
    from pymatgen.core import Composition, Structure

    from .model import DiffCSPScoreModel


def load(source: str | None) -> DiffCSPScoreModel:
    from .model import DiffCSPScoreModel  # torch: only when the model is loaded, not to register it

    return DiffCSPScoreModel.load(Path(source))


def generate(source: str | None, composition: Composition, num_samples: int, seed: int) -> list[Structure]:
    """DiffCSP's own CSP sampler (`chggen_diffcsp.generate.generate`)."""
    from . import generate as own

    return own.generate(source, composition, num_samples, seed)


@hookimpl
def chggen_score_models() -> list[ModelSpec]:
    return [ModelSpec("diffcsp", load, needs_source=True, generate=generate,
                      summary="DiffCSP (Jiao et al. 2023) CSPNet checkpoints, CSP or de novo: "
                              "--model-source is a DiffCSP run folder (hparams.yaml + *.ckpt) or one "
                              ".ckpt in it; fractional wrapped-normal noise on DiffCSP's 1000-step grid; its own generator is "
                              "DiffCSP's CSP sampler with the composition given (CSP checkpoints)")]


@hookimpl
def chggen_add_commands(commands) -> None:
    add_train_command(commands)
